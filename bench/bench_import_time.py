"""Start-up cost: the processor's Lambda handler import, and `omics-edp --help`.

1. Extra import time of the processor's Lambda handler over `import boto3, requests`: runs
   `python -X importtime -c "import boto3, requests; import omics_edp_cli.omics.handler"` and
   reads the cumulative time of the handler's own import line (everything boto3 and requests
   already loaded is not counted again). Target: under 50 ms.
2. `omics-edp --help` and `omics-edp simulate-batch --help` against the baseline
   `python -c "import typer, rich.console"`: each run in a fresh child process, its CPU time
   (user + system, from `os.wait4` on that child only) and wall time; the minimum of `--runs`
   (on a busy machine the minimum is the run that was least disturbed), alternating command and
   baseline. Target: `omics-edp --help` at most 1.5x the baseline. The same with Typer's Rich
   help formatter switched off (`TYPER_USE_RICH=0`) shows what that formatter alone costs.

Usage: .venv/bin/python bench/bench_import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODULE = "omics_edp_cli.omics.handler"
CLI = str(Path(sys.executable).with_name("omics-edp"))
BASELINE = [sys.executable, "-c", "import typer, rich.console"]
COMMANDS = {
    "omics-edp --help": [CLI, "--help"],
    "omics-edp simulate-batch --help": [CLI, "simulate-batch", "--help"],
    # Typer's own switch for plain (click-style) help: shows what Typer's Rich help formatter
    # (typer.rich_utils with rich.markdown, markdown_it and rich.traceback) costs by itself.
    "TYPER_USE_RICH=0 omics-edp --help": ["env", "TYPER_USE_RICH=0", CLI, "--help"],
}


def handler_run() -> tuple[float, float]:
    code = f"import boto3, requests; import {MODULE}"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    baseline = extra = 0.0
    for line in err.splitlines():
        # "import time: self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        name, cumulative = parts[2], int(parts[1]) / 1000
        if name in ("boto3", "requests"):
            baseline += cumulative
        elif name == MODULE:
            extra = cumulative
    return baseline, extra


def child_cost(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh child running `argv`; its own rusage only."""
    env = {**os.environ, "COLUMNS": "100"}
    wall = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - wall
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    runs = [handler_run() for _ in range(args.runs)]
    base = statistics.median(r[0] for r in runs)
    extra = statistics.median(r[1] for r in runs)
    print(f"import boto3, requests (baseline): {base:7.1f} ms (median of {args.runs})")
    print(f"+ {MODULE}:        {extra:7.1f} ms extra (target < 50 ms)")
    print(f"ratio extra/baseline:              {extra / base:7.2f}")

    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], **{name: [] for name in COMMANDS}}
    child_cost(BASELINE)  # warm the file cache and .pyc files
    for argv in COMMANDS.values():
        child_cost(argv)
    for _ in range(args.runs):
        samples["baseline"].append(child_cost(BASELINE))
        for name, argv in COMMANDS.items():
            samples[name].append(child_cost(argv))
    b_cpu = min(s[0] for s in samples["baseline"])
    b_wall = min(s[1] for s in samples["baseline"])
    print(f"python -c 'import typer, rich.console' (baseline): {b_cpu * 1000:6.0f} ms CPU, "
          f"{b_wall * 1000:6.0f} ms wall (min of {args.runs})")
    for name in COMMANDS:
        cpu, wall = min(s[0] for s in samples[name]), min(s[1] for s in samples[name])
        target = " (target <= 1.5)" if name == "omics-edp --help" else ""
        print(f"{name:33s}: {cpu * 1000:6.0f} ms CPU, {wall * 1000:6.0f} ms wall = "
              f"{cpu / b_cpu:4.2f}x CPU, {wall / b_wall:4.2f}x wall{target}")


if __name__ == "__main__":
    main()
