"""The fork server's client: the grader's side of the worker processes.

:class:`ForkServer` starts the fork server (:mod:`warblr.grading.worker`)
once per grading process, with a scrubbed environment in an empty folder and
without importing warblr's engine (only the grading infrastructure is
loaded, so no worker finds the engine in ``sys.modules``); it resolves the
sandbox user, takes a submission in through :mod:`warblr.grading.intake`
into a copy the sandbox user can read, forks one worker per check
(:class:`WorkerProcess`: its socket, its output pipe), says whether each
check gets a PID namespace of its own, and after the check kills the
worker and everything it left (processes, and where the kernel refused
private namespaces, its files in world-writable folders and its System V
IPC objects).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import allocator, cleanup, control_groups, intake, sandbox, wire
from .failures import SandboxError, clean_text

#: Environment variables passed to the fork server (everything else is dropped).
PASSED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "LANG", "LC_ALL",
              "TZ")

#: Bytes of the worker's output kept per check (head and tail).
OUTPUT_KEEP = 16_000

#: Seconds the fork server may take to import the libraries.
START_TIMEOUT = 180.0

#: How the fork server starts: ``warblr`` is a bare package (its ``__init__`` imports the engine, which
#: student code must not find in ``sys.modules``), then the worker module runs as ``__main__``.
BOOTSTRAP = (
    "import sys, types; package = types.ModuleType('warblr'); package.__path__ = [sys.argv[1]]; "
    "package.__package__ = 'warblr'; sys.modules['warblr'] = package; del sys.argv[1]; import runpy; "
    "runpy.run_module('warblr.grading.worker', run_name='__main__', alter_sys=True)")


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
        return clean_text(bytes(self.head).decode("utf-8", "replace") + middle
                          + bytes(self.tail).decode("utf-8", "replace"))


class WorkerProcess:
    """The grader's end of one worker: its socket, its output pipe, its pid."""

    def __init__(self, pid, sock, out_fd, *, limits=None):
        self.pid, self.sock, self.out_fd = pid, sock, out_fd
        self.limits = limits or wire.ReplyLimits()
        self.output = _Output()
        self.alive = True
        self.imported = set()
        self.largest_reply = 0

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
            The reply is malformed or over :attr:`limits` (nothing over them is read or decoded).
        """
        try:
            wire.send(self.sock, header, blobs)
        except OSError as exc:
            raise EOFError(str(exc)) from None
        reader = wire.Reader(self._recv_exact(deadline), limits=self.limits)
        reply = reader.read()
        self.largest_reply = max(self.largest_reply, reader.last_size)
        return reply

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


class ForkServer:
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
        # Every folder any user may write to becomes a private tmpfs in each worker; the sandbox's own
        # folder (and the interpreter, if it lives in one of them) is bound back in.
        self.private_temp = sandbox.world_writable_folders(skip=[sys.prefix])
        self.keep = [str(self.root.resolve())] + [
            prefix for prefix in dict.fromkeys([os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)])
            if any(prefix.startswith(folder.rstrip("/") + "/") for folder in self.private_temp)]
        self.failed_preloads = []
        self.preloaded = []
        self._users = {}
        self._copies = {}
        self._copy_count = 0
        self._channel = None
        self._server = None
        self.server_pid = None
        self.pid_namespaces = False  # set by user(): whether each check gets a PID namespace of its own
        self.control_groups = {}  # set by ready(): the fork server's parent control groups, {controller: folder}
        self.swap_note = None  # set by ready(): why swap is outside the memory cap, if it is
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
            self.preloaded = list(ready.get("preloaded", []))
            self.control_groups = {name: str(path) for name, path in (ready.get("control_groups") or {}).items()
                                   if Path(path).name.startswith(control_groups.PARENT_PREFIX)}
            self.swap_note = ready.get("control_groups_swap")
        return self

    # -- start-up

    def _env(self):
        env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
        env.update(PATH="/usr/bin:/bin", HOME=str(self.root), TMPDIR=str(self.root), MPLBACKEND="Agg",
                   PYTHONDONTWRITEBYTECODE="1", LANG=env.get("LANG", "C.UTF-8"), **allocator.worker_environment())
        return env

    def _launch(self):
        """Start the fork server; it imports the libraries while the grader collects the checks."""
        grader_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-I", "-c", BOOTSTRAP, str(Path(__file__).resolve().parents[1]),
                   str(server_end.fileno()), "net" if self.network else "keep-net"]
        self._server = subprocess.Popen(command, cwd=self.root, env=self._env(), pass_fds=[server_end.fileno()],
                                        stdin=subprocess.DEVNULL)
        server_end.close()
        self._channel = grader_end

    def user(self, name):
        """``(uid, gid, scratch, notes)`` for workers of the sandbox user ``name``.

        As root: ``name``'s ids if that user can run this Python (checked once
        from a confined child), else the grader's own with a note saying why.
        Otherwise: the grader's ids (no uid separation) and a note. A second
        note says whether each check gets a PID namespace of its own (tried
        once in a confined child).

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
                probe = self.try_confinement(sandbox.Confinement(scratch=str(self._scratch(None, None))).to_json())
            else:
                try:
                    uid, gid = cleanup.resolve_user(name)
                except (KeyError, ValueError):
                    raise SandboxError(f"--sandbox-user {name}: no such user") from None
                if uid == 0:
                    raise SandboxError(f"--sandbox-user {name}: is root; choose an unprivileged user")
                scratch = self._scratch(uid, gid)
                request = sandbox.Confinement(uid=uid, gid=gid, scratch=str(scratch)).to_json()
                probe = self._ask({"op": "probe", "confine": request, "paths": []})
                problem = probe.get("python")
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
            notes = (note, self._process_note(probe, name if uid is not None else None))
            self._users[name] = (uid, gid, self._scratch(uid, gid), notes)
        return self._users[name]

    def _process_note(self, probe, user):
        """What the check's processes can reach, from a probe's confinement report; sets :attr:`pid_namespaces`."""
        why = ((probe.get("confined") or {}).get("namespaces") or {}).get("pid", "unknown")
        self.pid_namespaces = why is None
        if why is None:
            return ("processes: a new PID namespace per check (the check's code sees, signals and traces only its "
                    "own processes, and all of them end with the check)")
        shared = (f"every worker of every grading on this machine runs as {user} and can see, signal and read "
                  "the others' processes: grade one submission at a time here" if user else
                  "the worker can see and signal every process of the grader's user")
        return f"processes: NOT private, no new PID namespace ({why}): {shared}"

    def _scratch(self, uid, gid):
        folder = self.root / f"scratch-{uid if uid is not None else 'grader'}"
        if not folder.exists():
            folder.mkdir(mode=0o700)
            if uid is not None:
                os.chown(folder, uid, gid)
        return folder

    def readable(self, confinement, paths):
        """Which of ``paths`` a worker confined as ``confinement`` (JSON) can still read."""
        return self.try_confinement(confinement, paths).get("readable", [])

    def try_confinement(self, confinement, paths=()):
        """Confine a throw-away worker as ``confinement``: ``{"readable": [...], "confined": confine's report}``."""
        return self._ask({"op": "probe", "confine": confinement, "paths": [str(p) for p in paths]})

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

    def submission_copy(self, folder, *, limits=None, forbidden=intake.FORBIDDEN_MODULES):
        """Take ``folder`` in (:func:`warblr.grading.intake.take_in`) and copy it where the sandbox user can read.

        Checks, answers, caches and dotfiles are left out; nothing is followed.

        Returns
        -------
        (pathlib.Path, warblr.grading.intake.Submission)
            The copy, and what intake read (its forbidden imports).

        Raises
        ------
        warblr.errors.SubmissionError
            The submission holds a link, a device, ... (see :mod:`warblr.grading.intake`).
        """
        folder = Path(folder).resolve()
        target = self.new_copy_path()
        self._copies[target] = folder
        submission = intake.take_in(folder, limits=limits, forbidden=forbidden) if folder.exists() \
            else intake.Submission(folder)
        return intake.copy_submission(submission, target), submission

    def new_copy_path(self):
        """A fresh path for a submission's copy (not yet created)."""
        self._copy_count += 1
        return self.submissions / f"s{self._copy_count}"

    def spawn(self, submission, confinement, *, limits=None):
        """Fork a fresh worker for ``submission`` (its copy), confined as ``confinement`` (JSON).

        ``limits`` (:class:`warblr.grading.wire.ReplyLimits`) bound what the grader accepts from it.
        """
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
        return WorkerProcess(int(reply["pid"]), grader_sock, out_read, limits=limits)

    def status(self, pid):
        """How worker ``pid`` ended (after it was killed or died)."""
        try:
            return self._ask({"op": "status", "pid": pid}).get("status", "unknown")
        except (SandboxError, OSError):
            return "unknown"

    def children(self):
        """Pids of this process's children now (taken before a check: they are not the check's)."""
        return {pid for pid, (ppid, _) in cleanup.process_table().items() if ppid == os.getpid()}

    def sweep(self, worker, *, uid, keep, since=0.0, unconfined_temp=(), ipc_shared=False):
        """Kill ``worker`` and everything the check left running; return how the worker ended.

        Every child of this process that is not in ``keep`` dies (orphans of the
        check, adopted by this process as a subreaper). Where the worker's
        world-writable folders could not be made private (``unconfined_temp``)
        the files the sandbox ``uid`` created in them since ``since``
        (``time.time()``) are deleted, at any depth; with ``ipc_shared`` (no
        IPC namespace) its System V IPC objects are removed.
        """
        worker.kill()  # its group holds the keeper and the namespace's init: the namespace dies with them
        status = self.status(worker.pid)
        # As a subreaper this process adopts every orphan of the check (setsid or not), so killing its
        # orphans is enough and spares the workers of other graders on the machine running as the same
        # user. Without one, a PID namespace needs nothing more (its processes died with its init); else the
        # processes of the sandbox user in the worker's session die (a setsid escapes that).
        if self.subreaper or not self.pid_namespaces:
            cleanup.sweep_processes(uid=None if self.subreaper else uid,
                                    parent=os.getpid() if self.subreaper else None,
                                    keep=set(keep) | {self.server_pid, self._server.pid},
                                    session=None if self.subreaper else worker.pid)
        if uid is not None:
            cleanup.remove_files_of(uid, unconfined_temp, since=since)
            if ipc_shared:
                cleanup.remove_ipc_of(uid)
        return status

    @staticmethod
    def clean_scratch(folder):
        """Empty a scratch folder (files the last worker left, however deep; see :func:`cleanup.prune`)."""
        cleanup.empty_folder(folder)

    def close(self):
        if self._server is not None and self._server.poll() is None:
            self._server.kill()
            self._server.wait()
        for folder in set(self.control_groups.values()):  # the killed server could not remove them
            control_groups.remove_group(folder)
        self.control_groups = {}
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        cleanup.remove_tree(self.root)  # what workers left there too, however deep
        if ForkServer._shared is self:
            ForkServer._shared = None


