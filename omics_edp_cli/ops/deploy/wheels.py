"""Third-party wheels for a Lambda package, chosen for the Lambda platform (not this machine's).

quilt3 depends on compiled packages (pydantic-core, rpds-py, PyYAML, awscrt), so the packager's zip
needs the wheels built for Lambda: `pip download --platform manylinux2014_x86_64 --python-version
3.12 --only-binary=:all:`. Every package of the dependency closure is pinned to the version
installed here (the same code that the tests ran), so a rebuild resolves to the same wheels; they
are kept in a cache folder with a lock file naming them, and a rebuild with the same pins reads
the cache without calling pip.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from omics_edp_cli.errors import ConfigError, OperationError


@dataclass(frozen=True)
class Target:
    platform: str = "manylinux2014_x86_64"
    python_version: str = "3.12"

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")


LAMBDA = Target()
# The Lambda Python runtime ships these (and a zip is capped at 250 MB unpacked).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirement: str) -> dict[str, str]:
    """The installed closure of `requirement` (name → version), extras' dependencies left out."""
    found: dict[str, str] = {}
    pending = [requirement]
    while pending:
        name = pending.pop()
        key = _normal(name)
        if key in found:
            continue
        try:
            found[key] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == requirement:
                raise ConfigError(f"{requirement} is not installed: "
                                  "pip install 'omics-edp-cli[packager]'") from None
            continue  # a dependency for another platform or Python (its marker excluded it here)
        for line in metadata.requires(name) or []:
            if "extra ==" not in line:
                pending.append(re.match(r"[A-Za-z0-9_.-]+", line).group(0))  # type: ignore[union-attr]
    return dict(sorted(found.items()))


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "omics-edp" / "wheels"


def download(requirement: str, target: Target = LAMBDA, cache: Path | None = None) -> list[Path]:
    """The wheels of `requirement` and its dependencies for `target`, from the cache or pip."""
    pinned = pins(requirement)
    constraints = "".join(f"{name}=={version}\n" for name, version in pinned.items())
    digest = hashlib.sha256(f"{target}\n{constraints}".encode()).hexdigest()[:16]
    folder = (cache or default_cache()) / digest
    lock = folder / "wheels.json"
    if lock.is_file():
        names = json.loads(lock.read_text())
        if all((folder / n).is_file() for n in names):
            return [folder / n for n in names]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "constraints.txt").write_text(constraints)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
               "--platform", target.platform, "--python-version", target.python_version,
               "--implementation", "cp", "--abi", target.abi, "--dest", str(folder),
               "-c", str(folder / "constraints.txt"), f"{requirement}=={pinned[_normal(requirement)]}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise OperationError(f"downloading the {target.platform} wheels of {requirement} failed: {last}")
    names = sorted(p.name for p in folder.glob("*.whl"))
    lock.write_text(json.dumps(names, indent=1))
    return [folder / n for n in names]


def project(wheel: Path) -> str:
    return _normal(wheel.name.split("-")[0])


def wheel_entries(wheels: list[Path]) -> dict[str, bytes]:
    """Archive name → bytes of every wheel's files, runtime-provided packages and bytecode left out."""
    entries: dict[str, bytes] = {}
    for wheel in sorted(wheels, key=lambda w: w.name):
        if project(wheel) in RUNTIME_PROVIDED:
            continue
        with zipfile.ZipFile(io.BytesIO(wheel.read_bytes())) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or "__pycache__" in name or name.endswith((".pyc", ".pyo")):
                    continue
                entries[name] = archive.read(info)
    return entries
