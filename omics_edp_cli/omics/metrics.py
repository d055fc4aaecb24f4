"""CloudWatch metrics as Embedded Metric Format (EMF) log lines: no API call from the Lambda.

CloudWatch Logs turns a JSON line with an `_aws.CloudWatchMetrics` block into metrics, so a
metric costs one `print`. One line per outcome, counted under the stack's name; the
template's refusal alarm reads `Refused` from here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from omics_edp_cli.omics.config import METRICS_NAMESPACE

# Outcome (as the processor and the handler name it) → metric name.
OUTCOME_METRICS = {
    "delivered": "Delivered",
    "already_processed": "AlreadyProcessed",
    "skipped": "Skipped",
    "refused": "Refused",
    "failed": "Failed",
    "invalid": "Invalid",
}


class MetricsLogger:
    """Writes EMF lines to `stream` (stdout: the Lambda runtime ships it to CloudWatch Logs)."""

    def __init__(self, stack: str, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.time):
        self.stack = stack or "unknown"
        self._stream = stream
        self._clock = clock

    def count(self, metrics: Mapping[str, float], **properties: str) -> None:
        """One EMF line with each metric (unit Count) and extra searchable properties."""
        line = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["Stack"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                }],
            },
            "Stack": self.stack,
            **properties,
            **metrics,
        }
        stream = self._stream or sys.stdout
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()

    def outcome(self, outcome: str, **properties: str) -> None:
        self.count({OUTCOME_METRICS.get(outcome, outcome.title()): 1}, outcome=outcome, **properties)
