"""Reading operator-supplied files: one clear `ConfigError` line for each way they can be wrong."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from omics_edp_cli.errors import ConfigError

SAMPLES = "omics_edp_cli.samples"


def load_json_file(path: str | Path) -> Any:
    """Parse a JSON file (`-` is stdin)."""
    name = "stdin" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text (is it the right file?)") from None
    except OSError as e:
        raise ConfigError(f"{name}: cannot read: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def sample_names() -> list[str]:
    """Names of the sample HealthOmics events the package ships (`completed`, `failed`, ...)."""
    files = resources.files(SAMPLES).iterdir()
    return sorted(
        f.name.removeprefix("run-status-").removesuffix(".json")
        for f in files
        if f.name.startswith("run-status-")
    )


def load_sample(name: str) -> Any:
    names = sample_names()
    if name not in names:
        raise ConfigError(f"no sample event {name!r}; choose one of: {', '.join(names)}")
    return json.loads(resources.files(SAMPLES).joinpath(f"run-status-{name}.json").read_text())
