"""Reproducible Lambda packages: the Lambda-side code of this package plus what it imports.

The same sources always give the same bytes (fixed timestamps and permissions, sorted
entries, no bytecode), so the content hash names the package and a new hash is exactly what
makes CloudFormation update a function's code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import omics_edp_cli
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.ops.deploy import wheels as lambda_wheels

KINDS = ("processor", "edp", "packager")
# Shared modules both functions import, then each function's own folder.
SHARED = ("__init__.py", "errors.py", "aws.py", "timefmt.py")
CODE = {"processor": ("omics",), "edp": ("edp",), "packager": ("packager",)}
# requests and its dependencies, for the processor (the EDP code needs only boto3, which the
# Lambda runtime provides). Copied from this environment: no network at build time.
DEPENDENCIES = {
    "processor": ("requests", "urllib3", "idna", "charset_normalizer", "certifi"),
    "edp": (),
    "packager": (),
}
# Downloaded for the Lambda platform instead (compiled dependencies): `ops/deploy/wheels.py`.
WHEELS = {"packager": "quilt3"}
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Bytecode, and compiled extensions built for this machine's Python (charset_normalizer's
# optional speed-ups): they would not load on the Lambda runtime, whose pure-Python
# fallbacks are packaged instead, and they would tie the hash to the builder's platform.
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib")


@dataclass(frozen=True)
class LambdaPackage:
    kind: str
    data: bytes
    files: int
    wheels: tuple[str, ...] = ()  # the Lambda-platform wheels inside, by file name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def filename(self) -> str:
        return f"omics-edp-{self.kind}-{self.sha256[:16]}.zip"

    def s3_key(self, prefix: str) -> str:
        """The content-hash key: new code, new key."""
        prefix = prefix.strip("/")
        name = f"omics-edp-{self.kind}-{self.sha256}.zip"
        return f"{prefix}/{name}" if prefix else name


def default_source_root() -> Path:
    """The folder of the installed `omics_edp_cli` package."""
    return Path(omics_edp_cli.__file__).resolve().parent


def _files_under(folder: Path) -> list[Path]:
    return [
        p for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(_SKIP_SUFFIXES)
    ]


def _dependency_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise OperationError(f"cannot package {name}: it is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def collect(kind: str, source_root: Path | None = None) -> dict[str, Path]:
    """Archive name → file, for one function kind."""
    if kind not in KINDS:
        raise ConfigError(f"unknown package {kind!r}: choose one of {', '.join(KINDS)}")
    root = source_root or default_source_root()
    entries: dict[str, Path] = {}
    for name in SHARED:
        entries[f"omics_edp_cli/{name}"] = root / name
    for folder in CODE[kind]:
        for path in _files_under(root / folder):
            if path.suffix == ".py":
                entries[f"omics_edp_cli/{path.relative_to(root).as_posix()}"] = path
    for dependency in DEPENDENCIES[kind]:
        dep_root = _dependency_root(dependency)
        for path in _files_under(dep_root):
            entries[f"{dependency}/{path.relative_to(dep_root).as_posix()}"] = path
    missing = [str(p) for p in entries.values() if not p.is_file()]
    if missing:
        raise OperationError(f"cannot package {kind}: missing {missing[0]}")
    return entries


def build(kind: str, source_root: Path | None = None, *, target: lambda_wheels.Target = lambda_wheels.LAMBDA,
          wheel_cache: Path | None = None) -> LambdaPackage:
    """Build the zip in memory, byte-identical for identical sources (and pinned wheels)."""
    entries: dict[str, Path | bytes] = dict(collect(kind, source_root))
    chosen: list[Path] = []
    if kind in WHEELS:
        chosen = lambda_wheels.download(WHEELS[kind], target, wheel_cache)
        entries.update(lambda_wheels.wheel_entries(chosen))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever machine builds it
            content = entries[name]
            archive.writestr(info, content if isinstance(content, bytes) else content.read_bytes(),
                             compresslevel=9)
    included = tuple(w.name for w in chosen if lambda_wheels.project(w) not in lambda_wheels.RUNTIME_PROVIDED)
    return LambdaPackage(kind, buffer.getvalue(), len(entries), included)


def write(package: LambdaPackage, out_dir: Path) -> Path:
    path = out_dir / package.filename
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package.data)
    except OSError as e:
        raise ConfigError(f"{out_dir}: cannot write the package there: {e.strerror}") from None
    return path
