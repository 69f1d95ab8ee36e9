"""`index --ray`: Ray Data embedding gives the single-process index (ids, vectors within 1e-5).

On a local Ray instance (in this process, and from the CLI with the driver killed mid-run) and
on a two-node cluster on loopback (`ray start --head` + `ray start --address`) that loses its
worker node mid-run. A local instance takes 127.0.0.1. Nodes started with `ray start`
cannot: Ray 2.60 rewrites a loopback address to the machine's own one for any node that may
join a cluster, so they take this machine's address (traffic never leaves it) and listen on
every interface; each test's processes therefore require a token of their own
(RAY_AUTH_MODE=token). Every Ray process a test starts runs in a session of its own, and each
session is killed by its id when the test ends, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from numbpie import embedder as embedders
from numbpie.app.indexer import index_catalog, open_catalog
from numbpie.errors import OptionError, WeightsError
from numbpie.index import Index

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
PRODUCTS = 70  # synth products: 70 catalog rows without vectors + 140 images (shots and model shots) to import
START_TIMEOUT = 300  # seconds of CPU time offered (see _wait); Ray's processes start slowly
WALL_CAP = 3600  # seconds: no wait outlasts this, however busy other jobs keep the cores


# -- data and the single-process reference ---------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A synth catalog (rows without vectors), a source folder to import, and the reference index."""
    from numbpie.synth import write_dataset

    root = tmp_path_factory.mktemp("ray_world")
    synth = root / "synth"
    write_dataset(synth, products=PRODUCTS, street_per_product=0, seed=11, progress=False)
    source = root / "source"
    for kind in ("products", "models"):
        (source / kind).mkdir(parents=True)
        for path in sorted((synth / kind).glob("*.png")):
            shutil.copy(path, source / kind / f"{kind}_{path.name}")
    (source / "products" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    reference = root / "reference"
    shutil.copytree(synth, reference)
    embedder = embedders.load("bundled")
    index, skipped = index_catalog(reference, embedder, _rows(source), checkpoint_every=16)
    return {"synth": synth, "source": source, "reference": reference, "index": index, "skipped": skipped,
            "embedder": embedder, "root": root}


def _rows(source: Path) -> list[tuple]:
    from numbpie.catalog import folder_rows

    return folder_rows(source)


def _fresh_catalog(world, name: str) -> Path:
    """A copy of the synth catalog with no index yet."""
    folder = world["root"] / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(world["synth"], folder)
    return folder


def _vectors(index: Index) -> np.ndarray:
    return index._index.reconstruct_batch(index.ids())


def assert_same_as_reference(folder: Path, world) -> None:
    """The catalog and index in `folder` hold what the single-process path produced."""
    catalog, reference = open_catalog(folder), open_catalog(world["reference"])
    index = Index.load(folder, count=len(catalog), keep_ids=catalog.ids())
    expected = world["index"]
    assert catalog.ids() == reference.ids()
    assert [p.title for p in catalog] == [p.title for p in reference]
    np.testing.assert_array_equal(index.ids(), expected.ids())  # same ids, same (product-id) order
    assert len(np.unique(index.ids())) == len(index) == len(catalog)
    np.testing.assert_allclose(_vectors(index), _vectors(expected), atol=1e-5, rtol=0)


# -- Ray processes: environment, sessions, clean-up ------------------------------------------

@pytest.fixture
def ray_env(monkeypatch):
    """Environment for every Ray process a test starts: small, quiet, private, patient."""
    temp = Path(tempfile.mkdtemp(prefix="npray", dir="/tmp"))  # short: Ray's socket paths must fit
    env = {
        "RAY_TMPDIR": str(temp),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),  # so nothing is written to ~/.ray
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.015",  # ~350 MB on this machine
        # Ray's own timers count wall time: allow for processes starved by other jobs.
        "RAY_agent_register_timeout_ms": str(WALL_CAP * 1000),
        "RAY_worker_register_timeout_seconds": str(WALL_CAP),
        "RAY_health_check_period_ms": "1000",  # a lost node is noticed in seconds
        "RAY_health_check_failure_threshold": "3",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        # A local instance takes 127.0.0.1, not this machine's network address (Ray's switch for
        # single-machine clusters; the two-node test turns it back on: a worker cannot join without).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from ray._private import ray_constants

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # read when ray was imported
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()  # this process may have read the auth mode already, when it imported ray
    yield {**os.environ, **env}
    monkeypatch.undo()
    reset_auth_token_state()
    shutil.rmtree(temp, ignore_errors=True)


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the /proc/PID/stat fields after the name) of every live process (zombies left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry.name), fields


