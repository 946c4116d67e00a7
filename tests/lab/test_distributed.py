"""``warblr extract --ray``: a real private Ray (2 CPUs), no mocks.

A Ray run equals a local run byte for byte, reports bad items the same way,
resumes, survives a SIGKILLed worker or actor and a SIGKILLed driver, and
says clearly when a cluster cannot be reached. Without ``--ray`` nothing
imports Ray.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from warblr.embed import make_engine
from warblr.errors import InvalidArgumentError
from warblr.fileio import TMP_PREFIX
from warblr.lab.dataset import read_dataset
from warblr.lab.distributed import RaySettings, plan_resources, run_extract

ray = pytest.importorskip("ray")

ENGINE = make_engine(device="cpu", workers=2)
GROUP_SIZE = 2
#: Process titles of this module's Ray workers (see warblr.lab.distributed): the CPU path's actors, and the
#: two-stage path's actors and decode tasks (the path of --device cuda, run here on CPU with decode_tasks=True).
GROUP_TITLE = "ray::_GroupWorker"
NETWORK_TITLE, DECODE_TITLE = "ray::MapWorker(Map(_Network))", "ray::Map(_decode_rows)"


@pytest.fixture(scope="module")
def ray_session():
    """One private Ray for the module's in-process tests, shut down at the end."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory, make_tree):
    return make_tree(tmp_path_factory.mktemp("ray") / "data", 5, 3, bad=True)


def run(tree, out, model, provenance, ray_settings=None):
    return run_extract(read_dataset(tree), out, model=model, provenance=provenance, group_size=GROUP_SIZE,
                       engine=ENGINE, progress=False, ray=ray_settings)


def item_bytes(out):
    """Every item file's bytes, by name."""
    return {path.name: path.read_bytes() for path in sorted((Path(out) / "items").glob("*.npz"))}


def finished_items(out):
    """Names of the items written in full: a kill inside an atomic write leaves its temporary beside them."""
    return {path.name for path in (Path(out) / "items").glob("*.npz") if not path.name.startswith(TMP_PREFIX)}


@pytest.fixture(scope="module")
def local(tree, tmp_path_factory, random_model, random_provenance):
    out = tmp_path_factory.mktemp("local")
    return run(tree, out, random_model, random_provenance), item_bytes(out)


@pytest.mark.slow  # Ray start-up and a full run; the default pass keeps Ray's errors and imports
def test_ray_run_equals_local_run_byte_for_byte(ray_session, tree, local, tmp_path, random_model,
                                               random_provenance, bad_ids):
    local_result, local_items = local
    result = run(tree, tmp_path, random_model, random_provenance, RaySettings("local"))
    assert len(local_items) == 8 and item_bytes(tmp_path) == local_items
    assert result.done == local_result.done and result.computed == 8
    # Bad items: the same ids, reasons and order as a local run.
    assert [(p.item_id, p.reason) for p in result.failed] == [(p.item_id, p.reason) for p in local_result.failed]
    dataset_problems = {p.item_id for p in read_dataset(tree).problems}
    assert {p.item_id for p in result.failed} | dataset_problems == bad_ids
    assert {p.item_id for p in result.failed} == {"tooshort", "notaudio", "empty"}
    # The actors' thread settings are recorded.
    assert result.runtime and all("torch_threads" in r for r in result.runtime)
    assert not list((tmp_path / "items").glob(".tmp-*"))
    # Resume: finished items are skipped before any work is scheduled.
    again = run(tree, tmp_path, random_model, random_provenance, RaySettings("local"))
    assert (again.computed, again.reused) == (0, 8) and item_bytes(tmp_path) == local_items


@pytest.mark.slow
def test_the_driver_and_ray_share_the_groups_and_give_the_local_bytes(ray_session, tree, local, tmp_path,
                                                                     random_model, random_provenance, monkeypatch):
    """The driver starts at the front, Ray at the back; a driver that waits for Ray leaves it the rest."""
    from warblr.lab import extract

    real = extract.group_embeddings
    last_item = tmp_path / "items" / f"{local[0].done[-1]}.npz"  # in Ray's first group (it starts at the back)

    def slow_here(*args, **kwargs):  # only this process (the driver): Ray's actors run the real function
        deadline = time.monotonic() + 120
        while not last_item.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "group_embeddings", slow_here)
    result = run(tree, tmp_path, random_model, random_provenance, RaySettings("local"))
    assert item_bytes(tmp_path) == local[1] and result.done == local[0].done
    assert 0 < result.computed_here < result.computed == 8  # the driver's first group, and Ray's from the back
    assert [(p.item_id, p.reason) for p in result.failed] == [(p.item_id, p.reason) for p in local[0].failed]
    assert not list((tmp_path / "items").glob(".tmp-*"))


