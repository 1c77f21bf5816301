from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session parses datasets into its own cache, never the user's."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nas-cache"))


@pytest.fixture(scope="session")
def faces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic FER2013-layout file: 400 faces, 80% Training, 20% PublicTest."""
    from nas.synthetic import write_emotion_csv

    path = tmp_path_factory.mktemp("data") / "faces.csv.gz"
    write_emotion_csv(path, n=400, seed=7)
    return path


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance with 2 CPUs for the whole session."""
    import ray

    from nas.parallel import _start_ray

    if not ray.is_initialized():
        _start_ray(ray, address=None, num_cpus=2)
    yield ray
    ray.shutdown()
