"""`omics-edp demo` runs both pipelines to completion on this machine, through the real code."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from typer.testing import CliRunner

from omics_edp_cli.cli.app import app

runner = CliRunner()


def test_demo_runs_to_completion_and_every_count_adds_up():
    result = runner.invoke(app, ["-o", "json", "demo"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # Five status events of one run: each archived once, even the two whose delivery failed.
    assert summary["archived_payloads"] == 5
    assert summary["deliveries_failed_then_replayed"] == 2
    # COMPLETED was refused live (the receiver never saw the run RUNNING: WES refuses
    # INITIALIZING -> COMPLETE); the replay sends the two missed ones and then COMPLETED, in
    # order; the receiver de-duplicates the other two.
    assert summary["replay"] == {"delivered": 3, "already_processed": 2, "skipped": 0,
                                 "refused": 0, "held": 0, "failed": 0}
    assert summary["callbacks_accepted"] == 5
    # 45 + 12 objects at count 20, quiet 300 s, raw/* ignored: 20, 20, 5 and 12.
    assert summary["batches_emitted"] == 4
    # Each package-objects-ready event became a Quilt package revision in the local registry.
    assert summary["packages_created"] == 4
    packages = next(s for s in summary["steps"] if s["step"] == "Packager")["rows"]
    assert sorted(p["package"] for p in packages) == ["novaseq-01/run-0001"] * 3 + ["novaseq-01/run-0002"]
    batches = next(s for s in summary["steps"] if s["step"] == "EDP batcher")["rows"]
    assert sorted((b["prefix"], b["count"], b["trigger"]) for b in batches) == [
        ("novaseq-01/run-0001/", 5, "quiet"),
        ("novaseq-01/run-0001/", 20, "count"),
        ("novaseq-01/run-0001/", 20, "count"),
        ("novaseq-01/run-0002/", 12, "quiet"),
    ]
    open_batches = next(s for s in summary["steps"] if s["step"] == "omics-edp batches list")["rows"]
    assert sorted((b["prefix"], b["count"]) for b in open_batches) == [
        ("novaseq-01/run-0001/", 5), ("novaseq-01/run-0002/", 12)]
    # Rough edge 10: the flush ran 6 minutes ahead of the clock, so emissions were in the future.
    finished = datetime.now(UTC)
    assert all(datetime.fromisoformat(b["emitted_at"].replace("Z", "+00:00")) <= finished for b in batches)
    assert summary["dead_letters"] == 2
    deploy = next(s for s in summary["steps"] if s["step"] == "Deploy")["rows"]
    assert [d["status"] for d in deploy] == ["CREATE_COMPLETE", "CREATE_COMPLETE"]


def test_demo_tells_each_step_in_a_line():
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for title in ("Local AWS", "Deploy", "Processor", "Replay", "omics-edp batches list",
                  "EDP batcher", "Packager", "omics-edp dlq list"):
        assert f"✓ {title}:" in result.stderr
    assert "Demo finished in" in result.stderr
    assert "Traceback" not in result.output


def test_keep_leaves_the_local_aws_running_for_the_other_commands():
    """`demo --keep` prints the environment; another process uses it; Ctrl-C stops it cleanly."""
    demo = subprocess.Popen([sys.executable, "-m", "omics_edp_cli", "demo", "--keep"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        export = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and demo.poll() is None:
            line = demo.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("export "):
                export = line
                break
        assert export, "demo --keep printed no export line"
        env = dict(os.environ)
        env.update(pair.split("=", 1) for pair in shlex.split(export)[1:])
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        stacks = json.loads(subprocess.run(
            [sys.executable, "-m", "omics_edp_cli", "-o", "json", "dlq", "list", "--stack",
             _stack_named_in(demo)], env=env, capture_output=True, text=True, check=True).stdout)
        assert sum(g["count"] for g in stacks["groups"]) == 2
    finally:
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=30)
    assert demo.returncode == 0
    assert "Stopped." in err


def _stack_named_in(demo: subprocess.Popen[str]) -> str:
    """The processor stack name from the hints `--keep` prints on stderr after the export line."""
    for _ in range(200):  # bounded: the demo prints a few dozen lines
        line = demo.stderr.readline()  # type: ignore[union-attr]
        match = re.search(r"dlq list --stack (\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError("no `dlq list --stack` hint on stderr")


def test_keep_with_json_output_keeps_stdout_one_json_document():
    demo = subprocess.Popen([sys.executable, "-m", "omics_edp_cli", "-o", "json", "demo", "--keep"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text, summary = "", None
        for _ in range(5000):  # bounded: the document is a few hundred lines
            line = demo.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            text += line
            try:
                summary = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
        assert summary is not None, text[-500:]
        assert summary["environment"]["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert summary["environment"]["AWS_REGION"] == "us-east-1"
        said = []
        for _ in range(200):  # bounded: wait until it says it is waiting
            said.append(demo.stderr.readline())  # type: ignore[union-attr]
            if "Press Ctrl-C" in said[-1]:
                break
        # The export line goes to stderr with -o json, for a person to copy.
        assert f"export AWS_ENDPOINT_URL={summary['environment']['AWS_ENDPOINT_URL']} " in "".join(said)
    finally:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0
    assert out.strip() == ""  # nothing after the JSON document on stdout
    assert "Stopped." in err
