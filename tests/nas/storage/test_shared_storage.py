"""Runs that share one Optuna storage (a database server, or one SQLite file) stay apart:
each run is its own study, whatever its experiment is called."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.core.errors import StorageError
from nas.engine.search import resume_search, run_search
from nas.storage.checkpoint import hold_run_lock
from nas.storage.store import RunStore
from tests.nas.engine.test_search_budgets import Killed, ToyEvaluator, _experiment, _trials
from tests.postgres import PostgresServer, postgres_bin, postgres_server


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this file's tests."""
    if postgres_bin() is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl: apt-get install postgresql")
    with postgres_server() as running:
        yield running


@pytest.fixture
def postgres(server: PostgresServer) -> str:
    return server.url


def test_two_runs_of_one_experiment_in_one_storage_keep_their_own_trials(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    experiment = _experiment("nsga2")
    alone = run_search(
        experiment, out_dir=tmp_path / "alone", make_evaluator=lambda d: ToyEvaluator()
    )
    first = run_search(
        experiment,
        out_dir=tmp_path / "first",
        storage=storage,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    second = run_search(
        experiment,
        out_dir=tmp_path / "second",
        storage=storage,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    expected = _trials(tmp_path / "alone")
    assert _trials(tmp_path / "first") == expected and _trials(tmp_path / "second") == expected
    assert second.evaluations == first.evaluations == alone.evaluations
    names = {RunStore.open(tmp_path / run).info.study_name for run in ("first", "second")}
    assert len(names) == 2 and all(name.startswith("toy-") for name in names)
    # each run resumes onto its own study; the exported model keeps the experiment's name
    again = resume_search(tmp_path / "second", make_evaluator=lambda d: ToyEvaluator())
    assert again.evaluations == 0 and _trials(tmp_path / "second") == expected
    assert RunStore.open(tmp_path / "second").info.name == "toy"


def test_the_same_search_on_postgresql_and_sqlite_gives_the_same_trials(
    tmp_path: Path, postgres: str
):
    experiment = _experiment("nsga2")
    on_sqlite = run_search(
        experiment, out_dir=tmp_path / "sqlite", make_evaluator=lambda d: ToyEvaluator()
    )
    on_server = run_search(
        experiment,
        out_dir=tmp_path / "server",
        storage=postgres,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    assert RunStore.open(tmp_path / "server").info.storage == postgres
    assert _trials(tmp_path / "server") == _trials(tmp_path / "sqlite")
    assert [r.genome_hash for r in on_server.front.members] == [
        r.genome_hash for r in on_sqlite.front.members
    ]
    # a second run of the experiment in the same database is a study of its own
    run_search(
        experiment,
        out_dir=tmp_path / "again",
        storage=postgres,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    assert _trials(tmp_path / "again") == _trials(tmp_path / "server")


def test_a_second_driver_on_a_run_stored_on_postgresql_is_refused(tmp_path: Path, postgres: str):
    run = tmp_path / "run"
    with pytest.raises(Killed):  # a run stopped half-way, to be resumed
        run_search(
            _experiment("nsga2"),
            out_dir=run,
            storage=postgres,
            make_evaluator=lambda d: ToyEvaluator(kill_after=3),
        )
    held = hold_run_lock(run)  # another driver is resuming it
    try:
        with pytest.raises(StorageError, match="is being searched by"):
            resume_search(run, make_evaluator=lambda d: ToyEvaluator())
    finally:
        os.close(held)
    assert len(_trials(run)) == 3  # the refused driver wrote nothing
    summary = resume_search(run, make_evaluator=lambda d: ToyEvaluator())
    run_search(
        _experiment("nsga2"), out_dir=tmp_path / "whole", make_evaluator=lambda d: ToyEvaluator()
    )
    assert summary.restored == 3 and _trials(run) == _trials(tmp_path / "whole")


def test_a_database_outage_stops_the_search_in_one_line_and_it_resumes_after(
    tmp_path: Path, server: PostgresServer
):
    class Outage(ToyEvaluator):
        """The database server crashes after the fifth result."""

        def map(self, requests, *, deadline=None):
            for result in super().map(requests, deadline=deadline):
                if self.done == 5:
                    server.stop()
                yield result

    run = tmp_path / "run"
    try:
        with pytest.raises(StorageError) as stopped:
            run_search(
                _experiment("nsga2"),
                out_dir=run,
                storage=server.url,
                make_evaluator=lambda d: Outage(),
            )
    finally:
        server.start()
    message = str(stopped.value)
    assert "cannot record" in message and "--resume" in message and "\n" not in message
    assert len(_trials(run)) == 4  # the fifth result was lost with the connection
    summary = resume_search(run, make_evaluator=lambda d: ToyEvaluator())
    run_search(
        _experiment("nsga2"), out_dir=tmp_path / "whole", make_evaluator=lambda d: ToyEvaluator()
    )
    assert summary.restored == 4 and _trials(run) == _trials(tmp_path / "whole")


SECRET = "s3cret-Pa55word"


def _files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_password_is_never_written_or_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    if postgres_bin() is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl: apt-get install postgresql")
    from nas.cli import main
    from nas.core.errors import ConfigError

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    with postgres_server(password=SECRET) as server:
        run = tmp_path / "run"
        with pytest.raises(Killed):  # stopped half-way, to be resumed below
            run_search(
                _experiment("nsga2"),
                out_dir=run,
                storage=server.url_with(SECRET),
                make_evaluator=lambda d: ToyEvaluator(kill_after=3),
            )
        assert RunStore.open(run, storage=server.url_with(SECRET)).info.storage == server.url
        # without the password: one line that says where to put it, and not the password
        with pytest.raises(StorageError, match=r"PGPASSWORD or ~/\.pgpass") as refused:
            RunStore.open(run)
        assert SECRET not in str(refused.value)
        with pytest.raises(StorageError):
            RunStore.open(run, storage=server.url_with("wrong"))
        # the same run named with another URL is refused without showing that URL's password
        with pytest.raises(ConfigError) as other:
            run_search(
                _experiment("nsga2"),
                out_dir=run,
                storage=server.url_with(SECRET).replace("/postgres", "/other"),
                make_evaluator=lambda d: ToyEvaluator(),
            )
        assert SECRET not in str(other.value)
        # from the environment, as libpq reads it: the run resumes and the CLI reads it
        monkeypatch.setenv("PGPASSWORD", SECRET)
        resume_search(run, make_evaluator=lambda d: ToyEvaluator())
        assert len(_trials(run)) == 16
        assert main(["pareto", str(run)]) == 0
    assert _files_holding(run, SECRET) == []
    printed = capfd.readouterr()
    assert SECRET not in printed.out + printed.err


def test_a_moved_run_opens_and_resumes_from_its_new_place(tmp_path: Path):
    import json
    import shutil

    with pytest.raises(Killed):
        run_search(
            _experiment("nsga2"),
            out_dir=tmp_path / "here",
            make_evaluator=lambda d: ToyEvaluator(kill_after=5),
        )
    assert json.loads((tmp_path / "here" / "run.json").read_text())["storage"] == (
        "sqlite:///study.db"
    )
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(tmp_path / "here", moved)
    resume_search(moved, make_evaluator=lambda d: ToyEvaluator())
    run_search(
        _experiment("nsga2"), out_dir=tmp_path / "whole", make_evaluator=lambda d: ToyEvaluator()
    )
    assert _trials(moved) == _trials(tmp_path / "whole")
    # a run written before (an absolute path to a file that is not there any more) opens
    # its own study.db once moved
    info = json.loads((moved / "run.json").read_text())
    info["storage"] = f"sqlite:///{tmp_path / 'gone' / 'study.db'}"
    (moved / "run.json").write_text(json.dumps(info))
    assert _trials(moved) == _trials(tmp_path / "whole")