@pytest.mark.slow
def test_a_group_seen_begun_but_never_reported_is_computed_by_the_driver(ray_session, tree, local, tmp_path,
                                                                        random_model, random_provenance, monkeypatch):
    """As after a Ray worker killed half-way through writing a group: Ray's retry skips it, the driver sweeps it up."""
    from warblr.lab import extract

    real, planted = extract.group_embeddings, []
    half_written = sorted(local[1])[5]  # item-005, with item-006 in the group of 2 that holds it

    def plant_then_compute(*args, **kwargs):
        if not planted:  # the driver's first group, seconds before Ray reaches the middle
            (tmp_path / "items" / half_written).write_bytes(local[1][half_written])
            planted.append(half_written)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "group_embeddings", plant_then_compute)
    result = run(tree, tmp_path, random_model, random_provenance, RaySettings("local"))
    assert planted and item_bytes(tmp_path) == local[1]
    assert result.done == local[0].done and result.computed == 8


@pytest.mark.slow
def test_an_error_in_the_drivers_share_is_raised_after_ray_is_done(ray_session, tree, local, tmp_path, random_model,
                                                                    random_provenance, monkeypatch):
    from warblr.errors import OutputError
    from warblr.lab import extract

    def full_disk(out, group, computed, *, kept=0):  # the driver's writes only: Ray's actors write for real
        raise OutputError(f"{out}: no space left on device (test)")

    monkeypatch.setattr(extract, "store_group", full_disk)
    with pytest.raises(OutputError, match="no space left"):
        run(tree, tmp_path, random_model, random_provenance, RaySettings("local"))
    assert item_bytes(tmp_path) == local[1], "Ray's items are kept, and they are the local run's"


@pytest.mark.slow
def test_without_local_start_the_driver_computes_nothing(ray_session, tree, local, tmp_path, random_model,
                                                         random_provenance):
    result = run(tree, tmp_path, random_model, random_provenance, RaySettings("local", local_start=False))
    assert result.computed == 8 and result.computed_here == 0 and item_bytes(tmp_path) == local[1]


@pytest.mark.slow
@pytest.mark.parametrize("decode_tasks", [None, True], ids=["actors", "two-stage"])
def test_two_actors_and_batches_of_groups_give_the_same_bytes(decode_tasks, ray_session, tree, local, tmp_path,
                                                              random_model, random_provenance):
    result = run(tree, tmp_path, random_model, random_provenance,
                 RaySettings("local", actors=2, threads=1, batch=2, local_start=False, decode_tasks=decode_tasks))
    assert item_bytes(tmp_path) == local[1]
    assert [(p.item_id, p.reason) for p in result.failed] == [(p.item_id, p.reason) for p in local[0].failed]


def test_resources_never_starve_the_decode_tasks():
    for cpus in (1, 2, 3, 8, 64, 1000):
        for actors in (None, 1, 2, 7):
            if actors == 7 and cpus == 1:  # 7 x 0.25 CPU actors + 0.25 for decoding do not fit
                with pytest.raises(InvalidArgumentError, match="7 actors need") as info:
                    plan_resources(cluster_cpus=cpus, cluster_gpus=0, cuda=False, actors=actors)
                assert info.value.parameter == "ray_actors"
                continue
            plan = plan_resources(cluster_cpus=cpus, cluster_gpus=0, cuda=False, actors=actors)
            assert plan.actors * plan.actor_cpus + plan.decode_cpus <= cpus, (cpus, actors, plan)
            assert plan.threads >= 1 and plan.actor_cpus > 0
            plan = plan_resources(cluster_cpus=cpus, cluster_gpus=0, cuda=False, actors=actors, decode_tasks=False)
            assert plan.actors * plan.actor_cpus <= cpus and plan.decode_cpus == 0, (cpus, actors, plan)
    # Actors that decode their own groups take every CPU: one of 2 CPUs and 2 threads on 2 cores.
    plan = plan_resources(cluster_cpus=2, cluster_gpus=0, cuda=False, decode_tasks=False)
    assert (plan.actors, plan.threads, plan.actor_cpus) == (1, 2, 2.0)
    with pytest.raises(InvalidArgumentError, match="9 actors need") as info:
        plan_resources(cluster_cpus=2, cluster_gpus=0, cuda=False, actors=9, decode_tasks=False)
    assert info.value.parameter == "ray_actors"
    plan = plan_resources(cluster_cpus=32, cluster_gpus=4, cuda=True)
    assert (plan.actors, plan.actor_gpus) == (4, 1.0) and 4 * plan.actor_cpus + plan.decode_cpus <= 32
    with pytest.raises(InvalidArgumentError, match="no GPUs") as info:
        plan_resources(cluster_cpus=8, cluster_gpus=0, cuda=True)
    assert info.value.parameter == "device"


