from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Python caches what it compiles, here even where the environment says not to
# (PYTHONDONTWRITEBYTECODE, set on this project's machines): every process of the suite
# (Ray workers, `nas` subprocesses, a final training's child) otherwise compiled the
# project's modules again, about 0.5 CPU-seconds each (`python -c "import nas.cli,
# nas.engine.search, nas.training.evaluate"`: 5.7 against 5.2 user seconds).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# TensorFlow 2.21's oneDNN kernels (on by default where the CPU has AVX512) have killed
# multi-threaded training processes with heap corruption: the weight gradient of a strided
# 1x1 convolution on an odd batch (docs/reliability.md; facenas now trains full batches
# only). Once a pytest worker died that way and pytest-xdist waited forever. The suite
# trains with them off (Ray workers inherit it), unless the environment says otherwise,
# so that its figures do not depend on the CPU's kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# The files that take longest, longest first (seconds of test time on the idle 2-core
# machine, `pytest --durations`, 2026-12-07). pytest-xdist's `--dist loadfile` hands out
# whole files in this order; by default it first sorts them by their number of tests,
# which started these few-test files last, side by side, and left one worker idle while
# the other finished. Starting them first lets the many small files fill the gaps. The
# second file needs no tiny search: its worker trains while the first one's worker runs
# the search both share (`tiny_search`). Only the order changes; a file missing here
# runs after them in the usual order.
LONGEST_FIRST = (
    "tests/nas/engine/test_fault_injection.py",  # 240 s
    "tests/nas/engine/test_fidelity.py",  # 80 s
    "tests/nas/engine/test_final.py",  # 157 s
    "tests/nas/engine/test_cluster.py",  # 117 s
    "tests/nas/training/test_training.py",  # 71 s
    "tests/nas/training/test_multitask.py",  # 60 s
    "tests/nas/data/test_image_folders.py",  # 54 s
    "tests/nas/export/test_onnx_and_litert.py",  # 43 s
    "tests/nas/engine/test_search_multifidelity.py",  # 41 s
    "tests/nas/export/test_serving.py",  # 40 s
    "tests/search_spaces/test_cost.py",  # 33 s
    "tests/nas/engine/test_race.py",  # 33 s
    "tests/baselines/test_resnet50.py",  # 28 s
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_where_pytest_runs():
    """No test leaves a storage in the working folder: a relative ``sqlite:///study.db``
    opened anywhere but in its run folder once created one here (and it was committed)."""
    stray = Path.cwd() / "study.db"
    before = stray.exists()
    yield
    assert before or not stray.exists(), f"a test created {stray}: a storage opened outside its run"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session parses datasets into its own cache, never the user's."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nas-cache"))


@pytest.fixture(scope="session")
def faces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic FER2013-layout file: 400 faces, 80% Training, 20% PublicTest."""
    from nas.data.synthetic import write_emotion_csv

    path = tmp_path_factory.mktemp("data") / "faces.csv.gz"
    write_emotion_csv(path, n=400, seed=7)
    return path


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance with 2 CPUs for the whole session; the tests' own plugin
    spaces and tasks (``tests.nas.failing_space``, ...) are shipped with the project."""
    import ray

    from nas.engine.parallel import _start_ray

    if not ray.is_initialized():
        _start_ray(ray, address=None, num_cpus=2, modules=["tests"])
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_local) -> str:
    """The session's Ray, for ``nas search --address`` in a subprocess.

    Drivers that connect to it skip starting and stopping a Ray of their own (about 10 s
    each on 2 cores); a driver killed with SIGKILL leaves nothing behind, since Ray ends
    the jobs of a dead driver and kills their workers.
    """
    return ray_local.get_runtime_context().gcs_address


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory: pytest.TempPathFactory, faces_csv: Path, ray_local) -> Path:
    """A small search on the session's Ray, run once through the CLI, for all workers.

    Population 4, generations 0..1, 2 workers: 8 candidates, of which 5 train. The
    end-to-end tests read it, and the fault-injection tests compare the runs they kill
    and resume with it. Its experiment is ``tiny.toml`` next to the returned run folder.

    Under pytest-xdist the first worker to ask runs it into the workers' common temporary
    folder, holding a file lock, and every worker gets its own copy (run folders are
    movable; ``nas train`` writes into it): one search instead of one a worker, since the
    longest files, which both start with it, run side by side.
    """
    from filelock import FileLock

    from nas.cli import main

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    source = shared / "tiny-search"
    with FileLock(str(shared / "tiny-search.lock")):
        if not (shared / "tiny-search.done").exists():
            shutil.rmtree(source, ignore_errors=True)
            source.mkdir()
            (source / "tiny.toml").write_text(  # the first worker's faces, kept all session
                'name = "tiny"\nseed = 3\nobjectives = ["accuracy", "params"]\n'
                f'[data]\npath = "{faces_csv}"\n'
                "[budget]\nepochs = 1\nmax_train_images = 96\nmax_validation_images = 48\n"
                "max_params = 200000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
                "[search]\npopulation = 4\ngenerations = 1\nworkers = 2\n"
            )
            assert main(["search", str(source / "tiny.toml"), "--out", str(source / "run")]) == 0
            (shared / "tiny-search.done").touch()
    folder = tmp_path_factory.mktemp("tiny")
    shutil.copy(source / "tiny.toml", folder)
    shutil.copytree(source / "run", folder / "run")
    return folder / "run"
