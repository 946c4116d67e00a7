"""Join, start and end a Ray cluster: where (``RaySettings``), how (:func:`connect`, :func:`shutdown`); no work.

Shared by the lab's ``--ray`` runner (:mod:`warblr.lab.distributed`) and the
course grader's batches (:mod:`warblr.grading.batch`), which must not import
the lab. Ray itself is imported only by :func:`connect` and :func:`shutdown`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass

from .errors import InvalidArgumentError
from .validation import check_scalar

__all__ = ["RaySettings", "connect", "shutdown", "CONNECT_TIMEOUT_S", "THREAD_EXIT_SECONDS"]

#: Seconds to wait for a cluster address to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 5.0
#: Seconds :func:`shutdown` waits for each thread still using Ray (a Ray Data reader) to end once Ray is down.
THREAD_EXIT_SECONDS = 5.0
#: Ray's loggers that only say, on a private Ray's start, that it uses token authentication (it should).
_START_NOTICES = ("ray._private.authentication",)


@dataclass(frozen=True)
class RaySettings:
    """Where and how to run on Ray.

    Attributes
    ----------
    address : str
        ``"local"`` (a private Ray on this machine, shut down at the end),
        ``"auto"`` (the cluster this machine belongs to) or a cluster address
        (``HOST:PORT`` or ``ray://HOST:PORT``) passed to ``ray.init``.
    actors : int or None
        Network actors (None: one per GPU with a CUDA device, else
        :func:`plan_resources` decides from the cluster's CPUs).
    threads : int or None
        torch threads per network actor on CPU (None: up to
        :data:`MAX_DEFAULT_THREADS`, at most the cluster's CPUs).
    batch : int
        Groups per Ray task (one block of work; a killed task redoes that many).
    cpus : int or None
        CPUs of the private Ray started by ``address="local"`` (None: all).
    local_start : bool
        The driver computes groups itself, from the front, while Ray starts
        and until Ray has finished one (CPU runs of the lab's extract; see
        :mod:`warblr.lab.distributed`). False: Ray does everything.
    decode_tasks : bool or None
        Decode and log-mel in Ray Data tasks of their own, feeding the
        network actors (True), or inside each actor, a group start to finish
        as a local run does it (False). None: tasks with ``--device cuda``
        (the GPU keeps computing while CPUs decode), inside the actors on CPU.

    Examples
    --------
    >>> RaySettings("local", actors=2).batch
    1
    """

    address: str
    actors: int | None = None
    threads: int | None = None
    batch: int = 1
    cpus: int | None = None
    local_start: bool = True
    decode_tasks: bool | None = None

    def __post_init__(self):
        if not isinstance(self.address, str) or not self.address.strip():
            reason = f"expected local, auto or a cluster address, got {self.address!r}"
            raise InvalidArgumentError(f"ray: {reason}", parameter="ray", reason=reason)
        address = self.address.strip()  # one spelling, so every reader agrees on what " Local " is
        object.__setattr__(self, "address", address.lower() if address.lower() in ("local", "auto") else address)
        for name in ("actors", "threads", "cpus"):  # named as their flags: --ray-actors, ...
            if getattr(self, name) is not None:
                check_scalar(getattr(self, name), f"ray_{name}", min_val=1)
        check_scalar(self.batch, "ray_batch", min_val=1)
        if not isinstance(self.local_start, bool):
            reason = f"expected True or False, got {self.local_start!r}"
            raise InvalidArgumentError(f"ray_local_start: {reason}", parameter="ray_local_start", reason=reason)
        if self.decode_tasks is not None and not isinstance(self.decode_tasks, bool):
            reason = f"expected True, False or None, got {self.decode_tasks!r}"
            raise InvalidArgumentError(f"ray_decode_tasks: {reason}", parameter="ray_decode_tasks", reason=reason)

    @property
    def private(self):
        """Whether this starts a private Ray on this machine (``"local"``): its workers are this machine's.

        Examples
        --------
        >>> RaySettings(" Local ").private, RaySettings("auto").private
        (True, False)
        """
        return self.address == "local"


# --------------------------------------------------------------------------- connecting


def _unreachable(address, why):
    reason = f"cannot reach a Ray cluster at {address!r} ({why})"
    return InvalidArgumentError(f"ray: {reason}", parameter="ray", reason=reason)


def _check_reachable(address):
    """Fail fast on a ``HOST:PORT`` nobody answers (``ray.init`` would retry for minutes)."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise _unreachable(address, exc.strerror or str(exc) or type(exc).__name__) from exc


def _worker_environment():
    """The driver's math-library variables (``MKL_CBWR``, ...), so every worker starts under the same settings.

    ``OMP_NUM_THREADS`` stays Ray's (it sizes each task); actors set their torch threads themselves.
    """
    from .runtime import RUNTIME_VARIABLES

    return {name: os.environ[name] for name in RUNTIME_VARIABLES if name in os.environ and name != "OMP_NUM_THREADS"}


def connect(settings):
    """Join (or start) the Ray cluster of ``settings``; reuse a session this process already has.

    Parameters
    ----------
    settings : RaySettings

    Returns
    -------
    bool
        True when this call started Ray (then the caller shuts it down).

    Raises
    ------
    InvalidArgumentError
        Ray is not installed, or the cluster cannot be reached (``parameter="ray"``, the address named).

    Notes
    -----
    A private Ray (``"local"``) starts without Ray's autoscaler monitor and
    log monitor (:func:`_lean_node`): 1.6 CPU-seconds and 1.8-2.0 s to start
    on 2 quiet cores instead of 2.0-2.4 and 2.0-2.1 s, and 0.1-0.3 s to shut
    down instead of 1.35 s.
    """
    try:
        import ray
    except ImportError as exc:
        raise InvalidArgumentError("ray: Ray is not installed; pip install 'warblr[ray]'", parameter="ray",
                                   reason="Ray is not installed; pip install 'warblr[ray]'") from exc
    if ray.is_initialized():
        return False
    options = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    private = settings.private
    if private:
        # A private Ray's workers inherit this process's environment; a runtime_env would make Ray start
        # fresh workers for it instead of using the ones it prestarted (seconds on a small machine).
        options.update(address="local", num_cpus=settings.cpus)
    else:
        options["runtime_env"] = {"env_vars": _worker_environment()}
        if settings.address != "auto":
            _check_reachable(settings.address)
        options["address"] = settings.address
    try:
        with _loggers_quiet(_START_NOTICES if private else ()), _lean_node() if private else contextlib.nullcontext():
            ray.init(**options)
    except Exception as exc:  # Ray raises bare Exceptions too (e.g. a local node that timed out starting)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if settings.private:
            reason = f"cannot start a private Ray on this machine ({why})"
            raise InvalidArgumentError(f"ray: {reason}", parameter="ray", reason=reason) from exc
        raise _unreachable(settings.address, why) from exc
    return True


def shutdown(*, wait_for=()):
    """Shut down the Ray this process started, and let the threads still using it end without it.

    A thread blocked in Ray when it goes (a Ray Data pipeline the driver
    stopped reading) tidies up with calls such as ``ray.cancel``, and Ray's
    auto-connect would answer them by starting a *second* local Ray (seen:
    a new cluster and ~1 s more at exit, a stats actor's traceback on stderr).
    So auto-connect is off, and Ray Data quiet, until those threads are done.

    Parameters
    ----------
    wait_for : iterable of callables, keyword-only
        ``join(timeout)`` of each thread to wait for (up to
        :data:`THREAD_EXIT_SECONDS` each); a thread still running after that
        is left (daemon threads end with the process).
    """
    import ray

    # Ray Data logs the refused reconnection as an internal error, with a traceback: nothing for a user.
    with _auto_connect_off(), _loggers_quiet(("ray.data",), level=logging.CRITICAL):
        ray.shutdown()
        for join in wait_for:
            join(THREAD_EXIT_SECONDS)


@contextlib.contextmanager
def _lean_node():
    """A private Ray started inside the block runs no autoscaler monitor and no log monitor.

    A private Ray has fixed resources (nothing to autoscale; its monitor also
    held ``ray.shutdown`` for 1 s, still running when Ray's wait for it after
    SIGTERM ran out) and sends no worker logs to the driver
    (``log_to_driver=False``): two Python processes that only took CPU
    (0.3 s each to start) beside the driver's work. ``ray.init`` has no
    option for either, so they are turned off where Ray builds the node's
    parameters (``RayParams``); a Ray without that class starts them as before.
    """
    try:
        from ray._private.parameter import RayParams
    except ImportError:
        yield
        return
    original = RayParams.__init__

    def lean_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.no_monitor, self.include_log_monitor = True, False

    RayParams.__init__ = lean_init
    try:
        yield
    finally:
        RayParams.__init__ = original


@contextlib.contextmanager
def _auto_connect_off():
    """Ray's implicit ``ray.init`` (on ``ray.get``, ``ray.cancel``, ... without a session) off inside the block."""
    try:
        from ray._private import auto_init_hook
    except ImportError:  # a Ray without the hook has no auto-connect to turn off
        yield
        return
    previous = getattr(auto_init_hook, "enable_auto_connect", True)
    auto_init_hook.enable_auto_connect = False
    try:
        yield
    finally:
        auto_init_hook.enable_auto_connect = previous


@contextlib.contextmanager
def _loggers_quiet(names, *, level=logging.ERROR):
    """Only records of ``level`` and above from the loggers ``names`` inside the block (levels restored after)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
