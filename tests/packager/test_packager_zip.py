"""`omics-edp package packager`: the Lambda code plus quilt3's wheels for the Lambda platform."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omics_edp_cli.cli.app import app
from omics_edp_cli.ops.deploy import packaging, wheels

pytest.importorskip("quilt3")
# A real interpreter (a pyenv shim on PATH may refuse to run it).
PYTHON_312 = next((str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))),
                  None) or shutil.which("python3.12", path="/usr/local/bin:/usr/bin")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(scope="module")
def built(cache: Path) -> packaging.LambdaPackage:
    return packaging.build("packager", wheel_cache=cache)


def test_the_zip_holds_the_packager_and_lambda_platform_wheels_of_quilt3(built):
    names = zipfile.ZipFile(io.BytesIO(built.data)).namelist()
    assert "omics_edp_cli/packager/handler.py" in names and "quilt3/packages.py" in names
    assert not any(n.startswith(("omics_edp_cli/cli/", "omics_edp_cli/ops/", "omics_edp_cli/omics/",
                                 "boto3/", "botocore/", "s3transfer/")) for n in names)
    # Compiled dependencies come as Lambda's (CPython 3.12, manylinux x86_64) builds.
    compiled = [w for w in built.wheels if not w.endswith("-none-any.whl")]
    assert {wheels.project(Path(w)) for w in compiled} >= {"pydantic-core", "rpds-py", "pyyaml"}
    assert all("manylinux" in w and "x86_64" in w for w in compiled)
    assert any(n.startswith("pydantic_core/") and n.endswith("cpython-312-x86_64-linux-gnu.so")
               for n in names)
    assert "quilt3-8.0.0-py3-none-any.whl" in built.wheels
    assert names == sorted(names)


def test_a_rebuild_is_byte_identical_and_reads_the_cache(built, cache, monkeypatch):
    # Without pip: a rebuild that tried to download would fail here.
    monkeypatch.setattr(wheels.sys, "executable", "/nonexistent/python")
    assert packaging.build("packager", wheel_cache=cache).data == built.data


@pytest.mark.skipif(PYTHON_312 is None, reason="no CPython 3.12 on this machine")
def test_the_unpacked_zip_imports_quilt3_on_python_3_12(built, tmp_path):
    zipfile.ZipFile(io.BytesIO(built.data)).extractall(tmp_path)
    # boto3 comes with the Lambda runtime: taken from this environment, after the zip's folder.
    runtime = sysconfig.get_paths()["purelib"]
    probe = ("import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]); "
             "import quilt3, pydantic_core, yaml, rpds; "
             "import omics_edp_cli.packager.handler, omics_edp_cli.packager.push; "
             "assert quilt3.__file__.startswith(sys.argv[1]); "
             "assert pydantic_core.__file__.startswith(sys.argv[1]); "
             "print(quilt3.__file__)")
    done = subprocess.run([str(PYTHON_312), "-I", "-c", probe, str(tmp_path), runtime],
                          capture_output=True, text=True, env={"XDG_DATA_HOME": str(tmp_path / "d"),
                                                               "XDG_CACHE_HOME": str(tmp_path / "c")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(str(tmp_path))


def test_package_packager_prints_size_and_the_wheels(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))
    monkeypatch.setattr(wheels, "default_cache", lambda: cache)
    result = CliRunner().invoke(app, ["-o", "json", "package", "packager", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["size"] == Path(info["path"]).stat().st_size
    assert "quilt3-8.0.0-py3-none-any.whl" in info["wheels"]


def test_the_packager_zip_is_smaller_than_lambdas_limit(built):
    assert len(built.data) < 50 * 1024 * 1024  # direct upload limit; S3 upload allows 250 MB unpacked
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(built.data)).infolist())
    assert unpacked < 250 * 1024 * 1024
    print(f"packager zip: {len(built.data):,} bytes, {unpacked:,} unpacked", file=sys.stderr)
