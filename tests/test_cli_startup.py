"""Start-up: `--help` reaches no AWS library, and a command's module loads only when it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from omics_edp_cli.cli.app import COMMANDS, app

HEAVY = ("boto3", "botocore", "moto", "s3transfer")
# Run in a fresh interpreter: this test process has long since imported boto3 and moto.
PROBE = """
import json, sys
sys.argv = ["omics-edp", *sys.argv[1:]]
from omics_edp_cli.cli.app import main
try:
    main()
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, env={"COLUMNS": "100", "PATH": ""})
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    return set(report["modules"])


@pytest.mark.parametrize("args", [("--help",), ("simulate-batch", "--help")], ids=" ".join)
def test_help_imports_no_aws_library(args: tuple[str, ...]):
    modules = _modules_after(*args)
    assert "typer" in modules  # the probe really ran the CLI
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"omics-edp {' '.join(args)} imported {loaded[:5]}"


def test_simulating_an_event_log_loads_only_what_it_uses(tmp_path: Any):
    # simulate-batch on a log is offline: no AWS library (edp.emit's consumer_event is used for
    # -o json, its publisher is not), no yaml (scenarios and templates only), and no progress bar
    # when stderr is not a terminal.
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({
        "detail-type": "Object Created", "source": "aws.s3", "time": "2026-03-02T10:15:00Z",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "runs/p1/a.fastq.gz", "sequencer": "01"}},
    }) + "\n")
    modules = _modules_after("-o", "json", "simulate-batch", "--events", str(log))
    assert "omics_edp_cli.edp.emit" in modules  # the probe really rendered the JSON document
    loaded = sorted(m for m in modules if m.split(".")[0] in (*HEAVY, "yaml") or m == "rich.progress")
    assert loaded == [], f"simulate-batch --events imported {loaded[:5]}"


def test_a_command_loads_only_its_own_module():
    modules = _modules_after("simulate-batch", "--help")
    commands = {c.module for c in COMMANDS}
    assert commands & modules == {"omics_edp_cli.cli.simulate"}


def test_root_help_loads_no_command_module():
    assert not {c.module for c in COMMANDS} & _modules_after("--help")


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


def test_the_listing_shows_each_command_s_own_help():
    """`omics-edp --help` lists the table's help (no import); it must be the command's own."""
    root: Any = typer.main.get_command(app)
    ctx = typer.Context(root)
    assert root.list_commands(ctx) == [c.name for c in COMMANDS]
    for entry in COMMANDS:
        command = root.get_command(ctx, entry.name)
        assert command is not None and command.name == entry.name
        assert _first_paragraph(command.help or "") == entry.help, entry.name


def test_root_help_lists_every_command_with_its_help():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for entry in COMMANDS:
        line = next((row for row in result.output.splitlines() if row.startswith(f"│ {entry.name} ")), "")
        assert entry.help[:60] in line, entry.name


def test_a_mistyped_command_is_still_suggested():
    result = CliRunner().invoke(app, ["simulat"])
    assert result.exit_code == 2
    assert "Did you mean 'simulate-batch'?" in result.output


def test_root_help_skips_typer_s_markdown_and_traceback_imports():
    """The root's help is drawn without `typer.rich_utils` (rich.markdown, markdown_it, pygments)."""
    modules = _modules_after("--help")
    assert "rich.table" in modules  # the help really was drawn with rich
    assert not {"typer.rich_utils", "rich.markdown", "markdown_it", "rich.traceback"} & modules


def _typer_s_own_root_help(width: int, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> str:
    from typer import rich_utils

    monkeypatch.setenv("COLUMNS", str(width))
    root: Any = typer.main.get_command(app)
    ctx = root.make_context("omics-edp", ["--help"], resilient_parsing=True)
    with root._summaries():
        rich_utils.rich_format_help(obj=root, ctx=ctx, markup_mode="rich")
    return capsys.readouterr().out


@pytest.mark.parametrize("width", [40, 80, 100, 250])
def test_root_help_reads_exactly_as_typer_would_draw_it(width: int, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]):
    expected = _typer_s_own_root_help(width, monkeypatch, capsys)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert "--region" in expected and "simulate-batch" in expected
    assert result.output.rstrip("\n") == expected.rstrip("\n")  # click adds a newline after help


def test_a_command_s_warnings_never_reach_python_s_last_resort_handler():
    """Without --verbose the project's log records go nowhere, not raw onto stderr."""
    code = (
        "import logging, sys\n"
        "sys.argv = ['omics-edp', 'simulate-batch', '--help']\n"
        "from omics_edp_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "logging.getLogger('omics_edp_cli.ops').warning('RAW-WARNING')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "100", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "RAW-WARNING" not in done.stderr