def _session_pids(session: int) -> list[int]:
    """Live processes (not zombies) of a session, read from /proc."""
    return [pid for pid, fields in _live_processes() if int(fields[3]) == session]


def _kill_session(session: int, grace: float = 10.0) -> None:
    """SIGTERM then SIGKILL every process of a session this test started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_pids(session):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while _session_pids(session) and time.monotonic() < deadline:
            time.sleep(0.2)


def _descendants(pid: int) -> set[int]:
    """Live (not zombie) descendants of `pid`, read from /proc."""
    parents = {pid: int(fields[1]) for pid, fields in _live_processes()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture
def own_children():
    """Processes this test process starts (a local Ray instance) are killed after the test.

    ray.shutdown() stops an instance that started; one whose start failed (Ray gives its raylet
    30 s to register, whatever the load) leaves its GCS and monitors running.
    """
    me, before = os.getpid(), _descendants(os.getpid())
    yield
    started = set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _descendants(me) - before:
            started.add(pid)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _descendants(me) - before and time.monotonic() < deadline:
            time.sleep(0.2)
    for pid in started:  # reap our own children among them
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


@pytest.fixture
def sessions():
    """Popen processes started in sessions of their own; all killed after the test."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        _kill_session(process.pid)
        process.wait(timeout=30)


