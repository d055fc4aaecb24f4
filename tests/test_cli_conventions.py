"""What every command shares: shell completion, `-o/--output` before or after the command name,
and help text without typing noise."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app

runner = CliRunner()
COMMAND = typer.main.get_command(app)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)] if path else []
    if isinstance(group, TyperGroup):
        for name, sub in group.commands.items():
            found += _commands(sub, (*path, name))
    return found


ALL_COMMANDS = _commands(COMMAND)
LEAVES = [(path, cmd) for path, cmd in ALL_COMMANDS if not isinstance(cmd, TyperGroup)]


# -- shell completion ----------------------------------------------------------------------------


def test_root_help_offers_completion():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--install-completion" in result.output and "--show-completion" in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script_for_the_shell(shell: str, monkeypatch: pytest.MonkeyPatch):
    # Typer's switch for naming the shell instead of detecting the one running the tests.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = runner.invoke(app, ["--show-completion", shell], prog_name="omics-edp")
    assert result.exit_code == 0, result.output
    assert "_OMICS_EDP_COMPLETE" in result.output
    assert f"complete_{shell}" in result.output


def _complete_bash(words: str) -> list[str]:
    """What bash gets back when the user presses TAB after `words` (the env var protocol)."""
    result = runner.invoke(
        app, [], prog_name="omics-edp",
        env={"_OMICS_EDP_COMPLETE": "complete_bash", "COMP_WORDS": words,
             "COMP_CWORD": str(len(words.split(" ")) - 1), "_TYPER_COMPLETE_TESTING": "1"},
    )
    assert result.exit_code == 0, result.output
    return result.output.split()


def test_completion_offers_the_commands():
    offered = _complete_bash("omics-edp ")
    assert {"process", "replay", "simulate-batch", "dlq", "batches"} <= set(offered)


def test_completion_offers_subcommands_and_choices():
    assert set(_complete_bash("omics-edp dlq ")) >= {"list", "show", "redrive", "purge"}
    assert set(_complete_bash("omics-edp package ")) == {"processor", "edp", "packager"}
    assert set(_complete_bash("omics-edp replay -o ")) == {"table", "json"}


# -- -o/--output anywhere ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_accepts_output_after_its_name(path: tuple[str, ...], command: Any):
    opts = {opt for param in command.params for opt in param.opts}
    assert {"--output", "-o"} <= opts, f"omics-edp {' '.join(path)} has no -o/--output"


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "json", "package", "edp", "--out-dir", "{dist}"],
        ["package", "edp", "-o", "json", "--out-dir", "{dist}"],
        ["package", "edp", "--output", "json", "--out-dir", "{dist}"],
        ["package", "edp", "--output=json", "--out-dir", "{dist}"],
        ["--output", "table", "package", "edp", "-o", "json", "--out-dir", "{dist}"],
    ],
    ids=["before", "-o after", "--output after", "--output= after", "after wins"],
)
def test_output_before_or_after_the_command_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  args: list[str]):
    monkeypatch.chdir(tmp_path)
    dist = tmp_path / "dist"
    result = runner.invoke(app, [a.replace("{dist}", str(dist)) for a in args])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert Path(record["path"]).parent == dist
    assert not (tmp_path / "json").exists()


def test_package_o_json_means_the_format_not_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Rough edge 5: `package edp -o json` used to create a folder `json/`."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["package", "edp", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["path"]).parent == Path("dist")
    assert not (tmp_path / "json").exists() and (tmp_path / "dist").is_dir()


def test_output_after_a_subcommand_of_a_group(tmp_path: Path):
    db = tmp_path / "state.db"
    from omics_edp_cli.edp.sqlite_store import SqliteStore

    SqliteStore(str(db)).close()
    result = runner.invoke(app, ["batches", "list", "--db", str(db), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) >= {"open", "recent"}


def test_a_bad_output_value_after_the_command_is_a_usage_error(tmp_path: Path):
    result = runner.invoke(app, ["package", "edp", "-o", "yaml", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "yaml" in result.output


# -- help text -----------------------------------------------------------------------------------


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [(), *(p for p, _ in ALL_COMMANDS)], ids=lambda p: " ".join(p) or "root")
def test_help_has_no_bool_type_on_flags_nor_brace_placeholders(path: tuple[str, ...]):
    text = _help(path)
    assert "<bool>" not in text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert not re.search(r"\{\w+\}", usage), usage


def test_usage_names_arguments_in_capitals():
    assert "Usage: omics-edp deploy [OPTIONS] KIND" in _help(("deploy",))
    assert "Usage: omics-edp batches flush [OPTIONS] PREFIX" in _help(("batches", "flush"))
