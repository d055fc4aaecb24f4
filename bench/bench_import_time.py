"""Extra import time of the processor's Lambda handler over `import boto3, requests`.

Runs `python -X importtime -c "import boto3, requests; import omics_edp_cli.omics.handler"`
several times and reads the cumulative time of the handler's own import line (everything
boto3 and requests already loaded is not counted again). Target: under 50 ms.

Usage: .venv/bin/python bench/bench_import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

MODULE = "omics_edp_cli.omics.handler"


def one_run() -> tuple[float, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    base = statistics.median(r[0] for r in runs)
    extra = statistics.median(r[1] for r in runs)
    print(f"import boto3, requests (baseline): {base:7.1f} ms (median of {args.runs})")
    print(f"+ {MODULE}:        {extra:7.1f} ms extra (target < 50 ms)")
    print(f"ratio extra/baseline:              {extra / base:7.2f}")


if __name__ == "__main__":
    main()
