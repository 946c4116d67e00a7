"""The untrusted side of isolated grading: a fork server and the workers it forks.

``python -I -m warblr.grading.worker FD`` is started by the grader with a
scrubbed environment in an empty folder. It is the *fork server*: it never
imports student code. It optionally moves into a new network namespace,
imports the heavy libraries once (numpy, scipy, torch, scikit-learn -- never
a module the assignment forbids, nor warblr's engine: it is started with
``warblr`` as a bare package, see :data:`warblr.grading.fork_server.BOOTSTRAP`)
and then, for every graded check, forks one *worker* on the grader's
request. The fork costs milliseconds where a fresh interpreter would spend
seconds importing torch.

A worker first confines itself (:func:`warblr.grading.sandbox.confine`:
its control group, made by the fork server with the check's caps
(:mod:`warblr.grading.control_groups`) and removed, with whatever is
left in it, once the grader has asked how the worker ended; session,
private tmpfs over every world-writable folder, a new IPC namespace,
hidden folders, a new PID namespace -- the forked pid stays
outside as the keeper and the check runs as pid 2 inside, seeing only its
own processes --, rlimits, the sandbox user, an empty scratch folder as
cwd, the forbidden modules unimportable), then serves requests
from the grader on its own socket: import a
graded module, call one of its functions, read an attribute or call a method
of a live object it returned (a model, an estimator: these stay here behind
handles), or run a trusted probe (:mod:`warblr.grading.probes`). Arguments
and results cross as plain data only (:mod:`warblr.grading.wire`). Its
stdout and stderr go to a pipe the grader reads. The grader kills it at the
end of the check, or when the check's time is up.

Protocol with the fork server (small JSON messages on a Unix socket; a spawn
request carries the worker's socket and output pipe as file descriptors):
``{"op": "spawn", "submission": DIR, "confine": {...}}`` -> ``{"pid": PID}``,
``{"op": "status", "pid": PID}`` -> ``{"status": "exited 0" | "killed by SIGKILL" | ...}`` (how the check's
process ended: the keeper ends the same way),
``{"op": "probe", "confine": {...}, "paths": [...]}`` -> what the sandbox user can read and how the
confinement went.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import traceback

from . import control_groups, sandbox, wire
from .impl import GradedImpl, ImplImportError, not_attempted, student_file

#: Imported once by the fork server so each worker starts warm.
PRELOAD = ("numpy", "numpy.fft", "scipy.signal", "scipy.fft", "torch", "torch.nn", "torch.nn.functional",
           "sklearn.base", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.decomposition",
           "sklearn.linear_model", "sklearn.model_selection", "sklearn.metrics")

#: Top-level packages of warblr the fork server may hold in ``sys.modules`` (the engine never).
INFRASTRUCTURE = ("warblr", "warblr.grading")

#: Kinds of live objects a worker keeps behind a handle instead of refusing them.
LIVE_KINDS = ("torch.nn.Module", "sklearn.base.BaseEstimator")

MAX_SERVER_MESSAGE = 1 << 16


def class_name(value):
    """Qualified class name of ``value``: how a handle is labelled in messages."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _live_types():
    import sklearn.base
    import torch

    return (torch.nn.Module, sklearn.base.BaseEstimator)


# ---------------------------------------------------------------- the worker


