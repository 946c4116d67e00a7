"""``warblr extract --ray ADDRESS``: the same groups, run on a Ray cluster.

A Ray run does exactly what a local :func:`warblr.lab.extract.extract` does,
spread over a cluster, with the same functions:

1. the driver (this process) calls :func:`~warblr.lab.extract.plan_groups`:
   finished items are skipped before any work is scheduled, and the
   remaining groups are the local run's groups (fixed by position);
2. on CPU (the default), a pool of long-lived Ray actors
   (:class:`_GroupWorker`, Ray core), each holding one copy of the model
   (fetched once from the object store), runs whole groups as a local run
   does: :func:`~warblr.lab.extract.group_examples` reads the files and
   computes the log-mel (bad files become problems named by item id),
   :func:`~warblr.lab.extract.group_embeddings` and
   :func:`~warblr.lab.extract.store_group` write the items atomically into
   the same ``OUT/items/`` store, on the node that computed them. The driver
   keeps :data:`CALLS_PER_ACTOR` calls queued per actor, so an actor never
   waits between groups;
3. with ``--device cuda`` (or ``RaySettings(decode_tasks=True)``) a two-stage
   Ray Data pipeline instead: short CPU **decode** tasks (each reserving
   :data:`DECODE_CPUS` of a CPU) compute the log-mel examples and feed
   **network** actors (:class:`_Network`, one GPU each), so the GPU keeps
   computing while CPUs anywhere in the cluster decode;
4. the driver receives one small report per finished group: the tqdm bar,
   the written ids and the problems.

Local start. Ray's start-up (``ray.init``, the model put in the object
store, actors importing torch and fetching it) costs seconds in which the
cluster computes nothing. So on CPU the driver computes groups itself
meanwhile, from the front, with the local run's functions, in a thread
(:class:`_DriverShare`); Ray gets the groups from the back. The driver stops
once Ray has finished a group (reported, or its first group's items on disk)
or begun the next one: on one machine the two would share the same cores.
Ray's workers skip a group the driver has begun storing
(:func:`~warblr.lab.extract.started_elsewhere`), the driver stops reading
Ray's reports once every group is written, and it computes itself any group
no one reported (e.g. one Ray skipped after a killed worker's partial write).
A group both compute is written twice, atomically, with the same bytes.
``--ray-no-local-start`` leaves everything to Ray. Once every group is
written, Ray's work is closed (calls cancelled, actors killed: an actor may
be computing a group the driver has written) before a private Ray is shut
down; a Ray Data reader still blocked then is ended by the shutdown, and
:func:`warblr.raycluster.shutdown` keeps it from starting a second Ray as it
tidies up.

Why Ray core on CPU. The CPU path was a Ray Data pipeline (decode tasks
feeding network actors) until measured on 2 cores (120 clips, Ray alone):
Ray Data's scheduling loop took 6-7 % of the CPU in the driver, its stats,
autoscaling and actor-location actors about 3 % more, its first pipeline
2.1 s to start, and its decode tasks, run ahead of the actors, stalled the
actor's two-thread parallel regions: 14.8-16.7 s and 0.82-0.89x local's
steady rate, against 12.5-13.6 s and 0.92-1.06x for actors that decode
their own groups, fed by the driver through ``ray.wait``. Fault handling is
Ray's own: a killed actor is restarted and its calls retried
(``max_restarts=-1``, ``max_task_retries=-1``), and memory is bounded by
the calls in flight. The GPU path keeps Ray Data: there decoding on other
CPUs than the GPU actor's is the point, and Ray Data gives that streaming,
back-pressured two-stage pipeline, retries of map tasks whose worker died
and restarts of dead actors out of the box. Its unit of work is one block
holding whole groups (``--ray-batch`` groups), never a re-batched slice;
rows cross stages as opaque pickled payloads, so no Arrow type inference
touches the arrays.

Bit-identity. A group's numbers depend only on the group (fixed by
position), the device, the dtype and ``--batch-size``, all of which the
actors receive from the driver, and on the math library's code path.
warblr pins oneMKL's conditional numerical reproducibility on import
(``MKL_CBWR=AUTO,STRICT``, ``MKL_DYNAMIC=FALSE``), so the thread count does
not change results: 1, 2, 3, 4 and 8 torch threads were measured to give
identical examples and embeddings (torch 2.13 CPU). The actors still set
their torch threads explicitly (``--ray-threads``) instead of inheriting
Ray's ``OMP_NUM_THREADS=1``, every worker starts with the driver's
math-library variables (a ``runtime_env``), and each actor's
:func:`~warblr.runtime.runtime_settings` are returned in
``ExtractResult.runtime``. With ``--device cuda`` the log-mel examples are
computed on CPU in the decode tasks (equal to a local ``--device cpu`` run's)
and only the network runs on the GPU.

Resources. On CPU the actors share every CPU, each running
``--ray-threads`` torch threads (default up to :data:`MAX_DEFAULT_THREADS`)
on as many reserved CPUs: on 2 cores, one actor on 2 CPUs with 2 threads,
as a local run. In the two-stage pipeline decode tasks are short (a few ms
per clip against ~60 ms in the network on CPU), so they reserve a quarter
CPU each and get about an eighth of the cluster's cores; network actors
share the rest on (possibly fractional) reservations, so the pool can never
take every CPU and starve the decode tasks.

Faults. A killed decode worker's task is retried and a killed actor is
restarted, its calls retried (its group is recomputed and rewritten: atomic
writes make that harmless). An actor pool is killed when the run ends, on a
shared cluster too. A killed driver ends the job (a ``local`` Ray's processes see
their driver gone and exit within seconds, an actor possibly finishing the
group it holds, identically and atomically; on a cluster Ray ends the job's
tasks and actors); the items written so far are kept and the same command
resumes. A cluster that cannot be reached is an
:class:`~warblr.errors.InvalidArgumentError` naming the address
(``parameter="ray"``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import pickle
import queue
import sys
import threading
import time
from dataclasses import dataclass

from .. import spec
from ..errors import InvalidArgumentError, WarblrError
from ..raycluster import RaySettings, connect, shutdown
from ..validation import argparse_type

__all__ = ["RaySettings", "add_ray_options", "ray_settings_from_args", "run_extract", "extract_on_ray", "plan_resources",
           "DECODE_CPUS", "DECODE_SHARE", "MAX_DEFAULT_THREADS", "payoff_note", "RAY_FIXED_SECONDS"]

#: CPUs each decode task reserves (fractional: they are short and must never be starved).
DECODE_CPUS = 0.25
#: Share of the cluster's CPUs kept for decode tasks (decode + log-mel is ~7 % of the CPU work).
DECODE_SHARE = 1 / 8
#: Default torch threads per network actor on CPU (more actors beat more threads per actor).
MAX_DEFAULT_THREADS = 4
#: Ray's fixed cost of a run, measured on 2 quiet cores (AMD EPYC, torch 2.13, Ray 2.60), 120 clips:
#: ``--ray-no-local-start`` 11.4-11.6 s against 6.8-7.0 s locally (a lean private ``ray.init`` 1.8-2.0 s,
#: ``ray.put`` of the model 0.45 s, an actor up with the model ~1.5 s, shutdown 0.1-0.3 s, Ray's daemons beside
#: the actor).
RAY_FIXED_SECONDS = 5.0
#: Seconds a run inside a Ray session the caller already had (it stays up after the run) waits for its Ray work
#: (pipeline or actor pool) to close once every group is written.
SHARED_PIPELINE_CLOSE_SECONDS = 60.0
#: CPU-seconds a local run spends per 10 s clip (22 clips/s after the first group on 2 quiet cores, float32).
CPU_SECONDS_PER_CLIP = 0.09
#: Seconds a run that connected to Ray itself (a private Ray, or a cluster it joined) waits for its Ray work to
#: close before ``ray.shutdown`` (the CPU actors' loop notices within ACTOR_POLL_SECONDS and kills its actors). A
#: thread still inside ``ray.wait`` when a private Ray went down was seen to hang there for
#: :data:`~warblr.raycluster.THREAD_EXIT_SECONDS`, the actor computing meanwhile.
OWN_SESSION_CLOSE_SECONDS = 1.0
#: Calls in flight per CPU actor: one running, one queued behind it.
CALLS_PER_ACTOR = 2
#: Seconds the driver waits on the CPU actors' calls before it checks whether it should stop.
ACTOR_POLL_SECONDS = 0.2


_positive_int = argparse_type(int, min_val=1)


def add_ray_options(parser):
    """Add ``--ray ADDRESS`` and its tuning options to an argparse parser; imports nothing from Ray.

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_ray_options(parser)
    >>> ray_settings_from_args(parser.parse_args(["--ray", "local", "--ray-actors", "2"]))
    RaySettings(address='local', actors=2, threads=None, batch=1, cpus=None, local_start=True, decode_tasks=None)
    """
    group = parser.add_argument_group(
        "Ray", "Run the same groups on a Ray cluster (pip install 'warblr[ray]'; warblr installed on every "
               "node). Items are bit-identical to a local run on the same device and dtype. --data and OUT must "
               "be visible to every node at the same paths: local disk for --ray local, a shared file system "
               "(NFS, Lustre, ...) on a cluster. A killed worker or actor is retried or restarted; a killed run resumes.")
    group.add_argument("--ray", metavar="ADDRESS", default=None,
                       help="run on Ray: local (a private Ray on this machine), auto (the cluster this machine "
                            "belongs to) or a cluster address (HOST:PORT or ray://HOST:PORT)")
    group.add_argument("--ray-actors", type=_positive_int, default=None, metavar="N",
                       help="network actors, each holding the model once (default: one per GPU with a CUDA "
                            "device, an eighth of the cores kept for decode tasks; on CPU one per --ray-threads "
                            "cores, each decoding its own groups)")
    group.add_argument("--ray-threads", type=_positive_int, default=None, metavar="T",
                       help=f"torch threads per network actor on CPU (default: {MAX_DEFAULT_THREADS}, at most the "
                            "cluster's CPUs). Results do not depend on it")
    group.add_argument("--ray-batch", type=_positive_int, default=1, metavar="GROUPS",
                       help="groups (of --group-size clips) per Ray call: larger means less scheduling overhead "
                            "on big clusters, smaller means finer progress and less redone after a fault")
    group.add_argument("--ray-cpus", type=_positive_int, default=None, metavar="N",
                       help="CPUs the private Ray of --ray local may use (default: all)")
    group.add_argument("--ray-no-local-start", dest="ray_local_start", action="store_false",
                       help="leave every group to Ray (default on CPU: this process computes groups from the front "
                            "while Ray starts, until Ray has finished one; same bytes either way)")


def ray_settings_from_args(args):
    """:class:`RaySettings` from parsed arguments (see :func:`add_ray_options`).

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    RaySettings
    """
    return RaySettings(address=args.ray, actors=getattr(args, "ray_actors", None),
                       threads=getattr(args, "ray_threads", None), batch=getattr(args, "ray_batch", 1),
                       cpus=getattr(args, "ray_cpus", None), local_start=getattr(args, "ray_local_start", True))


@dataclass(frozen=True)
class _Plan:
    """Resources of each stage: see :func:`plan_resources`."""

    actors: int
    threads: int
    actor_cpus: float
    actor_gpus: float
    decode_cpus: float


def plan_resources(*, cluster_cpus, cluster_gpus, cuda, actors=None, threads=None, decode_tasks=True):
    """Size the two stages so that decode tasks always have CPUs and the actors use the rest.

    Parameters
    ----------
    cluster_cpus : float
        The cluster's CPUs (``ray.cluster_resources()["CPU"]``).
    cluster_gpus : float
    cuda : bool
        The network runs on GPUs (one per actor).
    actors, threads : int, optional
        As :class:`RaySettings`.
    decode_tasks : bool
        False: the actors decode their groups themselves (CPU), so nothing is kept for decode tasks.

    Returns
    -------
    _Plan
        ``actors``, torch ``threads`` per actor, ``actor_cpus`` and
        ``actor_gpus`` each actor reserves, ``decode_cpus`` each decode task reserves.

    Raises
    ------
    InvalidArgumentError
        CUDA asked for on a cluster without GPUs (``parameter="device"``), or more actors than the
        cluster can place (``parameter="ray_actors"``).

    Examples
    --------
    >>> plan = plan_resources(cluster_cpus=2, cluster_gpus=0, cuda=False)
    >>> plan.actors, plan.threads, plan.actor_cpus
    (1, 2, 1.75)
    >>> plan = plan_resources(cluster_cpus=64, cluster_gpus=0, cuda=False)
    >>> plan.actors, plan.threads, plan.actor_cpus
    (14, 4, 4.0)
    >>> plan = plan_resources(cluster_cpus=2, cluster_gpus=0, cuda=False, decode_tasks=False)
    >>> plan.actors, plan.threads, plan.actor_cpus, plan.decode_cpus
    (1, 2, 2.0, 0.0)
    """
    decode_reserve = max(DECODE_CPUS, cluster_cpus * DECODE_SHARE) if decode_tasks or cuda else 0.0
    if cuda:
        if cluster_gpus < 1:
            reason = "--device cuda asked for, but the Ray cluster has no GPUs"
            raise InvalidArgumentError(f"device: {reason}", parameter="device", reason=reason)
        actors = actors or int(cluster_gpus)
        # A GPU actor only feeds its GPU: one CPU, less when the cluster is small.
        actor_cpus = min(1.0, max(DECODE_CPUS, (cluster_cpus - decode_reserve) / actors))
        return _Plan(actors, threads or 1, actor_cpus, 1.0, DECODE_CPUS)
    usable = cluster_cpus - decode_reserve
    if actors and actors * DECODE_CPUS > usable:  # Ray would wait for ever for actors that cannot be placed
        reason = (f"{actors} actors need at least {actors * DECODE_CPUS:g} CPUs besides {decode_reserve:g} for "
                  f"decoding; the cluster has {cluster_cpus:g}")
        raise InvalidArgumentError(f"ray_actors: {reason}", parameter="ray_actors", reason=reason)
    # With the pool size given, its actors share the cores; else each actor gets up to MAX_DEFAULT_THREADS.
    threads = threads or max(1, min(MAX_DEFAULT_THREADS, int(cluster_cpus // (actors or 1))))
    actors = actors or max(1, int(usable // threads))
    # Reserve at most the actor's threads, and never the decode tasks' share (fractional on small machines).
    actor_cpus = max(DECODE_CPUS, min(float(threads), math.floor(usable / actors * 4) / 4))
    return _Plan(actors, threads, actor_cpus, 0.0, DECODE_CPUS if decode_reserve else 0.0)


# --------------------------------------------------------------------------- connecting


def payoff_note(clips, *, cluster_cpus, local_cpus=None):
    """A note when ``clips`` are too few for Ray to pay off, else None.

    Ray's fixed cost (:data:`RAY_FIXED_SECONDS`) is set against the time the
    cluster's extra CPUs save (:data:`CPU_SECONDS_PER_CLIP` per clip). On one
    machine (``--ray local``) nothing is saved, so the note says so at any size.

    Parameters
    ----------
    clips : int
        Clips left to compute.
    cluster_cpus : float
    local_cpus : int, optional
        This machine's CPUs (default ``os.cpu_count()``).

    Returns
    -------
    str or None

    Examples
    --------
    >>> payoff_note(1000, cluster_cpus=64, local_cpus=2) is None
    True
    >>> print(payoff_note(120, cluster_cpus=8, local_cpus=2))  # doctest: +ELLIPSIS
    --ray: 120 clips are too few for Ray to pay off: about 6 s on 8 CPUs ... against 5 s locally ...
    """
    local_cpus = local_cpus or os.cpu_count() or 1
    local_s = clips * CPU_SECONDS_PER_CLIP / local_cpus
    ray_s = RAY_FIXED_SECONDS + clips * CPU_SECONDS_PER_CLIP / max(cluster_cpus, 1e-9)  # CPU actors use every core
    if ray_s <= local_s:
        return None
    if cluster_cpus <= local_cpus:
        return (f"--ray: {clips} clips on {cluster_cpus:g} CPUs (no more than this machine's {local_cpus}): Ray adds "
                f"its ~{RAY_FIXED_SECONDS:.0f} s start-up and saves nothing; a local run (without --ray) is faster. "
                "Ray pays off across machines.")
    return (f"--ray: {clips} clips are too few for Ray to pay off: about {ray_s:.0f} s on {cluster_cpus:g} CPUs "
            f"(~{RAY_FIXED_SECONDS:.0f} s of it Ray's start-up) against {local_s:.0f} s locally on {local_cpus}; "
            f"it pays off from about {_break_even(cluster_cpus, local_cpus)} clips.")


def _break_even(cluster_cpus, local_cpus):
    saved_per_clip = CPU_SECONDS_PER_CLIP / local_cpus - CPU_SECONDS_PER_CLIP / cluster_cpus
    return math.ceil(RAY_FIXED_SECONDS / saved_per_clip)


# --------------------------------------------------------------------------- the two stages


def _decode_rows(row, *, device, out, skip_started):
    """Decode stage: one group's log-mel examples and problems (a pickled payload in, one out).

    With ``skip_started`` (a driver share runs), a group the driver has begun
    storing is passed on as ``examples=None``.
    """
    from .extract import group_examples, started_elsewhere

    group = pickle.loads(row["group"])
    if skip_started and started_elsewhere(out, group):
        return {"work": pickle.dumps((group, None, []), protocol=5)}
    examples, problems = group_examples(group, device=device, workers=0)  # parallelism comes from Ray tasks
    return {"work": pickle.dumps((group, examples, problems), protocol=5)}


class _Network:
    """Network stage: a long-lived actor holding one model; embeds and stores a group per row."""

    def __init__(self, model_box, engine, threads, out, skip_started):
        self._setup(engine, threads, out, skip_started)
        self.model = self._load(model_box)

    def _setup(self, engine, threads, out, skip_started):
        import torch

        from ..runtime import runtime_settings

        if engine.device.type == "cpu":
            torch.set_num_threads(threads)  # not Ray's OMP_NUM_THREADS=1: the actor's share of the cores
        self.engine, self.out, self.skip_started = engine, out, skip_started
        self.runtime = json.dumps(runtime_settings())

    def _load(self, model_box):
        """The model in ``model_box`` (a one-item list, so Ray hands over the reference, not the model)."""
        import ray

        return ray.get(model_box[0]).to(self.engine.device)

    def __call__(self, row):
        return {"report": json.dumps(self._store(*pickle.loads(row["work"])))}

    def _store(self, group, examples, problems):
        """Embed and store one group; its report (``skipped`` when the driver has begun it)."""
        from .extract import group_embeddings, started_elsewhere, store_group

        if examples is None or (self.skip_started and started_elsewhere(self.out, group)):  # the driver has it
            return {"index": group.index, "skipped": True}
        written = store_group(self.out, group, group_embeddings(examples, self.model, self.engine))
        return {"index": group.index, "written": written, "problems": [p.as_dict() for p in problems],
                "runtime": self.runtime}


class _GroupWorker(_Network):
    """A CPU actor that runs whole groups as a local run does: decode and log-mel, network, store.

    The model comes with each call, not to the constructor: an actor that Ray restarts (``max_restarts``)
    re-runs its constructor, and one whose arguments live in the object store made Ray print a warning
    on every run (ray#53727). The reference is fetched on the first call after a (re)start.
    """

    def __init__(self, engine, threads, out, skip_started):
        self._setup(engine, threads, out, skip_started)
        self.model = None

    def run(self, groups, model_box):
        """The reports of ``groups`` (a batch of :class:`~warblr.lab.extract.Group`), in order."""
        from .extract import group_examples, started_elsewhere

        if self.model is None:
            self.model = self._load(model_box)
        reports = []
        for group in groups:
            if self.skip_started and started_elsewhere(self.out, group):  # the driver has it: do not decode
                reports.append(self._store(group, None, []))
            else:
                reports.append(self._store(group, *group_examples(group, device="cpu", workers=self.engine.workers)))
        return reports


def _quiet_ray_data():
    """Ray Data's progress bars and info lines off: warblr draws its own bar."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # Its one warning is that progress bars are off, which this function just did.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return context


def _task_error(exc):
    """The warblr error a failed Ray task raised, if any (else None)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, WarblrError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__
    return None


def run_extract(dataset, out, *, model, provenance, group_size, engine, progress, ray=None,
                hop=spec.EXAMPLE_HOP_SECONDS):
    """:func:`warblr.lab.extract.extract`, or :func:`extract_on_ray` when ``ray`` holds Ray settings.

    The one place that picks the runner, so the local extract never depends on this module.
    """
    if ray is None:
        from .extract import extract

        return extract(dataset, out, model=model, provenance=provenance, group_size=group_size, engine=engine,
                       progress=progress, hop=hop)
    return extract_on_ray(dataset, out, model=model, provenance=provenance, group_size=group_size, engine=engine,
                          progress=progress, settings=ray, hop=hop)


def extract_on_ray(dataset, out, *, model, provenance, group_size, engine, progress, settings,
                   hop=spec.EXAMPLE_HOP_SECONDS):
    """Run :func:`warblr.lab.extract.extract`'s groups on Ray.

    Parameters
    ----------
    dataset : warblr.lab.dataset.Dataset
    out : str or os.PathLike
        Output folder, visible at the same path on every node.
    model : VGGish, keyword-only
    provenance : warblr.weights.WeightsProvenance, keyword-only
    group_size : int, keyword-only
    engine : warblr.embed.Engine, keyword-only
    progress : bool, keyword-only
        A tqdm bar on stderr, advanced by finished groups.
    settings : RaySettings, keyword-only
    hop : float, keyword-only
        Seconds between example starts (as the local extract's ``hop``).

    Returns
    -------
    warblr.lab.extract.ExtractResult
        As a local run's; ``runtime`` holds each distinct network actor's
        :func:`~warblr.runtime.runtime_settings`.

    Raises
    ------
    InvalidArgumentError
        The cluster cannot be reached (``parameter="ray"``).
    OutputError
        An item cannot be written; finished items are kept.

    Examples
    --------
    >>> from warblr.lab.extract import extract                                       # doctest: +SKIP
    >>> extract(dataset, "out", model=model, provenance=provenance,
    ...         ray=RaySettings("local", actors=2))                                   # doctest: +SKIP
    """
    from tqdm import tqdm

    from .extract import ExtractResult, open_store, plan_groups

    start = time.perf_counter()
    result = ExtractResult()
    with open_store(out) as items_dir, tqdm(total=len(dataset.items), desc="extract (ray)", unit="clip",
                                            disable=not progress, file=sys.stderr) as bar:
        groups, result.done, result.failed = plan_groups(
            dataset, out, provenance, precision=engine.precision, group_size=group_size, workers=engine.workers,
            on_group=bar.update, hop=hop, log_mel_device="cpu")  # the decode tasks compute the log-mel on CPU
        result.reused = len(result.done)
        tally = _Tally(groups, bar, len(dataset.items), group_size)
        share = None
        if groups and settings.local_start and engine.device.type == "cpu":
            share = _DriverShare(groups, out, model=model, engine=engine, on_report=tally.add)
        started, reports = False, None
        try:
            if groups:  # nothing left to do: Ray is not even started
                started = connect(settings)
                import ray

                note = payoff_note(sum(len(g.missing) for g in groups),
                                   cluster_cpus=ray.cluster_resources().get("CPU", 0))
                if note and engine.device.type == "cpu":
                    print(note, file=sys.stderr)
                # With a driver share Ray starts from the back, away from the driver's groups.
                order = groups[::-1] if share is not None else groups
                if not tally.complete():
                    reports = _Background(lambda: _run_groups(order, out, model=model, engine=engine,
                                                              settings=settings, skip_started=share is not None))
                    for report in reports.until(tally.complete):
                        tally.add(report)
                        if share is not None and not report.get("skipped"):
                            share.ray_finished()
                if share is not None:
                    share.stop()
                    if share.error is None:
                        # A group Ray skipped because it saw it begun, and nobody finished (a killed Ray
                        # worker's partial write of a retried group): computed here.
                        share.finish([g for g in groups if g.index in tally.left()])
        finally:
            if share is not None:
                share.stop()
            if reports is not None:
                # Ray's work is closed first (the actors killed), so nothing computes on when Ray goes; a pipeline
                # still blocked after that is ended by ray.shutdown (a private Ray's end; on a cluster, the job's).
                reports.stop(wait_seconds=OWN_SESSION_CLOSE_SECONDS if started else SHARED_PIPELINE_CLOSE_SECONDS)
            if started:
                shutdown(wait_for=[reports.join] if reports is not None else ())
            from ..fileio import remove_temporaries

            remove_temporaries(items_dir)  # a killed actor's half-written temporaries
        if share is not None and share.error is not None:
            raise share.error
    written, problems = tally.written, tally.problems
    result.computed = sum(map(len, written.values()))
    result.computed_here = sum(len(written[index]) for index in share.indices) if share is not None else 0
    result.done = sorted(result.done + [item_id for ids in written.values() for item_id in ids])
    result.failed.extend(p for index in sorted(problems) for p in problems[index])  # in a local run's order
    result.runtime = [json.loads(r) for r in sorted(tally.runtimes)]
    result.seconds = time.perf_counter() - start
    return result


class _Background:
    """A generator run in a thread, read with a stop condition, so the driver never waits on Ray's next row.

    When the driver's share has written every group, Ray's rows still to come
    are only skips: :meth:`until` returns at once, and ``ray.shutdown`` ends
    the pipeline the thread is still reading.
    """

    _END = object()

    def __init__(self, make_generator):
        self._queue, self._stop = queue.Queue(), threading.Event()
        self._thread = threading.Thread(target=self._read, args=(make_generator,), name="warblr-ray-rows",
                                        daemon=True)
        self._thread.start()

    def _read(self, make_generator):
        try:
            with contextlib.closing(make_generator()) as rows:  # closing it shuts the Ray work down
                for row in rows:
                    if self._stop.is_set():
                        break
                    if row is not None:  # None: no report yet, a chance to stop
                        self._queue.put(row)
        except BaseException as exc:  # re-raised in the driver's thread
            self._queue.put(exc)
        self._queue.put(self._END)

    def stop(self, *, wait_seconds):
        """Close the generator at its next row; wait up to ``wait_seconds`` for that (its rows left are skips)."""
        self._stop.set()
        self.join(wait_seconds)

    def join(self, timeout):
        """Wait up to ``timeout`` seconds for the reading thread to end."""
        self._thread.join(timeout=timeout)

    def until(self, done, *, poll_seconds=0.1):
        """Yield rows until the generator ends or ``done()`` is true; re-raise the generator's error."""
        while not done():
            try:
                row = self._queue.get(timeout=poll_seconds)
            except queue.Empty:
                continue
            if row is self._END:
                return
            if isinstance(row, BaseException):
                raise row
            yield row


class _Tally:
    """The reports of a run's groups, from Ray and from the driver's share (two threads), each group counted once."""

    def __init__(self, groups, bar, n_items, group_size):
        self._left = {g.index for g in groups}
        self._bar, self._n_items, self._group_size = bar, n_items, group_size
        self._lock = threading.Lock()
        self.written, self.problems, self.runtimes = {}, {}, set()

    def add(self, report):
        from .dataset import Problem

        if report.get("skipped"):
            return
        index = report["index"]
        with self._lock:
            if index in self._left:
                self._left.discard(index)
                first = index * self._group_size
                self._bar.update(min(self._n_items, first + self._group_size) - first)
            self.written[index] = report["written"]  # a group computed twice wrote the same ids, same bytes
            self.problems[index] = [Problem(**p) for p in report["problems"]]
            self.runtimes.add(report["runtime"])

    def complete(self):
        with self._lock:
            return not self._left

    def left(self):
        """Indices of the groups no report has come for."""
        with self._lock:
            return set(self._left)


class _DriverShare:
    """The driver's own share of a Ray run: groups from the front, in a thread, while Ray starts.

    It takes the next group until Ray has finished one (reported, or its first
    group, the last one, stored: Ray works from the back), the next group is
    begun by Ray, or :meth:`stop` is called. Ray up means the share is over:
    on one machine the two would compute on the same cores (measured on 2
    cores: 13.4 s with the driver going on, 12.9 s for Ray alone, 120 clips).
    A group both compute (at most the ones in hand) is written twice,
    atomically, with the same bytes: the same functions as a local run, on the
    same groups.
    """

    def __init__(self, groups, out, *, model, engine, on_report):
        self._pending = collections.deque(groups)
        self._rays_first = groups[-1]  # Ray starts from the back
        self._ray_is_up, self._stopped = False, False
        self._lock = threading.Lock()
        self._out, self._model, self._engine, self._on_report = out, model, engine, on_report
        self.indices, self.error = [], None
        self._thread = threading.Thread(target=self._work, name="warblr-local-start", daemon=True)
        self._thread.start()

    def ray_finished(self):
        """Ray has finished a group: take no new one (on one machine both would share the cores)."""
        with self._lock:
            self._ray_is_up = True

    def _next(self):
        with self._lock:
            if self._stopped or not self._pending or self._ray_is_up:
                return None
            return self._pending.popleft()

    def _compute(self, group):
        from ..runtime import runtime_settings
        from .extract import group_embeddings, group_examples, store_group

        examples, problems = group_examples(group, device=self._engine.device, workers=self._engine.workers)
        written = store_group(self._out, group, group_embeddings(examples, self._model, self._engine))
        self.indices.append(group.index)
        self._on_report({"index": group.index, "written": written, "problems": [p.as_dict() for p in problems],
                         "runtime": json.dumps(runtime_settings())})

    def _work(self):
        from .extract import started_elsewhere

        try:
            # Ray's rows reach the driver late and in bunches; its items on disk tell at once where it is.
            while ((group := self._next()) is not None and not started_elsewhere(self._out, group)
                   and (group is self._rays_first or not started_elsewhere(self._out, self._rays_first))):
                self._compute(group)
        except BaseException as exc:  # re-raised by the driver once Ray is shut down
            self.error = exc

    def stop(self):
        """Take no new group and wait for the one in hand."""
        with self._lock:
            self._stopped = True
        self._thread.join()

    def finish(self, groups):
        """Compute ``groups`` here, now (no report came for them: Ray skipped a group it saw begun)."""
        for group in groups:
            self._compute(group)


def _run_groups(groups, out, *, model, engine, settings, skip_started=False):
    """Yield one report dict per finished group, in completion order (``{"skipped": True}`` for skipped ones).

    Also yields None now and then while waiting, so that a reader can stop.
    """
    import ray

    cuda = engine.device.type == "cuda"
    decode_tasks = cuda if settings.decode_tasks is None else settings.decode_tasks
    resources = ray.cluster_resources()
    plan = plan_resources(cluster_cpus=resources.get("CPU", 0), cluster_gpus=resources.get("GPU", 0), cuda=cuda,
                          actors=settings.actors, threads=settings.threads, decode_tasks=decode_tasks)
    model_ref = ray.put(model)  # held here until the end, so a restarted actor can fetch it again
    try:
        if decode_tasks:
            yield from _run_pipeline(groups, out, model_ref=model_ref, engine=engine, settings=settings, plan=plan,
                                     skip_started=skip_started)
        else:
            yield from _run_on_actors(groups, out, model_ref=model_ref, engine=engine, settings=settings, plan=plan,
                                      skip_started=skip_started)
    finally:
        del model_ref


def _run_on_actors(groups, out, *, model_ref, engine, settings, plan, skip_started):
    """The CPU path: a pool of :class:`_GroupWorker` actors fed by the driver, ``--ray-batch`` groups a call.

    Ray core, not Ray Data: on 2 cores Ray Data's scheduling loop in the driver and its helper actors took
    about 12 % of the CPU beside the actors, and its first pipeline 2 s to start (see the module docstring).
    A killed actor is restarted and its calls retried (``max_restarts``/``max_task_retries``).
    """
    import ray

    worker = ray.remote(_GroupWorker).options(num_cpus=plan.actor_cpus, max_restarts=-1, max_task_retries=-1)
    actors = [worker.remote(engine, plan.threads, os.fspath(out), skip_started) for _ in range(plan.actors)]
    model_box = [model_ref]
    batches = collections.deque(groups[i:i + settings.batch] for i in range(0, len(groups), settings.batch))
    running = {}  # call -> actor
    try:
        for _ in range(CALLS_PER_ACTOR):  # a call queued behind the running one: no gap between groups
            for actor in actors:
                if batches:
                    running[actor.run.remote(batches.popleft(), model_box)] = actor
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=ACTOR_POLL_SECONDS)
            if not ready:
                yield None
                continue
            actor = running.pop(ready[0])
            try:
                done = ray.get(ready[0])
            except Exception as exc:  # a task's own error (disk full, ...) comes wrapped by Ray
                error = _task_error(exc)
                if error is not None:
                    raise error from exc
                raise
            if batches:
                running[actor.run.remote(batches.popleft(), model_box)] = actor
            yield from done
    finally:
        for call in running:  # cancelled first: a call cut short by its actor's death is retried, and said so
            ray.cancel(call)
        for actor in actors:  # on a shared cluster too: none outlives the run
            ray.kill(actor, no_restart=True)


def _run_pipeline(groups, out, *, model_ref, engine, settings, plan, skip_started):
    """The two-stage path: Ray Data decode tasks feeding a pool of :class:`_Network` actors (GPU runs)."""
    import ray.data

    _quiet_ray_data()
    blocks = math.ceil(len(groups) / settings.batch)
    pipeline = (
        ray.data.from_items([{"group": pickle.dumps(g, protocol=5)} for g in groups], override_num_blocks=blocks)
        .map(_decode_rows, fn_kwargs={"device": "cpu", "out": os.fspath(out), "skip_started": skip_started},
             num_cpus=plan.decode_cpus)
        .map(_Network, compute=ray.data.ActorPoolStrategy(size=plan.actors),
             fn_constructor_kwargs={"model_box": [model_ref], "engine": engine, "threads": plan.threads,
                                    "out": os.fspath(out), "skip_started": skip_started},
             num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus or None)
    )
    try:
        for row in pipeline.iter_rows():
            yield json.loads(row["report"])
    except Exception as exc:  # a task's own error (disk full, ...) comes wrapped by Ray
        error = _task_error(exc)
        if error is not None:
            raise error from exc
        raise
