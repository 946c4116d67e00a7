"""The trusted side of isolated grading: the sandbox, the workers and the ``impl`` proxy.

:class:`Sandbox` starts the fork server (:mod:`warblr.grading.worker`) with a
scrubbed environment in an empty folder, decides how the workers are
confined (the sandbox user when the grader is root, hidden folders, rlimits,
network) and says so in :attr:`Sandbox.notes`. :class:`RemoteImpl` is the
``impl`` the checks see under isolation: ``impl.logmel.stft_magnitude(...)``
sends the call to the check's worker and returns plain data; a model or an
estimator comes back as a :class:`RemoteObject` whose attributes and methods
are read and called in the worker.

One worker serves one check: :meth:`RemoteImpl.begin_check` sets the check's
deadline, the first call forks the worker, :meth:`RemoteImpl.end_check`
kills it (its whole process group, then every process the sandbox user or
an orphan of the check left behind). A call still running at the deadline
is ended by killing the worker: no signal handler in the student's code can
stop that. Errors come back as exceptions that carry the student's
traceback, the kind of failure and, for ``NotImplementedError`` raised by
their code, where (:func:`warblr.grading.impl.not_attempted`).
"""

from __future__ import annotations

import atexit
import builtins
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import sandbox, wire
from .impl import NOT_SUBMITTED, ExerciseNamespace, ImplImportError

#: Environment variables passed to the fork server (everything else is dropped).
PASSED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "LANG", "LC_ALL",
              "TZ")

#: Bytes of the worker's output kept per check (head and tail).
OUTPUT_KEEP = 16_000

#: Seconds the fork server may take to import the libraries.
START_TIMEOUT = 180.0


class WorkerFailure(Exception):
    """The student's code failed in the worker. ``warblr_explanation`` says why in a sentence (or is None)."""

    warblr_explanation = None
    warblr_not_attempted = None


class StudentError(WorkerFailure):
    """An exception raised by the student's code in the worker (its type name, message and traceback)."""


class RefusedValue(WorkerFailure):
    """The student's code returned something that is not plain data."""


class WorkerDied(WorkerFailure):
    """The worker ended while the student's code ran (os._exit, a crash, a limit, a kill)."""


class WorkerTimeout(WorkerFailure):
    """The check's time limit passed; the worker was killed."""


class SandboxError(RuntimeError):
    """The sandbox could not be started (the grader's problem, not the student's)."""


_ERROR_TYPES = {}


def _student_error_type(name):
    """A :class:`StudentError` subclass that is also the built-in exception ``name`` when there is one.

    So ``pytest.raises(ValueError)`` and ``isinstance(exc, NotImplementedError)``
    work on errors relayed from the worker.
    """
    if name not in _ERROR_TYPES:
        builtin = getattr(builtins, name, None)
        bases = (StudentError,)
        if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin.__module__ == "builtins":
            bases = (StudentError, builtin)
        _ERROR_TYPES[name] = type(name, bases, {"__module__": "student"})
    return _ERROR_TYPES[name]


def _signal_explanation(status):
    if "SIGXFSZ" in status:
        return "your code wrote a file larger than the worker's file size limit"
    if "SIGXCPU" in status:
        return "your code used more CPU time than the worker's limit"
    if "SIGSEGV" in status or "SIGBUS" in status or "SIGABRT" in status:
        return "your code crashed the worker (a segfault or abort)"
    return None


def _kill_group(pid):
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass


class _Output:
    """The head and tail of a worker's stdout/stderr."""

    def __init__(self, keep=OUTPUT_KEEP):
        self.keep, self.head, self.tail, self.total = keep, bytearray(), bytearray(), 0

    def add(self, data):
        self.total += len(data)
        room = self.keep // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail = (self.tail + data)[-(self.keep // 2):]

    def text(self):
        cut = self.total - len(self.head) - len(self.tail)
        middle = f"\n... [{cut} bytes cut] ...\n" if cut > 0 else ""
        return (bytes(self.head).decode("utf-8", "replace") + middle
                + bytes(self.tail).decode("utf-8", "replace"))