def _children_of(pid):
    """Pids whose parent is ``pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return children


def _descendants(pid):
    """Every process below ``pid``."""
    found = _children_of(pid)
    for child in list(found):
        found += _descendants(child)
    return found


def _title(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def kill_when_busy(title, items_dir, killed, seen, driver_pid):
    """SIGKILL one worker titled ``title`` mid-run: an actor once the first item is written, a decode task
    worker as soon as one runs (decode tasks are short)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not killed:
        if title == DECODE_TITLE or any(items_dir.glob("*.npz")):
            for raylet in _children_of(driver_pid):
                for pid in _children_of(raylet):
                    seen.add(_title(pid))
                    if _title(pid).startswith(title):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.parametrize("title, decode_tasks", [(GROUP_TITLE, None), (NETWORK_TITLE, True), (DECODE_TITLE, True)],
                         ids=["actor", "two-stage-actor", "decode-worker"])
def test_a_killed_ray_worker_is_retried_and_every_item_is_identical(title, decode_tasks, ray_session, tree, local,
                                                                    tmp_path, random_model, random_provenance):
    killed, seen = [], set()  # only workers of this test's Ray: children of its raylet, a child of this process
    killer = threading.Thread(target=kill_when_busy, args=(title, tmp_path / "items", killed, seen, os.getpid()),
                              daemon=True)
    killer.start()
    result = run(tree, tmp_path, random_model, random_provenance,
                 RaySettings("local", local_start=False, decode_tasks=decode_tasks))
    killer.join(timeout=5)
    assert killed, f"no {title} process was killed; saw {sorted(seen)}"
    assert result.computed == 8 and item_bytes(tmp_path) == local[1]
    assert not list((tmp_path / "items").glob(".tmp-*"))


def command(tree, out, *options):
    return [sys.executable, "-m", "warblr", "extract", "--data", str(tree), "--out", str(out), "--weights",
            "random", "--group-size", str(GROUP_SIZE), "--device", "cpu", "--quiet", *options]