class Worker:
    """One worker: the student's package, the live objects it returned, and the request loop."""

    def __init__(self, sock, submission):
        self.sock = sock
        self.folder = os.path.realpath(submission)
        self.impl = GradedImpl(submission)
        self.objects = {}
        self.numbers = {}
        self.live = _live_types()

    # -- handles

    def to_handle(self, value):
        if not isinstance(value, self.live):
            return None
        number = self.numbers.get(id(value))
        if number is None:
            number = self.numbers[id(value)] = len(self.objects) + 1
            self.objects[number] = value
        return wire.Handle(number, class_name(value))

    def from_handle(self, handle):
        if handle.number not in self.objects:
            raise LookupError(f"no live object {handle.number} in this worker")
        return self.objects[handle.number]

    def from_function(self, ref):
        return getattr(self.impl.module(ref.module), ref.name)

    # -- requests

    def serve(self):
        reader = wire.Reader(wire.blocking_recv_exact(self.sock))
        while True:
            try:
                header, blobs = reader.read()
            except EOFError:
                return
            reply, reply_blobs = self.handle(header, blobs)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            wire.send(self.sock, reply, reply_blobs)

    def handle(self, header, blobs):
        what = header.get("what", "your code")
        try:
            value = self.run(header, blobs)
        except wire.NotPlainData as exc:
            return self.error("refused", what, exc), []
        except ImplImportError as exc:
            return {"ok": False, "kind": "import", "message": str(exc)}, []
        except BaseException as exc:  # noqa: BLE001 -- the student's code may raise anything
            return self.error("raised", what, exc), []
        out = []
        try:
            node = wire.encode(value, out, to_handle=self.to_handle)
        except wire.NotPlainData as exc:
            return self.error("refused", what, exc), []
        return {"ok": True, "value": node}, out

    def run(self, header, blobs):
        op = header.get("op")
        decode = lambda node: wire.decode(node, blobs, from_handle=self.from_handle,  # noqa: E731
                                          from_function=self.from_function)
        if op == "import":
            self.impl.module(header["module"])
            return None
        if op == "getattr":
            value = getattr(self.from_handle(wire.Handle(header["handle"])), header["name"])
            if callable(value) and not isinstance(value, self.live):
                return {"__method__": True}
            return value
        args, kwargs = decode(header.get("args", [])), decode(header.get("kwargs", {"__dict__": []}))
        if op == "call":
            target = header["target"]
            if "handle" in target:
                function = getattr(self.from_handle(wire.Handle(target["handle"])), target["name"])
            else:
                function = getattr(self.impl.module(target["module"]), target["name"])
            return function(*args, **kwargs)
        if op == "probe":
            return run_probe(header["source"], header["name"], args, kwargs)
        raise ValueError(f"unknown request {op!r}")

    def error(self, kind, what, exc):
        forbidden = _forbidden_cause(exc)
        if forbidden is not None:
            then = "" if forbidden is exc else f"\n(your code then raised {type(exc).__name__}: {_safe_str(exc)})"
            return {"ok": False, "kind": "forbidden", "message": f"{what}: {_safe_str(forbidden)}{then}"}
        if isinstance(exc, wire.NotPlainData):
            message = (f"{what} returned {exc}; only plain data may be returned (numpy arrays, numbers, "
                       "strings, lists, tuples, dicts, torch tensors) or a torch model / scikit-learn estimator")
            return {"ok": False, "kind": "refused", "message": message}
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, (int, str, type(None))) else repr(exc.code)
            return {"ok": False, "kind": "exit", "message": f"your code called sys.exit({code!r})"}
        return {"ok": False, "kind": kind, "type": type(exc).__name__, "message": _safe_str(exc),
                "traceback": self.student_traceback(exc), "not_attempted": not_attempted(exc, self.folder)}

    def student_traceback(self, exc):
        """The traceback frames in the student's files (all frames if none is), as text."""
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if student_file(f.filename, self.folder)] or frames[-3:]
        for frame in mine:
            if student_file(frame.filename, self.folder):
                frame.filename = os.path.relpath(frame.filename, self.folder)
        lines = traceback.format_list(mine)
        return "".join(lines)[-4000:]


def run_probe(source, name, args, kwargs):
    """Run the grader's probe ``name`` from ``source`` (the text of :mod:`warblr.grading.probes`, sent with the
    request).

    The worker never imports the probes: a module loaded in the fork server
    sat in every worker's ``sys.modules``, and its VGGish builder, fed the
    state_dict a check loads into the student's model, built that model for
    a submission with no network of its own (red-team review, stop 37). Now
    the builder exists only in the checks that ask for a probe, and only
    behind the object the student's code is handed anyway.
    """
    namespace = {"__name__": "warblr_grader_probe"}
    exec(compile(source, "<the grader's probes>", "exec"), namespace)  # noqa: S102 -- the grader's own code
    return namespace["run"](name, *args, **kwargs)


def _forbidden_cause(exc):
    """The :class:`~warblr.grading.sandbox.ForbiddenModuleError` in ``exc``'s chain, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sandbox.ForbiddenModuleError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _safe_str(exc):
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 -- a hostile __str__
        text = "<the exception's message could not be read>"
    return text[:4000]


def worker_main(sock, out_fd, submission, request):
    """Run in the forked child: confine, redirect output, serve until the grader closes the socket."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        setup = sandbox.confine(sandbox.Confinement.from_json(request))
        if setup["scratch"]:
            os.environ.update(HOME=setup["scratch"], TMPDIR=setup["scratch"], NUMBA_CACHE_DIR=setup["scratch"])
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        sys.stdin = open(os.devnull)  # noqa: SIM115 -- for the worker's lifetime
        Worker(sock, submission).serve()
    except BaseException:  # noqa: BLE001 -- report, then leave without running atexit hooks
        traceback.print_exc()
    finally:
        os._exit(0)


# ---------------------------------------------------------------- the fork server


def _describe_status(status):
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by {name}"
    return f"exited {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"status {status}"


def probe_access(request, paths, groups=None):
    """In a forked child confined as ``request``: which of ``paths`` can be read, and can Python run.

    With ``groups`` (:class:`~warblr.grading.control_groups.WorkerGroups`) the child joins a group of its own,
    as a worker does.
    """
    group = with_control_group(request, groups)
    read_fd, write_fd = os.pipe()
    server = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        die_with(server)
        report = {"readable": [], "python": None, "confined": None, "importable_forbidden": []}
        try:
            report["confined"] = sandbox.confine(sandbox.Confinement.from_json(request))
            for path in paths:
                try:
                    if os.path.isdir(path):
                        os.listdir(path)
                    else:
                        with open(path, "rb") as handle:
                            handle.read(1)
                    report["readable"].append(path)
                except OSError:
                    pass
            try:  # the sandbox user must be able to read the interpreter's libraries
                for folder in [sys.prefix, os.path.dirname(os.__file__)] + [p for p in sys.path if "-packages" in p]:
                    os.listdir(folder)
                importlib.import_module("sklearn.ensemble")
                for name in request.get("forbidden", []):  # the blocker must refuse them
                    try:
                        importlib.import_module(name)
                        report["importable_forbidden"].append(name)
                    except ImportError:
                        pass
            except (OSError, ImportError) as exc:
                report["python"] = f"{type(exc).__name__}: {exc}"
        except BaseException as exc:  # noqa: BLE001
            report["python"] = f"confinement failed: {exc}"
        os.write(write_fd, json.dumps(report).encode())
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    if group is not None:
        group.remove()
    return json.loads(b"".join(chunks) or b"{}")