class WorkerProcess:
    """The grader's end of one worker: its socket, its output pipe, its pid."""

    def __init__(self, pid, sock, out_fd):
        self.pid, self.sock, self.out_fd = pid, sock, out_fd
        self.output = _Output()
        self.alive = True
        self.imported = set()

    def drain(self):
        """Read what the worker printed so far (without waiting)."""
        while True:
            ready, _, _ = select.select([self.out_fd], [], [], 0)
            if not ready:
                return
            data = os.read(self.out_fd, 65536)
            if not data:
                return
            self.output.add(data)

    def request(self, header, blobs, deadline):
        """Send one request and wait for the reply until ``deadline`` (``time.monotonic()``).

        Raises
        ------
        TimeoutError
            The deadline passed (the caller kills the worker).
        EOFError
            The worker died.
        wire.WireError
            The reply is malformed.
        """
        try:
            wire.send(self.sock, header, blobs)
        except OSError as exc:
            raise EOFError(str(exc)) from None
        return wire.Reader(self._recv_exact(deadline)).read()

    def _recv_exact(self, deadline):
        def recv_exact(count):
            buffer = bytearray(count)
            view, got = memoryview(buffer), 0
            while got < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.sock, self.out_fd], [], [], min(remaining, 1.0))
                if self.out_fd in ready:
                    data = os.read(self.out_fd, 65536)
                    if data:
                        self.output.add(data)
                if self.sock in ready:
                    n = self.sock.recv_into(view[got:], min(count - got, 1 << 24))
                    if n == 0:
                        raise EOFError("the worker closed its socket")
                    got += n
            return buffer

        return recv_exact

    def kill(self):
        """SIGKILL the worker's process group; keep what it printed."""
        if self.alive:
            _kill_group(self.pid)
            self.alive = False
        try:
            self.drain()
        except OSError:
            pass
        self.sock.close()
        wire.close_quietly(self.out_fd)


