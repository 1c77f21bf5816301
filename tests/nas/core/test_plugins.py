"""A plugin module named in an experiment: missing, or broken inside, it is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin
from nas.core.space import load_space
from nas.strategies import strategy_entry
from nas.tasks import load_task


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "broken_pkg").mkdir()
    (tmp_path / "broken_pkg" / "__init__.py").write_text("")
    (tmp_path / "broken_pkg" / "plugin.py").write_text("import not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "broken_pkg.plugin"
    for name in ("broken_pkg.plugin", "broken_pkg"):
        sys.modules.pop(name, None)


def test_a_missing_module_is_named():
    with pytest.raises(ConfigError, match=r"^no module 'absent_plugin'$"):
        import_plugin("absent_plugin")


@pytest.mark.parametrize("load", [load_space, load_task, strategy_entry])
def test_a_module_broken_inside_is_one_line_naming_what_it_lacks(broken: str, load):
    with pytest.raises(ConfigError) as caught:
        load(broken)
    message = str(caught.value)
    assert (
        "'broken_pkg.plugin' cannot be imported" in message and "not_installed_anywhere" in message
    )
    assert "\n" not in message
