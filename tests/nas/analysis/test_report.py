"""nas report: one self-contained HTML page, checked as text, in headless Chromium, and
the same run read through optuna-dashboard's own server."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from nas.cli import main
from nas.core.task import Task
from nas.core.trial import EvalResult
from nas.storage.front import compute_front
from nas.storage.records import RunInfo
from nas.storage.store import RunStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# (generation, accuracy, params, baseline): the front is 0.62/90k, 0.55/20k, 0.40/3k
TRIALS = [
    (0, 0.40, 3_000, None),
    (0, 0.30, 50_000, None),
    (0, 0.45, 305_381, "vgg"),
    (1, 0.55, 20_000, None),
    (1, 0.50, 40_000, None),
    (2, 0.62, 90_000, None),
    (2, 0.35, 8_000, None),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run written through the real store (SQLite), no training."""
    folder = tmp_path_factory.mktemp("report") / "run"
    info = RunInfo(
        storage=RunStore.default_storage(folder),
        study_name="faces",
        space="cnn",
        objectives=("accuracy", "params"),
        task=Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
        output_names=("angry", "disgust", "sad", "happy", "surprise"),
        experiment={"name": "faces", "seed": 0},
        reference={"accuracy": 0.0, "params": 400_000.0},
    )
    store = RunStore.create(folder, info)
    for i, (generation, accuracy, params, baseline) in enumerate(TRIALS):
        metrics = {"accuracy": accuracy, "params": params, "flops": params * 40.0}
        result = EvalResult(genome_hash=f"g{i}", metrics=metrics, weights=b"w")
        store.record(
            result,
            genome={"g": i},
            description=f"stem8 | basic{i}x16 | avg | adam lr1e-3 b64",
            generation=generation,
            values=(accuracy, params),
            baseline=baseline,
        )
    failed = EvalResult(genome_hash="bad", failure="nan_loss", detail="loss became nan")
    store.record(failed, genome={}, description="stem8 | x", generation=1, values=None)
    return folder


def test_the_page_holds_the_front_the_hypervolume_and_the_architectures(run_dir: Path, capsys):
    out = run_dir.parent / "page.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    page = out.read_text()
    store = RunStore.open(run_dir)
    front = compute_front(store.trials(), ("accuracy", "params"), store.info.reference)
    assert [t.metrics["accuracy"] for t in front.members] == [0.62, 0.55, 0.40]
    # every completed trial is a point with its tooltip; the baseline is a diamond
    assert page.count("class='point") == len(TRIALS)
    assert page.count("class='point member") == 3
    assert "class='point other baseline'" in page and "baseline vgg" in page
    assert "trial 5, generation 2" in page and "basic5x16" in page
    # one table row and one drawing per front member; hypervolume for generations 0..2
    assert page.count("<tr data-trial=") == 3 and page.count("<figure class='arch'") == 3
    assert page.count("class='hvpoint'") == 3
    assert f"hypervolume <b>{front.hypervolume:.4f}</b>" in page
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install chromium")
def test_the_page_renders_in_headless_chromium(run_dir: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    page_file = run_dir.parent / "page-chromium.html"
    main(["report", str(run_dir), "--out", str(page_file)])
    shot = tmp_path / "report.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(page_file.as_uri())
            assert page.title().startswith("faces: cnn space")
            charts = page.locator("svg.chart")
            assert charts.count() == 2
            box = charts.first.bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 300
            assert page.locator("circle.point.member").count() == 3
            member = page.locator("[data-trial='5']").first
            member.hover()  # the point under the mouse: its tooltip is its <title>
            assert "trial 5, generation 2" in member.locator("title").text_content()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # no request lines in the test output
        pass


def test_optuna_dashboard_shows_each_trials_architecture_generation_and_baseline(run_dir: Path):
    from optuna_dashboard import wsgi

    store = RunStore.open(run_dir)
    server = make_server("127.0.0.1", 0, wsgi(store.info.connect), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            studies = json.load(response)["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == "faces"]
        url = f"{base}/api/studies/{study['study_id']}?after=0"
        with urllib.request.urlopen(url, timeout=30) as response:
            trials = json.load(response)["trials"]
    finally:
        server.shutdown()
        thread.join()
    assert len(trials) == len(TRIALS) + 1
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
    assert attrs[2]["description"].startswith("stem8 | basic2x16")
    assert [a["generation"] for a in attrs[:-1]] == [str(t[0]) for t in TRIALS]  # as text
    assert attrs[2]["baseline"] == "vgg"
    assert trials[-1]["state"] == "Fail"
