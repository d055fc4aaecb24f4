"""`omics-edp package`: reproducible zips holding only the Lambda-side code (and requests)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.ops.deploy import packaging

runner = CliRunner()


@pytest.mark.parametrize("kind", ["processor", "edp"])  # packager: tests/packager
def test_package_is_byte_identical_across_builds(kind):
    first, second = packaging.build(kind), packaging.build(kind)
    assert first.data == second.data
    assert first.sha256 == hashlib.sha256(second.data).hexdigest()


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_processor_package_holds_lambda_code_and_requests_only():
    names = _names(packaging.build("processor").data)
    assert "omics_edp_cli/omics/handler.py" in names
    assert "requests/__init__.py" in names and "urllib3/__init__.py" in names
    assert not any(n.startswith(("omics_edp_cli/cli/", "omics_edp_cli/ops/", "omics_edp_cli/edp/"))
                   for n in names)
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in names)
    assert names == sorted(names)


def test_edp_package_holds_the_batcher_without_requests():
    names = _names(packaging.build("edp").data)
    assert "omics_edp_cli/edp/handlers.py" in names
    assert not any(n.startswith(("requests/", "omics_edp_cli/omics/", "omics_edp_cli/cli/")) for n in names)


def test_changed_source_changes_the_hash(tmp_path: Path):
    import shutil

    root = tmp_path / "omics_edp_cli"
    shutil.copytree(packaging.default_source_root(), root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "edp" / "handlers.py").open("a") as f:
        f.write("\n# a change\n")
    assert packaging.build("edp", root).sha256 != packaging.build("edp").sha256


def test_package_command_prints_path_size_and_sha256(tmp_path: Path):
    result = runner.invoke(app, ["-o", "json", "package", "edp", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    written = Path(info["path"]).read_bytes()
    assert info["size"] == len(written)
    assert info["sha256"] == hashlib.sha256(written).hexdigest() == packaging.build("edp").sha256


def test_processor_package_holds_no_compiled_extensions_and_their_fallbacks_import(tmp_path: Path):
    data = packaging.build("processor").data
    names = _names(data)
    assert not any(n.endswith((".so", ".pyd", ".dylib")) for n in names)
    assert {"charset_normalizer/md.py", "charset_normalizer/cd.py"} <= set(names)
    # The pure-Python package works on its own: requests imports from the unpacked zip alone.
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import requests, charset_normalizer; "
             "assert charset_normalizer.__file__.startswith(sys.argv[1]); "
             "assert charset_normalizer.from_bytes('héllo wörld'.encode('latin-1')).best() is not None")
    subprocess.run([sys.executable, "-I", "-c", probe, str(tmp_path)], check=True)


def test_package_into_an_unwritable_place_exits_2(tmp_path: Path):
    (tmp_path / "a-file").write_text("not a folder")
    below = tmp_path / "a-file" / "below"
    result = runner.invoke(app, ["package", "edp", "--out-dir", str(below)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {below}: cannot write the package there: ")
    assert len(result.stderr.strip().splitlines()) == 1
    # A file where the folder should be is a usage error, caught before building anything.
    result = runner.invoke(app, ["package", "edp", "--out-dir", str(tmp_path / "a-file")])
    assert result.exit_code == 2
    assert "is a file" in " ".join(result.stderr.replace("│", " ").split())
