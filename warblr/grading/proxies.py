"""The ``impl`` the checks see under isolation: proxies for the student's modules, functions and objects.

:class:`RemoteImpl` stands for the graded package: ``impl.logmel.stft_magnitude(...)``
(:class:`RemoteModule`, :class:`RemoteFunction`) sends the call to the
check's worker and returns plain data; a model or an estimator comes back as
a :class:`RemoteObject` whose attributes and methods (:class:`RemoteMethod`)
are read and called in the worker.

One worker serves one check: :meth:`RemoteImpl.begin_check` sets the check's
deadline, the first call forks the worker, :meth:`RemoteImpl.end_check`
kills it (its whole process group, then every process the sandbox user or
an orphan of the check left behind). A call still running at the deadline
is ended by killing the worker: no signal handler in the student's code can
stop that. Errors come back as the exceptions of :mod:`warblr.grading.failures`,
carrying the student's traceback (cleaned of control characters), the kind
of failure and, for ``NotImplementedError`` raised by their code, where. A
submission refused at intake, or a graded module that imports a forbidden
module, fails every check of that module with one line saying why.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from . import intake, probes, sandbox, wire
from ..errors import SubmissionError
from .failures import (ForbiddenModule, RefusedValue, WorkerDied, WorkerFailure, WorkerTimeout, clean_text,
                       signal_explanation, student_error_type)
from .fork_server import ForkServer
from .impl import EXERCISE_MODULES, LIVE_RESULTS, ExerciseNamespace, ImplImportError


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
    sandbox_ : ForkServer, optional
        The fork server (default: this process's shared one).
    forbidden : sequence of str, optional
        Modules the student's code may not import (default
        :data:`warblr.grading.intake.FORBIDDEN_MODULES`).
    intake_limits : warblr.grading.intake.IntakeLimits, optional
        Files, depth and sizes a submission may have.
    reply_limits : warblr.grading.wire.ReplyLimits, optional
        What the grader accepts in one reply from a worker.
    live_results : sequence of str, optional
        ``module.function`` names of the graded functions that may return a
        live object (default :data:`warblr.grading.impl.LIVE_RESULTS`); any
        other graded function returning one fails with :class:`RefusedValue`.
    """

    #: Largest reply (bytes) any RemoteImpl of this process received (measured to size the reply cap).
    largest_reply_seen = 0

    def __init__(self, folder, *, user="nobody", hide=(), max_memory=6 << 30, timeout=30.0, sandbox_=None,
                 forbidden=intake.FORBIDDEN_MODULES, intake_limits=None, reply_limits=None,
                 live_results=LIVE_RESULTS):
        self.live_results = frozenset(live_results)
        self.sandbox = (sandbox_ or ForkServer.shared()).ready()
        self.folder = Path(folder)
        self.uid, self.gid, scratch, user_notes = self.sandbox.user(user)
        cpu = int(max(60.0, 4.0 * timeout)) if timeout else 0
        limits = sandbox.Limits(address_space=max_memory or None, cpu_seconds=cpu)
        self.scratch = scratch
        self.reply_limits = reply_limits or wire.ReplyLimits()
        self.forbidden = list(forbidden)
        forbidden_folders = package_folders(self.forbidden)
        self.hide = [str(Path(p).resolve()) for p in hide if p and Path(p).is_dir()]
        self.confinement = sandbox.Confinement(
            uid=self.uid, gid=self.gid, hide=self.hide + forbidden_folders, limits=limits, scratch=str(scratch),
            private_temp=self.sandbox.private_temp, keep=self.sandbox.keep, forbidden=self.forbidden).to_json()
        self.import_errors = {}
        self.notes = [*user_notes, self.sandbox.network_note]
        try:
            self.copy, submission = self.sandbox.submission_copy(folder, limits=intake_limits, forbidden=forbidden)
            self.import_errors.update(submission.forbidden_by_module())
        except SubmissionError as exc:  # every check fails with the reason; nothing of it was read
            self.copy = intake.copy_submission(intake.Submission(self.folder), self.sandbox.new_copy_path())
            self.import_errors.update({module: clean_text(str(exc)) for module in EXERCISE_MODULES})
            self.notes.append(clean_text(str(exc)))
        self.notes += [f"worker could not preload {failure}" for failure in self.sandbox.failed_preloads]
        trial = self.sandbox.try_confinement(self.confinement, self.hide + forbidden_folders)
        confined = trial.get("confined") or {}
        self.notes.append(self._limits_note(limits, confined.get("control_group") or {}))
        self.unconfined_temp, self.ipc_shared = self._confinement_notes(confined, forbidden_folders)
        if self.hide:
            self.notes.append("hidden from the worker: " + ", ".join(self.hide))
        still = [path for path in trial.get("readable", []) if path in self.hide]
        if still:
            self.notes.append("WARNING: the worker can still read " + ", ".join(still) + " (no mount namespace "
                              "here: make these folders unreadable to other users)")
        self.worker = None
        self.deadline = float("inf")
        self.check_output = ""
        self.worker_status = None
        self.keep = set()
        self.check_started = time.time()

    def __repr__(self):
        return f"RemoteImpl({str(self.folder)!r})"

    def _limits_note(self, limits, group):
        """The worker's limits, and whether a control group caps the check's processes together (``group``:
        ``{controller: None or why not}`` from the trial confinement)."""
        memory = f"{limits.address_space / 2**30:g} GiB address space per process, " if limits.address_space else ""
        if group.get("pids") is None and limits.processes:
            processes = f"{limits.processes} tasks for the check's processes together"
        elif self.uid is not None and limits.processes:
            processes = (f"{limits.processes} processes for the sandbox user, shared with every worker of every "
                         "grading on this machine")
        else:
            processes = "no process cap"
        note = (f"worker limits: {memory}{limits.cpu_seconds or 'unlimited'} CPU s, {processes}, "
                f"{limits.open_files} open files, {limits.file_size >> 20} MiB per file; a fresh empty folder as "
                "cwd, scrubbed environment, one worker per check")
        memory_cap = limits.group_memory
        if group.get("memory") is None and memory_cap:
            note += (f"; {memory_cap / 2**30:g} GiB resident for the check's processes together, and all of them "
                     "are killed when the check ends (a control group per check)")
            if self.sandbox.swap_note:
                note += f" ({self.sandbox.swap_note})"
        if group.get("cpu") is None:
            note += "; one equal CPU share for the check's processes together, however many it starts"
        missing = {name: why for name, why in group.items() if why is not None}
        if missing:
            note += ("; NOT capped together (no control group for " + "; ".join(
                f"{name}: {why}" for name, why in sorted(missing.items())) + "): a check that forks holds the "
                "caps once per process")
        return note

    def _confinement_notes(self, confined, forbidden_folders):
        """Notes on the private temporary folders, the IPC namespace and the forbidden modules' layers.

        Returns ``(folders not made private, whether System V IPC is shared)``.
        """
        namespaces = confined.get("namespaces") or {}
        scratch = str(self.scratch)
        covered = [folder for folder in confined.get("private_temp") or [] if folder != scratch]
        refused = confined.get("refused") or {}
        unconfined = [folder for folder in self.sandbox.private_temp if folder not in covered]
        if covered:
            working = (", and the working folder" if scratch in (confined.get("private_temp") or [])
                       else "; NOT the working folder (on the disk, emptied after each check)")
            self.notes.append("private per check (a fresh tmpfs each): " + ", ".join(covered) + working)
        syscalls = confined.get("syscalls", "not reported")
        self.notes.append("kernel keyrings, new namespaces and mounts: refused to the worker (seccomp)"
                          if syscalls is None else
                          f"kernel keyrings, new namespaces and mounts: NOT refused ({syscalls}); a key the worker "
                          "adds outlives the check, and where user namespaces are open it can mount file systems "
                          "it serves itself (FUSE) and leave processes no signal ends")
        cleaned = ("the files the sandbox user leaves there are deleted after each check instead"
                   if self.uid is not None else "and nothing is cleaned there: the worker runs as your own user")
        if unconfined:
            why = namespaces.get("mount") or "; ".join(f"{k}: {v}" for k, v in refused.items()) or "unknown"
            self.notes.append(f"NOT private: {', '.join(unconfined)} ({why}); {cleaned}")
        ipc_shared = namespaces.get("ipc") is not None
        self.notes.append("System V IPC: a new namespace per check" if not ipc_shared else
                          f"System V IPC: NOT private ({namespaces.get('ipc')}); " + (
                              "the sandbox user's segments, semaphores and queues are removed after each check "
                              "instead" if self.uid is not None else "nothing is removed: no sandbox user"))
        hidden = [folder for folder in forbidden_folders if folder not in refused]
        layers = ["the submission's source is scanned for their imports",
                  "an import blocker in the worker refuses them"]
        if hidden and namespaces.get("mount") is None:
            layers.append("their package folders are hidden from the worker (" + ", ".join(hidden) + ")")
        else:
            layers.append("their package folders could NOT be hidden")
        if self.forbidden:
            self.notes.append(f"forbidden in your code: {', '.join(self.forbidden)} ({'; '.join(layers)})")
        return unconfined, ipc_shared

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
            self.worker = self.sandbox.spawn(self.copy, self.confinement, limits=self.reply_limits)
        return self.worker

    def end_check_worker(self):
        """Kill the current worker (and what it left running), empty its scratch folder; keep its output.

        However it ended (finished, timed out, died mid-call, broke the
        protocol): a worker that died was once followed by the next check's
        worker in a scratch folder still holding its files.
        """
        try:
            self.worker_status = self.sandbox.sweep(self.worker, uid=self.uid, keep=self.keep,
                                                    since=self.check_started, unconfined_temp=self.unconfined_temp,
                                                    ipc_shared=self.ipc_shared)
        finally:
            self.sandbox.clean_scratch(self.scratch)
            self.check_output += self.worker.output.text()
            RemoteImpl.largest_reply_seen = max(RemoteImpl.largest_reply_seen, self.worker.largest_reply)
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

    def _request(self, header, blobs, *, live=True):
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
                died = WorkerDied(f"the worker's reply was refused ({exc}) while {header.get('what')}; the worker "
                                  "was killed")
                died.warblr_explanation = ("your code's reply broke the grader's limits or protocol: return plain "
                                           "data of a reasonable size, and never write to the grader's channel")
                raise died from None
            died = WorkerDied(f"your code ended the worker process ({status}) while {header.get('what')}")
            died.warblr_explanation = signal_explanation(status) or (
                "your code ended its process (os._exit, a crash, a resource limit or a kill): return a value or "
                "raise an exception instead")
            raise died from None
        if type(reply) is not dict:
            raise WorkerDied("the worker sent a malformed reply")
        if reply.get("ok") is True:
            from_handle = self._object if live else self._data_expected(header.get("what", "your code"))
            return wire.decode(reply.get("value"), reply_blobs, from_handle=from_handle)
        raise self._failure(reply)

    @staticmethod
    def _data_expected(what):
        def refuse(handle):
            raise RefusedValue(f"{what} returned a live {clean_text(handle.type_name[:200])} where data was "
                               "expected: return a numpy array, a torch tensor or plain numbers")
        return refuse

    def _failure(self, reply):
        kind, message = reply.get("kind"), clean_text(str(reply.get("message", ""))[:4000])
        if kind == "import":
            return ImplImportError(message)
        if kind == "forbidden":
            exc = ForbiddenModule(message)
            exc.warblr_explanation = message
            return exc
        if kind == "refused":
            return RefusedValue(message)
        if kind == "exit":
            exc = WorkerFailure(message)
            exc.warblr_explanation = f"{message}; return a value or raise an exception instead"
            return exc
        name = str(reply.get("type", "Exception"))
        name = name if name.isidentifier() else "Exception"
        trace = clean_text(str(reply.get("traceback", ""))[:4000])
        text = f"{message}\n\nTraceback of your code (most recent call last):\n{trace}" if trace else message
        exc = student_error_type(name)(text)
        where = reply.get("not_attempted")
        exc.warblr_not_attempted = clean_text(str(where)[:200]) if where and name == "NotImplementedError" else None
        if name == "MemoryError":
            exc.warblr_explanation = "memory"
        elif name == "RecursionError":
            exc.warblr_explanation = "recursion"
        return exc

    def _object(self, handle):
        return RemoteObject(self, handle, self.worker)

    def call(self, target, what, args, kwargs, *, live=True):
        """Call ``target`` in the worker; with ``live=False`` a live object in the result is refused."""
        blobs = []
        header = {"op": "call", "target": target, "what": what,
                  "args": wire.encode(list(args), blobs), "kwargs": wire.encode(dict(kwargs), blobs)}
        return self._request(header, blobs, live=live)

    def probe(self, name, *args, **kwargs):
        """Run the trusted probe ``name`` (:mod:`warblr.grading.probes`) in the worker; see there."""
        blobs = []
        header = {"op": "probe", "name": name, "what": f"the grader's probe {name}", "source": probe_source(),
                  "args": wire.encode(list(args), blobs), "kwargs": wire.encode(dict(kwargs), blobs)}
        return self._request(header, blobs)


@functools.lru_cache(maxsize=1)
def probe_source():
    """The text of :mod:`warblr.grading.probes`, sent with each probe request (the worker never imports it)."""
    return Path(probes.__file__).read_text(encoding="utf-8")


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
                               args, kwargs, live=f"{self.module}.{self.name}" in self._impl.live_results)


class RemoteObject(wire.Handle):
    """A live object (model, estimator) that stays in the worker; attributes and methods are remote."""

    __slots__ = ("_impl", "_worker")

    def __init__(self, impl, handle, worker):
        super().__init__(handle.number, clean_text(handle.type_name[:200]))
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


def package_folders(modules):
    """The package folders of ``modules`` (found without importing them), to hide from the worker."""
    import importlib.util

    folders = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for folder in (spec.submodule_search_locations or []) if spec else []:
            if Path(folder).is_dir():
                folders.append(str(Path(folder).resolve()))
    return folders
