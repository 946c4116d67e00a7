"""Former home of the isolated-grading client, kept so older imports work; new code imports the modules below.

The job was split (issue 20): :mod:`warblr.grading.failures` (error types and
safe feedback text), :mod:`warblr.grading.fork_server` (the fork server's
client, once named ``Sandbox``, and the worker processes) and
:mod:`warblr.grading.proxies` (``RemoteImpl`` and the proxies of the
student's modules, functions and objects). Delete this module once nothing
imports it.
"""

from .failures import (ForbiddenModule, RefusedValue, SandboxError, StudentError, WorkerDied, WorkerFailure,
                       WorkerTimeout)
from .fork_server import ForkServer, WorkerProcess
from .proxies import RemoteFunction, RemoteImpl, RemoteMethod, RemoteModule, RemoteObject

#: The fork server's client under its former name.
Sandbox = ForkServer

__all__ = ["ForbiddenModule", "ForkServer", "RefusedValue", "RemoteFunction", "RemoteImpl", "RemoteMethod",
           "RemoteModule", "RemoteObject", "Sandbox", "SandboxError", "StudentError", "WorkerDied", "WorkerFailure",
           "WorkerProcess", "WorkerTimeout"]