class Sandbox:
    """The fork server: started once per process, shared by every graded session in it.

    How a worker is confined (user, hidden folders, limits) is decided per
    grading run (:class:`RemoteImpl`) and sent with each spawn request, so a
    process that grades many submissions (the project's meta-tests) pays for
    the fork server's imports once.

    Parameters
    ----------
    network : bool
        Cut the network where a new network namespace can be made.
    """

    _shared = None

    def __init__(self, *, network=True):
        self.root = Path(tempfile.mkdtemp(prefix="warblr-sandbox-"))
        os.chmod(self.root, 0o711)
        self.submissions = self.root / "submissions"
        self.submissions.mkdir(mode=0o755)
        self.network = network
        self.network_note = None
        self.subreaper = sandbox.set_child_subreaper()
        self.failed_preloads = []
        self._users = {}
        self._copies = {}
        self._channel = None
        self._server = None
        self.server_pid = None
        self._launch()
        atexit.register(self.close)

    @classmethod
    def shared(cls):
        """This process's fork server (started on first use, restarted if it has ended)."""
        if cls._shared is None or cls._shared._server is None or cls._shared._server.poll() is not None:
            if cls._shared is not None:
                cls._shared.close()
            cls._shared = cls()
        return cls._shared

    def ready(self):
        """Wait until the fork server has imported the libraries. Returns self."""
        if self.server_pid is None:
            ready = self._receive(START_TIMEOUT)
            if not ready or not ready.get("ready"):
                self.close()
                raise SandboxError(f"the worker's fork server did not start ({ready}); run with --no-isolation "
                                   "to grade without it (unsafe)")
            self.server_pid = ready["pid"]
            network = ready.get("network")
            if not self.network:
                self.network_note = "network: not cut (asked for)"
            elif network is None:
                self.network_note = "network: none for the student's code (a new, empty network namespace)"
            else:
                self.network_note = f"network: NOT isolated, the kernel refused a new network namespace ({network})"
            self.failed_preloads = list(ready.get("failed", []))
        return self

    # -- start-up

    def _env(self):
        env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
        env.update(PATH="/usr/bin:/bin", HOME=str(self.root), TMPDIR=str(self.root), MPLBACKEND="Agg",
                   PYTHONDONTWRITEBYTECODE="1", LANG=env.get("LANG", "C.UTF-8"))
        return env

    def _launch(self):
        """Start the fork server; it imports the libraries while the grader collects the checks."""
        grader_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-I", "-m", "warblr.grading.worker", str(server_end.fileno()),
                   "net" if self.network else "keep-net"]
        self._server = subprocess.Popen(command, cwd=self.root, env=self._env(), pass_fds=[server_end.fileno()],
                                        stdin=subprocess.DEVNULL)
        server_end.close()
        self._channel = grader_end

    def user(self, name):
        """``(uid, gid, scratch, note)`` for workers of the sandbox user ``name``.

        As root: ``name``'s ids if that user can run this Python (checked once
        from a confined child), else the grader's own with a note saying why.
        Otherwise: the grader's ids (no uid separation) and a note.

        Raises
        ------
        SandboxError
            No such user, or it is root.
        """
        name = name or "nobody"
        if name not in self._users:
            self.ready()
            uid = gid = None
            if os.geteuid() != 0:
                note = ("uid separation not available: the grader does not run as root, so the worker runs "
                        "as the same user (process separation only)")
            else:
                try:
                    uid, gid = sandbox.resolve_user(name)
                except (KeyError, ValueError):
                    raise SandboxError(f"--sandbox-user {name}: no such user") from None
                if uid == 0:
                    raise SandboxError(f"--sandbox-user {name}: is root; choose an unprivileged user")
                scratch = self._scratch(uid, gid)
                request = sandbox.Confinement(uid=uid, gid=gid, scratch=str(scratch)).to_json()
                problem = self._ask({"op": "probe", "confine": request, "paths": []}).get("python")
                if problem:
                    note = (f"uid separation NOT available: the sandbox user {name} (uid {uid}) cannot use this "
                            f"Python ({sys.executable}, prefix {sys.prefix}): {problem}. Every folder from / "
                            "down to the interpreter and its site-packages must be readable and traversable "
                            "by that user (e.g. a venv made with /usr/bin/python3 in a folder others may "
                            "traverse). The worker runs as the grader's user instead: process separation only.")
                    uid = gid = None
                else:
                    note = (f"worker runs as {name} (uid {uid}), not as the grader (uid {os.getuid()}): it cannot "
                            "read the answers, write the results or signal the grader")
            self._users[name] = (uid, gid, self._scratch(uid, gid), note)
        return self._users[name]

    def _scratch(self, uid, gid):
        folder = self.root / f"scratch-{uid if uid is not None else 'grader'}"
        if not folder.exists():
            folder.mkdir(mode=0o700)
            if uid is not None:
                os.chown(folder, uid, gid)
        return folder

    def readable(self, confinement, paths):
        """Which of ``paths`` a worker confined as ``confinement`` (JSON) can still read."""
        return self._ask({"op": "probe", "confine": confinement, "paths": [str(p) for p in paths]}).get(
            "readable", [])

    def _ask(self, request, fds=(), timeout=60.0):
        socket.send_fds(self._channel, [json.dumps(request).encode()], list(fds))
        reply = self._receive(timeout)
        if reply is None:
            raise SandboxError("the worker's fork server stopped answering")
        return reply

    def _receive(self, timeout):
        ready, _, _ = select.select([self._channel], [], [], timeout)
        if not ready:
            return None
        data = self._channel.recv(1 << 16)
        return json.loads(data) if data else None

    # -- workers

    def submission_copy(self, folder):
        """A copy of the submission's files the sandbox user can read (checks and answers left out)."""
        folder = Path(folder).resolve()
        target = self.submissions / f"s{len(self._copies)}"
        if folder.is_dir():
            shutil.copytree(folder, target, symlinks=False, ignore=_not_submitted, ignore_dangling_symlinks=True)
        else:
            target.mkdir()
        for path in [target, *target.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self._copies[target] = folder
        return target

    def spawn(self, submission, confinement):
        """Fork a fresh worker for ``submission`` (its copy), confined as ``confinement`` (JSON)."""
        self.ready()
        if self._server.poll() is not None:
            raise SandboxError(f"the worker's fork server ended (status {self._server.returncode})")
        grader_sock, worker_sock = socket.socketpair()
        for sock in (grader_sock, worker_sock):  # fewer wake-ups for a model's weights (hundreds of MB)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        out_read, out_write = os.pipe()
        try:
            reply = self._ask({"op": "spawn", "submission": str(submission), "confine": confinement},
                              fds=[worker_sock.fileno(), out_write])
        finally:
            worker_sock.close()
            wire.close_quietly(out_write)
        return WorkerProcess(int(reply["pid"]), grader_sock, out_read)

    def status(self, pid):
        """How worker ``pid`` ended (after it was killed or died)."""
        try:
            return self._ask({"op": "status", "pid": pid}).get("status", "unknown")
        except (SandboxError, OSError):
            return "unknown"

    def children(self):
        """Pids of this process's children now (taken before a check: they are not the check's)."""
        return {pid for pid, (ppid, _) in sandbox.process_table().items() if ppid == os.getpid()}

    def sweep(self, worker, *, uid, keep, since=0.0):
        """Kill ``worker`` and everything the check left running; return how the worker ended.

        Every child of this process that is not in ``keep`` dies (orphans of the
        check, adopted by this process as a subreaper), and the files the
        sandbox ``uid`` created in shared temporary folders since ``since``
        (``time.time()``) are deleted.
        """
        worker.kill()
        status = self.status(worker.pid)
        # As a subreaper this process adopts every orphan of the check (setsid or not), so killing its
        # orphans is enough and spares the workers of other graders on the machine running as the same
        # user; only without a subreaper does everything of the sandbox user die.
        sandbox.sweep_processes(uid=None if self.subreaper else uid, parent=os.getpid() if self.subreaper else None,
                                keep=set(keep) | {self.server_pid, self._server.pid})
        if uid is not None:
            sandbox.remove_files_of(uid, since=since)
        return status

    @staticmethod
    def clean_scratch(folder):
        """Empty a scratch folder (files the last worker left)."""
        for path in Path(folder).iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def close(self):
        if self._server is not None and self._server.poll() is None:
            self._server.kill()
            self._server.wait()
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        shutil.rmtree(self.root, ignore_errors=True)
        if Sandbox._shared is self:
            Sandbox._shared = None


def _not_submitted(folder, names):
    return [name for name in names if name in NOT_SUBMITTED or name.startswith(".")
            or (name.startswith("test_") and name.endswith(".py"))]


# ---------------------------------------------------------------- the impl proxy


class RemoteImpl(ExerciseNamespace):
    """The graded implementation seen through the check's worker: ``impl.logmel``, ``impl.probe(...)``.

    Parameters
    ----------
    folder : path
        The submission folder (copied for the worker without checks or answers).
    user : str, optional
        Sandbox user when the grader is root (default ``nobody``).
    hide : sequence of path, optional
        Folders the worker must not see (answers, checks, results).
    max_memory : int, optional
        Address-space limit of a worker, bytes.
    timeout : float, optional
        Per-check time limit; the worker's CPU-seconds limit is set generously above it.
    sandbox_ : Sandbox, optional
        The fork server (default: this process's shared one).
    """

    def __init__(self, folder, *, user="nobody", hide=(), max_memory=6 << 30, timeout=30.0, sandbox_=None):
        self.sandbox = (sandbox_ or Sandbox.shared()).ready()
        self.folder = Path(folder)
        self.uid, self.gid, scratch, uid_note = self.sandbox.user(user)
        cpu = int(max(60.0, 4.0 * timeout)) if timeout else 0
        limits = sandbox.Limits(address_space=max_memory or None, cpu_seconds=cpu)
        self.scratch = scratch
        self.hide = [str(Path(p).resolve()) for p in hide if p and Path(p).is_dir()]
        self.confinement = sandbox.Confinement(uid=self.uid, gid=self.gid, hide=self.hide, limits=limits,
                                               scratch=str(scratch)).to_json()
        self.copy = self.sandbox.submission_copy(folder)
        self.notes = [uid_note, self.sandbox.network_note]
        self.notes += [f"worker could not preload {failure}" for failure in self.sandbox.failed_preloads]
        memory = f"{limits.address_space / 2**30:g} GiB address space, " if limits.address_space else ""
        self.notes.append(f"worker limits: {memory}{limits.cpu_seconds or 'unlimited'} CPU s, "
                          f"{limits.processes if self.uid is not None else 'no'} process cap, {limits.open_files} "
                          f"open files, {limits.file_size >> 20} MiB per file; a fresh empty folder as cwd, "
                          "scrubbed environment, one worker per check")
        if self.hide:
            self.notes.append("hidden from the worker: " + ", ".join(self.hide))
            still = self.sandbox.readable(self.confinement, self.hide)
            if still:
                self.notes.append("WARNING: the worker can still read " + ", ".join(still) + " (no mount namespace "
                                  "here: make these folders unreadable to other users)")
        self.worker = None
        self.deadline = float("inf")
        self.import_errors = {}
        self.check_output = ""
        self.worker_status = None
        self.keep = set()
        self.check_started = time.time()

    def __repr__(self):
        return f"RemoteImpl({str(self.folder)!r})"

    def exercise_module(self, name):
        return RemoteModule(self, name)

    # -- the check's lifecycle

    def begin_check(self, limit):
        """Start timing a check: its remote calls must finish within ``limit`` seconds (0: no limit)."""
        self.end_check()
        self.deadline = time.monotonic() + limit if limit and limit > 0 else float("inf")
        self.check_output = ""
        self.keep = self.sandbox.children()
        self.check_started = time.time()

    def end_check(self):
        """Kill the check's worker and whatever it left; keep its output in :attr:`check_output`."""
        if self.worker is not None:
            self.end_check_worker()
            self.sandbox.clean_scratch(self.scratch)

    def output(self):
        """What the student's code printed during the current check so far."""
        live = ""
        if self.worker is not None:
            self.worker.drain()
            live = self.worker.output.text()
        return self.check_output + live

    # -- requests

    def _worker(self):
        if time.monotonic() >= self.deadline:
            raise self._timeout()
        if self.worker is None:
            self.worker = self.sandbox.spawn(self.copy, self.confinement)
        return self.worker

    def end_check_worker(self):
        """Kill the current worker (and what it left running); keep its output."""
        self.worker_status = self.sandbox.sweep(self.worker, uid=self.uid, keep=self.keep, since=self.check_started)
        self.check_output += self.worker.output.text()
        self.worker = None

    def _timeout(self):
        exc = WorkerTimeout("the check's time limit passed while your code was running; the worker was killed")
        exc.warblr_explanation = "timeout"
        return exc

    def _ensure_module(self, module):
        if module in self.import_errors:
            raise ImplImportError(self.import_errors[module])
        worker = self._worker()
        if module in worker.imported:
            return
        try:
            self._request({"op": "import", "module": module, "what": f"importing your {module}.py"}, [])
        except WorkerTimeout:
            self.import_errors[module] = (f"could not import your {module}.py: importing it did not finish within "
                                          "the time limit (a loop at import time?)")
            raise ImplImportError(self.import_errors[module]) from None
        except WorkerDied as exc:
            self.import_errors[module] = f"could not import your {module}.py: {exc}"
            raise ImplImportError(self.import_errors[module]) from None
        except ImplImportError as exc:
            self.import_errors[module] = str(exc)
            raise
        worker.imported.add(module)

    def _request(self, header, blobs):
        worker = self._worker()
        try:
            reply, reply_blobs = worker.request(header, blobs, self.deadline)
        except TimeoutError:
            self.end_check_worker()
            raise self._timeout() from None
        except (EOFError, wire.WireError) as exc:
            broken = isinstance(exc, wire.WireError)
            self.end_check_worker()
            status = self.worker_status
            if broken:
                raise WorkerDied(f"the worker broke the protocol ({exc}); your code must not write to the "
                                 "grader's channel") from None
            died = WorkerDied(f"your code ended the worker process ({status}) while {header.get('what')}")
            died.warblr_explanation = _signal_explanation(status) or (
                "your code ended its process (os._exit, a crash, a resource limit or a kill): return a value or "
                "raise an exception instead")
            raise died from None
        if type(reply) is not dict:
            raise WorkerDied("the worker sent a malformed reply")
        if reply.get("ok") is True:
            return wire.decode(reply.get("value"), reply_blobs, from_handle=self._object)
        raise self._failure(reply)

    def _failure(self, reply):
        kind, message = reply.get("kind"), str(reply.get("message", ""))[:4000]
        if kind == "import":
            return ImplImportError(message)
        if kind == "refused":
            return RefusedValue(message)
        if kind == "exit":
            exc = WorkerFailure(message)
            exc.warblr_explanation = f"{message}; return a value or raise an exception instead"
            return exc
        name = str(reply.get("type", "Exception"))
        name = name if name.isidentifier() else "Exception"
        trace = str(reply.get("traceback", ""))
        text = f"{message}\n\nTraceback of your code (most recent call last):\n{trace}" if trace else message
        exc = _student_error_type(name)(text)
        where = reply.get("not_attempted")
        exc.warblr_not_attempted = str(where) if where and name == "NotImplementedError" else None
        if name == "MemoryError":
            exc.warblr_explanation = "memory"
        elif name == "RecursionError":
            exc.warblr_explanation = "recursion"
        return exc

    def _object(self, handle):
        return RemoteObject(self, handle, self.worker)

    def call(self, target, what, args, kwargs):
        blobs = []
        header = {"op": "call", "target": target, "what": what,
                  "args": wire.encode(list(args), blobs), "kwargs": wire.encode(dict(kwargs), blobs)}
        return self._request(header, blobs)

    def probe(self, name, *args, **kwargs):
        """Run the trusted probe ``name`` (:mod:`warblr.grading.probes`) in the worker; see there."""
        blobs = []
        header = {"op": "probe", "name": name, "what": f"the grader's probe {name}",
                  "args": wire.encode(list(args), blobs), "kwargs": wire.encode(dict(kwargs), blobs)}
        return self._request(header, blobs)


class RemoteModule:
    """``impl.logmel`` under isolation: its attributes are the module's functions, called in the worker."""

    def __init__(self, impl, name):
        self._impl, self._name = impl, name

    def __repr__(self):
        return f"<graded module {self._name} (in the worker)>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._impl._ensure_module(self._name)
        return RemoteFunction(self._impl, self._name, name)


class RemoteFunction(wire.FunctionRef):
    """A graded function; calling it runs it in the check's worker."""

    __slots__ = ("_impl",)

    def __init__(self, impl, module, name):
        super().__init__(module, name)
        self._impl = impl

    def __call__(self, *args, **kwargs):
        self._impl._ensure_module(self.module)
        return self._impl.call({"module": self.module, "name": self.name}, f"your {self.module}.{self.name}()",
                               args, kwargs)


class RemoteObject(wire.Handle):
    """A live object (model, estimator) that stays in the worker; attributes and methods are remote."""

    __slots__ = ("_impl", "_worker")

    def __init__(self, impl, handle, worker):
        super().__init__(handle.number, handle.type_name)
        self._impl, self._worker = impl, worker

    def __repr__(self):
        return f"<{self.type_name} in the worker>"

    def _check_worker(self):
        if self._impl.worker is not self._worker:
            raise WorkerDied(f"this {self.type_name} lived in a worker that has ended")

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        self._check_worker()
        value = self._impl._request({"op": "getattr", "handle": self.number, "name": name,
                                     "what": f"reading {self.type_name}.{name}"}, [])
        if type(value) is dict and value == {"__method__": True}:
            return RemoteMethod(self, name)
        return value

    def __call__(self, *args, **kwargs):
        return RemoteMethod(self, "__call__")(*args, **kwargs)


class RemoteMethod:
    """A bound method of a :class:`RemoteObject`."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __call__(self, *args, **kwargs):
        self.owner._check_worker()
        return self.owner._impl.call({"handle": self.owner.number, "name": self.name},
                                     f"{self.owner.type_name}.{self.name}()", args, kwargs)
