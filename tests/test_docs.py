"""The README and docs/ show only commands and flags that exist, links that resolve, and
pages that the site (mkdocs.yml) lists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_CODE_BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"(?:^|[\s/])nas (\w[\w-]*)(.*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _subcommands() -> dict[str, set[str]]:
    """Each ``nas`` subcommand and the option strings it accepts."""
    from nas.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in commands.choices.items()
    }


def _snippets(text: str) -> list[str]:
    """Every line of code the page shows: code-block lines (continuations joined) and
    inline code spans."""
    snippets: list[str] = []
    for block in _CODE_BLOCK.findall(text):
        snippets += block.replace("\\\n", " ").splitlines()
    outside = _CODE_BLOCK.sub("", text)
    snippets += [span.replace("\\|", " ") for span in _INLINE.findall(outside)]
    return snippets


def shown_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``nas COMMAND`` a page shows, with the flags given to it (up to the next
    ``&&``, ``|``, ``;`` or comment)."""
    found = []
    for snippet in _snippets(text):
        for piece in re.split(r"&&|\s\|\s|;|\s#\s", snippet):
            match = _COMMAND.search(piece)
            if match:
                found.append((match.group(1), _FLAG.findall(match.group(2))))
    return found


def test_the_command_finder_reads_blocks_spans_and_tables():
    text = (
        "```bash\n.venv/bin/nas search x.toml --data d \\\n    --out r   # --not-a-flag\n```\n"
        "Run `nas train RUN [--rank K \\| --trial N]`; see `nas/cli.py` and `nas status RUN`."
    )
    assert shown_commands(text) == [
        ("search", ["--data", "--out"]),
        ("train", ["--rank", "--trial"]),
        ("status", []),
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_and_flag_a_page_shows_exists(page: Path):
    commands = _subcommands()
    wrong = []
    for name, flags in shown_commands(page.read_text()):
        if name not in commands:
            wrong.append(f"nas {name}: no such command")
            continue
        wrong += [
            f"nas {name} {flag}: no such flag" for flag in flags if flag not in commands[name]
        ]
    assert wrong == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    links = [link for link in _LINK.findall(page.read_text()) if "://" not in link]
    assert [link for link in links if not (page.parent / link).exists()] == []


def test_the_site_lists_every_page_and_only_pages_that_exist():
    listed = re.findall(r":\s*([\w-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert sorted(listed) == sorted(pages)


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


_PATH = re.compile(r"(?<![\w/.-])((?:nas|tests|search_spaces|baselines|experiments)/[\w/.-]*\w)")
_DOTTED = re.compile(r"(?<![\w/.])(nas(?:\.\w+)+)")


def _exists_as_module(dotted: str) -> bool:
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        path = ROOT.joinpath(*parts[:end])
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_file_and_module_a_page_names_exists(page: Path):
    text = page.read_text()
    paths = {p for p in _PATH.findall(text) if "*" not in p and "<" not in p}
    missing = sorted(p for p in paths if not (ROOT / p).exists() and not p.endswith("/"))
    modules = {m for m in _DOTTED.findall(" ".join(_snippets(text)))}
    missing += sorted(m for m in modules if not _exists_as_module(m))
    assert missing == []
