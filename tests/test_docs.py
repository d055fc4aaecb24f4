"""The README is part of the product: its set-up commands, every command, and its examples."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
COMMAND = typer.main.get_command(app)
# README examples that need no AWS and no network: their output must still be what is shown.
OFFLINE_EXAMPLES = (
    "omics-edp process --sample completed --dry-run --no-enrich",
    "omics-edp simulate-batch --prefixes 2 --files 45 --interval 5 --count 20 --quiet 300",
    "omics-edp simulate-batch --prefixes 2 --files 3000 --interval 0.8 --count 20,500,5000 --quiet 300,900",
)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)] if path else []
    if isinstance(group, TyperGroup):
        for name, sub in group.commands.items():
            found += _commands(sub, (*path, name))
    return found


ALL_COMMANDS = _commands(COMMAND)


def test_readme_opens_with_the_two_set_up_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None and README.index("```bash") < README.index("\n## ")
    lines = first_block.group(1).strip().splitlines()
    assert lines == [
        "python3 -m venv .venv && .venv/bin/pip install -e '.[local]' && .venv/bin/omics-edp demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
    # CI runs that same test command.
    assert ".venv/bin/pip install --quiet -e '.[test]'" in (ROOT / ".ci/run").read_text()
    assert (ROOT / ".ci/run").read_text().rstrip().endswith(".venv/bin/pytest")


def test_the_command_tree_is_what_the_design_names():
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert names == {
        "process", "deploy", "package", "package-batch", "replay", "reconcile", "simulate-batch", "doctor",
        "demo", "tail",
        "batches", "batches list", "batches show", "batches flush",
        "dlq", "dlq list", "dlq show", "dlq redrive", "dlq purge",
    }


@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS], ids=" ".join)
def test_every_command_appears_in_the_readme(path: tuple[str, ...]):
    leaf = path[-1]
    assert f"omics-edp {' '.join(path)}" in README or (
        f"omics-edp {' '.join(path[:-1])} " in README and leaf in README
    ), f"omics-edp {' '.join(path)} is not in README.md"
    assert f"### `omics-edp {path[0]}" in README, f"no README section for omics-edp {path[0]}"


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any):
    assert (command.help or "").strip(), f"omics-edp {' '.join(path)} has no help text"
    if not isinstance(command, TyperGroup):
        assert "Example: omics-edp " in (command.help or ""), f"omics-edp {' '.join(path)} has no example"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"omics-edp {' '.join(path)} {param.opts[0]} has no help"
        if param.param_type_name == "argument":
            assert getattr(param, "help", None), f"omics-edp {' '.join(path)} {param.name} has no help"


def test_global_options_have_help():
    for param in COMMAND.params:
        if param.name != "help":
            assert (param.help or "").strip(), f"global option {param.opts[0]} has no help"


def _readme_example(command: str) -> list[str]:
    """The output README shows under `$ command`, up to the next prompt or the end of the block."""
    lines = README.splitlines()
    start = lines.index(f"$ {command}") + 1
    output = []
    for line in lines[start:]:
        if line.startswith("$ ") or line.startswith("```"):
            break
        output.append(line.rstrip())
    return [line for line in output if line.strip()]


@pytest.mark.parametrize("example", OFFLINE_EXAMPLES)
def test_readme_offline_examples_print_what_the_readme_shows(example: str):
    shown = _readme_example(example)
    assert shown, f"no output under $ {example}"
    result = CliRunner(env={"COLUMNS": "100"}).invoke(app, shlex.split(example)[1:])
    assert result.exit_code == 0, result.output
    printed = {line.rstrip() for line in (result.stdout + result.stderr).splitlines()}
    missing = [line for line in shown if line not in printed]
    assert missing == [], f"README lines no longer printed by `{example}`"