def _spawn(sessions, command: list[str], env: dict, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    sessions.append(process)
    return process


def _runqueue_waits(pids) -> dict[tuple, float]:
    """Seconds each thread of `pids` spent runnable but waiting for a CPU (/proc/.../schedstat)."""
    waits = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                waits[pid, task.name] = int((task / "schedstat").read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
    return waits


def _wait(condition, timeout: float, what: str, sessions=()) -> None:
    """Poll `condition`; fail once `timeout` seconds have passed that our processes could use.

    Seconds in which a thread of `sessions` (their session ids) sat runnable waiting for a CPU
    are not counted: when other jobs hold the cores, a starved run slows down instead of failing,
    while a hang (every process asleep) fails after `timeout`. `condition` is checked before the
    clock, so a late poll never fails what is done. No wait outlasts WALL_CAP.
    """
    start = time.monotonic()
    watched = lambda: [pid for session in sessions for pid in _session_pids(session)]  # noqa: E731
    base, starved = _runqueue_waits(watched()), 0.0
    while not condition():
        now = _runqueue_waits(watched())
        starved = max([starved] + [wait - base.get(key, 0.0) for key, wait in now.items()])
        wall = time.monotonic() - start
        if wall - starved > timeout or wall > WALL_CAP:
            raise AssertionError(f"timed out waiting for {what}: {wall:.0f} s, {starved:.0f} s of them "
                                 "waiting for a CPU")
        time.sleep(0.5)


def _exit_code(process: subprocess.Popen, timeout: float, what: str, sessions) -> int:
    _wait(lambda: process.poll() is not None, timeout, what, sessions)
    return process.returncode


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _indexed(folder: Path) -> int:
    """Vectors in the last saved manifest (0 before the first checkpoint)."""
    try:
        return Index.read_manifest(folder)["count"]
    except (ValueError, OSError):
        return 0


def _index_command(world, folder: Path, ray: str) -> list[str]:
    return [sys.executable, "-m", "numbpie", "index", str(world["source"]), "--catalog", str(folder),
            "--embedder", "bundled", "--ray" if ray == "local" else f"--ray={ray}", "--ray-actors", "2",
            "--ray-batch-size", "8", "--checkpoint-every", "16"]


# -- without Ray running ---------------------------------------------------------------------

def test_embed_batch_is_the_embedder(world):
    """The actor's callable embeds like Embedder.embed and names unreadable files instead of failing."""
    from numbpie.app.ray_index import EmbedBatch

    embedder = world["embedder"]
    paths = sorted((world["source"] / "products").glob("*.png"))[:5]
    call = EmbedBatch("bundled", embedder.identity, embedder.precision)
    out = call({"pos": np.arange(5), "path": np.array([str(p) for p in paths], dtype=object)})
    assert list(out["pos"]) == list(range(5))
    broken = [i for i, p in enumerate(paths) if p.name == "broken.png"]
    assert broken and out["error"][broken[0]]  # says why
    good = [i for i in range(5) if i not in broken]
    assert not any(out["error"][i] for i in good)
    from numbpie import images

    expected = embedder.embed([images.load(paths[i]) for i in good])
    np.testing.assert_allclose(out["vector"][good], expected, atol=1e-5, rtol=0)


def test_embed_batch_runs_in_the_drivers_precision(world):
    """An actor embeds in the precision it is given, whatever "auto" means on its node."""
    from numbpie.app.ray_index import EmbedBatch

    for precision in ("fp32", "bf16"):
        assert EmbedBatch("bundled", world["embedder"].identity, precision).embedder.precision == precision


def test_embed_paths_gets_the_indexs_precision(world):
    """index_catalog hands `embed_paths` the embedder in the precision the index records."""
    seen = []

    def embed_paths(paths, embedder):
        seen.append(embedder.precision)
        for _ in paths:
            yield np.ones(embedder.dim, np.float32), ""

    for precision in ("fp32", "bf16"):
        folder = _fresh_catalog(world, f"precision_{precision}")
        index, _ = index_catalog(folder, world["embedder"].with_precision(precision), embed_paths=embed_paths)
        assert seen[-1] == index.precision == Index.read_manifest(folder)["precision"] == precision
        assert len(index) == PRODUCTS


def test_embed_batch_refuses_other_weights(world):
    from numbpie.app.ray_index import EmbedBatch

    other = {**world["embedder"].identity, "sha256": "0" * 64}
    with pytest.raises(WeightsError, match="same weights on every node"):
        EmbedBatch("bundled", other, world["embedder"].precision)


def test_finished_catalog_never_starts_ray(world, monkeypatch):
    import ray

    from numbpie.app.ray_index import index_with_ray

    def no_ray(*args, **kwargs):
        raise AssertionError("ray.init called with nothing to embed")

    monkeypatch.setattr(ray, "init", no_ray)
    folder = _fresh_catalog(world, "finished")
    shutil.copy(world["reference"] / "index.faiss", folder / "index.faiss")
    shutil.copy(world["reference"] / "index.json", folder / "index.json")
    shutil.copy(world["reference"] / "catalog.sqlite", folder / "catalog.sqlite")
    readable = [row for row in _rows(world["source"]) if row[0].name != "broken.png"]  # broken is retried
    index, skipped = index_with_ray(folder, world["embedder"], "bundled", readable)
    assert len(index) == len(world["index"]) and skipped == []


def test_address_in_place_of_source_is_refused(world, capsys):
    from numbpie.cli import main

    assert main(["index", "--ray", str(world["source"]), "--catalog", str(world["root"] / "x")]) == 2
    assert "put SOURCE before --ray" in capsys.readouterr().err


def test_ray_is_imported_only_for_ray():
    code = ("import sys, numbpie.cli, numbpie.app.indexer, numbpie.app.pipeline; "
            "numbpie.cli.build_parser(); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=WALL_CAP,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_bad_pool_sizes_are_refused():
    from numbpie.app.ray_index import RayEmbed

    with pytest.raises(OptionError, match="at least 1"):
        RayEmbed("bundled", actors=0)


# -- on Ray ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_local_ray_matches_single_process(world, ray_env, own_children):
    """Both kinds of work (catalog rows without vectors, new rows to import) on a local instance."""
    import ray


    from numbpie.app.ray_index import index_with_ray

    folder = _fresh_catalog(world, "local")
    seen = []
    try:
        index, skipped = index_with_ray(folder, world["embedder"], "bundled", _rows(world["source"]), actors=2,
                                        batch_size=8, object_store_memory=300 * 2**20, checkpoint_every=16,
                                        progress=lambda done, total: seen.append((done, total)))
    finally:
        ray.shutdown()
    assert not ray.is_initialized()  # index_with_ray stopped the instance it started
    assert_same_as_reference(folder, world)
    assert skipped == world["skipped"] and any("broken.png" in m for m in skipped)
    total = PRODUCTS + 2 * PRODUCTS + 1
    assert seen[0] == (0, total) and seen[-1] == (total, total)


@pytest.mark.slow
def test_cli_ray_resumes_after_the_driver_is_killed(world, ray_env, sessions, tmp_path):
    """SIGKILL `index --ray` after its first checkpoint: its local Ray goes with it, the rerun finishes."""
    folder = _fresh_catalog(world, "killed")
    first = _spawn(sessions, _index_command(world, folder, "local"), ray_env, tmp_path / "first.log")
    _wait(lambda: _indexed(folder) >= 16 or first.poll() is not None, START_TIMEOUT, "the first checkpoint",
          [first.pid])
    assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    os.kill(first.pid, signal.SIGKILL)  # the driver only: the Ray processes it started must follow
    first.wait()
    # Ray's agents notice their raylet is gone on a timer: allow for a busy machine.
    _wait(lambda: not _session_pids(first.pid), START_TIMEOUT, "the local Ray instance to exit with its driver",
          [first.pid])
    catalog = open_catalog(folder)  # consistent after the kill: every vector has its row, none twice
    partial = Index.load(folder, keep_ids=catalog.ids())
    assert 0 < len(partial) < len(world["index"]) and len(np.unique(partial.ids())) == len(partial)
    assert set(partial.ids().tolist()) <= set(catalog.ids())

    second = _spawn(sessions, _index_command(world, folder, "local"), ray_env, tmp_path / "second.log")
    assert _exit_code(second, 2 * START_TIMEOUT, "the rerun", [second.pid]) == 0, \
        (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    assert "embedding" in log and "img/s" in log  # the driver's progress bar
    assert_same_as_reference(folder, world)


def _worker_actor_running(session: int) -> bool:
    """Whether an EmbedBatch actor process runs in the worker node's session."""
    for pid in _session_pids(session):
        try:
            if b"EmbedBatch" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


@pytest.mark.slow
def test_two_node_cluster_survives_losing_its_worker(world, ray_env, sessions, tmp_path):
    """A head and a worker on this machine; the worker node dies mid-run; every product is indexed once."""
    port, env = _free_port(), {**ray_env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    common = [str(RAY), "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
              "--object-store-memory=200000000"]
    head_log, worker_log = tmp_path / "head.log", tmp_path / "worker.log"
    _spawn(sessions, [*common, "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                      f"--ray-client-server-port={_free_port()}", f"--temp-dir={ray_env['RAY_TMPDIR']}/head"],
           env, head_log)
    nodes = [process.pid for process in sessions]
    _wait(lambda: b"Ray runtime started" in head_log.read_bytes(), START_TIMEOUT, "the head node", nodes)
    worker = _spawn(sessions, [*common, f"--address=127.0.0.1:{port}", "--num-cpus=1",
                               f"--dashboard-agent-listen-port={_free_port()}",
                               f"--temp-dir={ray_env['RAY_TMPDIR']}/worker"], env, worker_log)
    nodes = [process.pid for process in sessions]
    _wait(lambda: b"Ray runtime started" in worker_log.read_bytes(), START_TIMEOUT, "the worker node", nodes)

    folder = _fresh_catalog(world, "cluster")
    driver_log = tmp_path / "driver.log"
    driver = _spawn(sessions, _index_command(world, folder, f"127.0.0.1:{port}"), env, driver_log)
    # Ray Data spreads the two actors over the two nodes; kill the worker's once it has produced.
    _wait(lambda: (_indexed(folder) >= 16 and _worker_actor_running(worker.pid)) or driver.poll() is not None,
          2 * START_TIMEOUT, "the worker node's actor and the first checkpoint", [*nodes, driver.pid])
    assert driver.poll() is None, driver_log.read_text()[-3000:]
    os.killpg(worker.pid, signal.SIGKILL)  # the whole node at once: raylet, actor, agents
    killed_at = _indexed(folder)
    assert _exit_code(driver, 2 * START_TIMEOUT, "the driver", [*nodes, driver.pid]) == 0, \
        driver_log.read_text()[-3000:]
    assert killed_at < len(world["index"])  # the kill landed mid-run
    assert_same_as_reference(folder, world)
