"""docs/*.md stay true to the code: every `kpr …` command in their code blocks parses, every
option named in a `kpr <verb> …` mention (docs and README) is one of that verb's, and every Python
block compiles and imports only names kpr has (the blocks need a user's data to run; the README's
own examples run in test_readme.py)."""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

from kpr.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _blocks(path: Path, languages: str) -> list[str]:
    return re.findall(rf"```(?:{languages})\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def _commands(block: str) -> list[str]:
    """``kpr <verb> …`` lines of a shell block, continuations joined, comments and printed
    output (``kpr <verb>: error: …``) dropped."""
    lines = (line.split(" #")[0].strip() for line in block.replace("\\\n", " ").splitlines())
    return [line for line in lines if re.match(r"kpr [a-z-]+(\s|$)", line)]


def _as_arguments(command: str) -> list[str]:
    """A synopsis as argv: [optional] parts taken as written, {a,b} choices as their first one,
    `…` / `...` placeholders dropped, a bare option before a placeholder given a value."""
    text = re.sub(r"\{([^,}]+)(,[^}]*)?\}", r"\1", re.sub(r"[\[\]]", "", command))
    words = shlex.split(text.replace("…", " VALUE ").replace("...", ""))[1:]
    return [w for w in words if w != "|"]


def _doc_commands() -> list[tuple[str, str]]:
    return [
        (path.name, command)
        for path in DOCS
        for block in _blocks(path, "bash|sh|console|")
        for command in _commands(block)
    ]


def test_the_docs_have_commands_and_python_blocks_to_check():
    assert len(_doc_commands()) >= 10
    assert sum(len(_mentions(path)) for path in DOCS) >= 40
    assert sum(len(_blocks(path, "python")) for path in DOCS) >= 5


@pytest.mark.parametrize(("doc", "command"), _doc_commands())
def test_every_command_in_the_docs_parses(doc, command):
    parser = build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parser.parse_args(_as_arguments(command))
    except SystemExit:
        pytest.fail(f"{doc}: {command!r} does not parse: {errors.getvalue().strip()}")


def _verb_options() -> dict[str, set[str]]:
    (verbs,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: set(sub._option_string_actions) for name, sub in verbs.choices.items()}


def _mentions(path: Path) -> list[str]:
    """Every ``kpr <verb> …`` in a file: code-block lines and inline code spans."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S).replace("\n", " ")
    return [c for b in blocks for c in _commands(b)] + re.findall(
        r"`(kpr [a-z-]+(?:\s[^`]*)?)`", prose
    )


def test_every_option_the_docs_name_belongs_to_its_verb():
    options = _verb_options()
    wrong = []
    for path in [*DOCS, ROOT / "README.md"]:
        for mention in _mentions(path):
            verb = mention.split()[1]
            named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", mention))
            if verb not in options or named - options[verb]:
                wrong.append(f"{path.name}: {mention!r}")
    assert wrong == []


@pytest.mark.parametrize(
    ("doc", "block"),
    [(path.name, block) for path in DOCS for block in _blocks(path, "python")],
)
def test_every_python_block_in_the_docs_compiles_and_imports_real_names(doc, block):
    tree = ast.parse(block, filename=doc)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "kpr":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{doc}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kpr":
                    importlib.import_module(alias.name)