def die_with(server):
    """In a freshly forked worker: be killed when the fork server ``server`` (its parent) ends.

    A grading killed at its overall time limit takes the grader and the fork
    server (one process group) but not the worker, which has a session of its
    own: its check ran on with nobody left to end it or remove its group.
    The worker's pid stays root and outside the check's PID namespace (the
    keeper), so the setting holds; the namespace's init dies with the keeper.
    """
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the fork server ended before the line above
        os._exit(1)


def with_control_group(request, groups):
    """Make a control group for one worker confined as ``request`` (JSON, filled in); returns it or None."""
    if groups is None:
        return None
    limits = sandbox.Limits(**request.get("limits", {}))
    group, missing = groups.create(processes=limits.processes or None, memory=limits.group_memory)
    request["control_group"] = {controller: str(folder) for controller, folder in group.folders.items()}
    request["control_group_missing"] = missing
    return group


def ended(status, group, request):
    """How a worker ended, as the grader is told: its status, and whether the kernel killed it for memory."""
    if group is None:
        return status
    kills, at_cap = group.memory_kills()
    problem = group.remove()
    if kills and at_cap and status == "killed by SIGKILL":  # the kernel's OOM killer took the check's process
        cap = sandbox.Limits(**request.get("limits", {})).group_memory or 0
        status += (f" (out of memory: the kernel killed {kills} of the check's processes for passing their "
                   f"{cap / 2**30:g} GiB together)")
    elif kills:
        status += (f" ({kills} of the check's processes were killed for memory, "
                   + ("at the check's cap)" if at_cap else "which the machine ran short of, not at the check's cap)"))
    if problem:
        status += f" (and {problem})"
    return status


def server_main(channel_fd, isolate_network):
    """The fork server's loop on the grader's channel."""
    channel = socket.socket(fileno=channel_fd)
    network = sandbox.new_network_namespace() if isolate_network else "not requested"
    preloaded, failed = [], []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
            preloaded.append(name)
        except Exception as exc:  # noqa: BLE001 -- a missing optional library is the student's problem
            failed.append(f"{name}: {exc}")
    engine = sorted(name for name in sys.modules if name.startswith("warblr")
                    and name not in INFRASTRUCTURE and not name.startswith("warblr.grading."))
    if engine:  # a grading module that imported the engine: the workers would hand it to student code
        failed.append(f"warblr's engine was loaded in the fork server ({', '.join(engine)}): removed")
        for name in engine:
            del sys.modules[name]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    server = os.getpid()
    statuses, groups, requests = {}, control_groups.WorkerGroups(), {}
    _send_json(channel, {"ready": True, "network": network, "preloaded": preloaded, "failed": failed,
                         "pid": os.getpid(),
                         "control_groups": {name: str(folder) for name, folder in groups.parents.items()},
                         "control_groups_missing": groups.missing, "control_groups_swap": groups.swap_note})
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, MAX_SERVER_MESSAGE, 2)
        except OSError:
            break
        if not data:
            break
        request = json.loads(data)
        op = request.get("op")
        if op == "spawn":
            sock_fd, out_fd = fds
            group = with_control_group(request["confine"], groups)
            pid = os.fork()
            if pid == 0:
                channel.close()
                die_with(server)
                worker_main(socket.socket(fileno=sock_fd), out_fd, request["submission"], request["confine"])
            wire.close_quietly(sock_fd, out_fd)
            requests[pid] = (group, request["confine"])
            _send_json(channel, {"pid": pid})
        elif op == "status":
            pid = int(request["pid"])
            if pid not in statuses:
                try:
                    _, status = os.waitpid(pid, 0)
                    statuses[pid] = _describe_status(status)
                except ChildProcessError:
                    statuses[pid] = "unknown"
            group, confinement = requests.pop(pid, (None, {}))
            _send_json(channel, {"status": ended(statuses.pop(pid), group, confinement)})
        elif op == "probe":
            _send_json(channel, probe_access(request["confine"], request["paths"], groups))
        else:
            break
        wire.close_quietly(*[fd for fd in fds if op != "spawn"])
    groups.close()
    os._exit(0)


def _send_json(channel, data):
    channel.sendall(json.dumps(data).encode())


if __name__ == "__main__":
    server_main(int(sys.argv[1]), sys.argv[2] == "net")