@pytest.mark.slow  # waits out Ray's connection timeout
def test_an_unreachable_cluster_is_a_clear_error(tree, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    done = subprocess.run(command(tree, tmp_path, "--ray", address), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"warblr: error: --ray: cannot reach a Ray cluster at '{address}'" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_ray_nothing_imports_ray(tree, tmp_path):
    script = ("import sys\nfrom warblr import cli\n"
              f"assert cli.main({command(tree, tmp_path)[3:]!r}) == 0\n"
              "assert 'ray' not in sys.modules, 'ray was imported'\nprint('no ray')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no ray" in done.stdout


@pytest.mark.slow  # starts a private Ray in a fresh process
def test_shutting_down_never_starts_a_second_ray_for_a_thread_still_using_it():
    """A Ray Data reader the driver stopped calls ``ray.cancel`` after the shutdown: Ray's auto-connect would
    start a new local Ray for it; :func:`warblr.raycluster.shutdown` turns that off until the thread is done."""
    script = ("import threading, ray\nfrom warblr.raycluster import RaySettings, connect, shutdown\n"
              "assert connect(RaySettings('local', cpus=1))\n"
              "go, seen = threading.Event(), []\n"
              "def late():\n    go.wait()\n    try:\n        ray.put(1)\n        seen.append('put worked')\n"
              "    except Exception as exc:\n        seen.append(type(exc).__name__)\n"
              "thread = threading.Thread(target=late)\nthread.start()\n"
              "def join(timeout):\n    go.set()\n    thread.join(timeout)\n"
              "shutdown(wait_for=[join])\n"
              "print(seen, ray.is_initialized())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['RaySystemError'] False", done.stdout
    assert "Token authentication" not in done.stderr  # a private Ray's start-up notice is not shown


@pytest.mark.slow  # starts a private Ray in a fresh process
def test_a_private_ray_runs_lean_and_its_workers_inherit_the_drivers_math_settings():
    """``--ray local`` passes no runtime_env: its workers must still run under the driver's MKL settings. It
    starts no autoscaler monitor or log monitor (nothing to autoscale, no logs sent: CPU beside the driver's
    work, and a monitor that held the shutdown 1 s); a worker's error still reaches the driver."""
    script = ("import os, ray\nfrom ray._private import worker\nfrom warblr.raycluster import RaySettings, connect\n"
              "connect(RaySettings('local', cpus=1))\n"
              "print(sorted(worker._global_node.all_processes))\n"
              "task = ray.remote(lambda: [os.environ.get(n) for n in ('MKL_CBWR', 'MKL_DYNAMIC', 'OMP_WAIT_POLICY')])\n"
              "print(ray.get(task.options(num_cpus=1).remote()))\n"
              "def fail():\n    raise ValueError('a worker failed')\n"
              "try:\n    ray.get(ray.remote(fail).options(num_cpus=1, max_retries=0).remote())\n"
              "except ray.exceptions.RayTaskError as exc:\n    print('a worker failed' in str(exc))\n"
              "ray.shutdown()\n")
    env = {**os.environ, "MKL_CBWR": "AVX2,STRICT", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    processes, settings, failed = done.stdout.strip().splitlines()[-3:]
    assert "'raylet'" in processes and "'gcs_server'" in processes
    assert "'monitor'" not in processes and "'log_monitor'" not in processes, processes
    assert settings == "['AVX2,STRICT', 'FALSE', 'PASSIVE']"
    assert failed == "True"


@pytest.mark.slow  # starts a private Ray in a fresh process
def test_a_private_ray_goes_down_only_once_its_work_is_closed(tmp_path):
    """The driver finishes first (the default on a small machine: two groups of 16 ten-second clips, both its
    own before Ray's actor is done with one): Ray's reader ends, its actors killed, before the private Ray is
    shut down. A reader still in ``ray.wait`` then hung there for seconds, the actor computing on; an actor
    killed with calls pending made Ray print that they would be retried, and one given the model through its
    constructor, that a restart depends on the object store (ray#53727)."""
    from warblr.lab.corpus import make_corpus

    tree = make_corpus(tmp_path / "data", n_clips=32, seed=0, duration=10.0, sample_rate=44100)[0]
    options = [*command(tree, tmp_path / "out", "--ray", "local", "--ray-cpus", "2")[3:], "--group-size", "16"]
    script = ("import threading\nimport warblr.lab.distributed as distributed\nfrom warblr import cli\n"
              "readers, real = [], distributed.shutdown\n"
              "def shutdown(**kwargs):\n"
              "    readers.append([t.name for t in threading.enumerate() if t.name == 'warblr-ray-rows'])\n"
              "    real(**kwargs)\n"
              "distributed.shutdown = shutdown\n"
              f"assert cli.main({options!r}) == 0\n"
              "print(readers)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[[]]", done.stdout[-2000:]
    for noise in ("Traceback", "will be retried", "killed by `ray.kill`", "constructor arguments in the object store"):
        assert noise not in done.stderr, done.stderr[-3000:]


def test_the_local_start_option_reaches_the_settings():
    import argparse

    from warblr.lab.distributed import add_ray_options, ray_settings_from_args

    parser = argparse.ArgumentParser()
    add_ray_options(parser)
    assert ray_settings_from_args(parser.parse_args(["--ray", "local"])).local_start is True
    assert ray_settings_from_args(parser.parse_args(["--ray", "local", "--ray-no-local-start"])).local_start is False
    with pytest.raises(InvalidArgumentError) as info:
        RaySettings("local", local_start="yes")
    assert info.value.parameter == "ray_local_start"


def test_ray_settings_are_validated():
    with pytest.raises(InvalidArgumentError) as info:
        RaySettings("local", actors=0)
    assert info.value.parameter == "ray_actors"
    with pytest.raises(InvalidArgumentError) as info:
        RaySettings("local", decode_tasks="yes")
    assert info.value.parameter == "ray_decode_tasks"
    with pytest.raises(InvalidArgumentError) as info:
        RaySettings(" ")
    assert info.value.parameter == "ray"


@pytest.mark.slow
def test_a_killed_driver_loses_only_unfinished_groups_and_the_command_resumes(tree, local, tmp_path):
    out = tmp_path / "out"
    ray_processes = []
    # Ray alone: a driver computing its own share would finish these tiny groups before the kill lands.
    driver = subprocess.Popen(command(tree, out, "--ray", "local", "--ray-cpus", "2", "--ray-no-local-start"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not finished_items(out) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        ray_processes = _descendants(driver.pid)  # its private Ray: raylet, GCS, workers, actors
        driver.send_signal(signal.SIGKILL)
        assert driver.wait(timeout=60) == -signal.SIGKILL
    finally:
        # Ray's processes notice their driver is gone within seconds; a node dying with it is the worst case,
        # and no test may leave Ray running: kill them now.
        for pid in ray_processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(1)
    kept = {name: data for name, data in item_bytes(out).items() if name in finished_items(out)}
    assert 0 < len(kept) < 8
    assert all(local[1][name] == data for name, data in kept.items())
    done = subprocess.run(command(tree, out, "--ray", "local", "--ray-cpus", "2"), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"({8 - len(kept)} computed, {len(kept)} reused)" in done.stdout
    assert item_bytes(out) == local[1]
    # The driver finishes first and stops reading Ray's pipeline: its teardown is silent, with no second Ray.
    for noise in ("Traceback", "SIGTERM handler is not set", "Progress bars disabled", "Token authentication"):
        assert noise not in done.stderr, done.stderr[-3000:]


def test_the_payoff_note_says_when_ray_cannot_pay_off():
    from warblr.lab.distributed import RAY_FIXED_SECONDS, payoff_note

    one_machine = payoff_note(10_000, cluster_cpus=2, local_cpus=2)
    assert "--ray" in one_machine and "saves nothing" in one_machine  # one machine: never, at any size
    small = payoff_note(100, cluster_cpus=16, local_cpus=2)
    assert "too few" in small and f"{RAY_FIXED_SECONDS:.0f} s" in small
    break_even = int(small.rsplit("from about ", 1)[1].split()[0])
    assert payoff_note(break_even - 1, cluster_cpus=16, local_cpus=2) is not None
    assert payoff_note(break_even, cluster_cpus=16, local_cpus=2) is None


def _share_groups(tree, out, provenance):
    from warblr.lab.extract import open_store, plan_groups

    with open_store(out):
        groups, _, _ = plan_groups(read_dataset(tree), out, provenance, precision=ENGINE.precision,
                                   group_size=GROUP_SIZE)
    return groups


@pytest.mark.parametrize("how", ["reported", "stored"])
def test_the_drivers_share_stops_once_ray_has_finished_a_group(how, tree, tmp_path, local, random_model,
                                                               random_provenance, monkeypatch):
    """On one machine the driver and Ray's actors share the cores: once Ray is up, the driver takes no new group.

    Ray starts from the back, so its first group is the last one; its report, or its items on disk, end the share.
    """
    from warblr.lab import distributed

    groups = _share_groups(tree, tmp_path, random_provenance)
    # Ray's first group must hold a good item to be seen on disk (bad files are never stored).
    groups = groups[:max(i for i, g in enumerate(groups) if any(f"{m}.npz" in local[1] for m in g.missing)) + 1]
    assert len(groups) >= 3
    release, computed = threading.Event(), []

    def first_group_waits(self, group):
        computed.append(group.index)
        release.wait(60)

    monkeypatch.setattr(distributed._DriverShare, "_compute", first_group_waits)
    share = distributed._DriverShare(groups, tmp_path, model=random_model, engine=ENGINE, on_report=lambda r: None)
    deadline = time.monotonic() + 60
    while not computed and time.monotonic() < deadline:  # the driver holds its first group
        time.sleep(0.01)
    rays_first = groups[-1]
    if how == "reported":
        share.ray_finished()
    else:
        name = next(f"{i}.npz" for i in sorted(rays_first.missing) if f"{i}.npz" in local[1])  # a good item
        (tmp_path / "items" / name).write_bytes(local[1][name])
    release.set()
    share._thread.join(timeout=60)  # it ends by itself: no stop() that could win the race for it
    assert computed == [groups[0].index] and share.error is None
