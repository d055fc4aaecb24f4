"""The packager imports quilt3 without its admin and API-key clients, which stay usable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("quilt3")


def test_quilt3_comes_without_its_graphql_clients_until_one_is_used(tmp_path: Path):
    script = """
import sys
import omics_edp_cli.packager.push
assert "quilt3._graphql_client" not in sys.modules, "the admin clients were imported"
import quilt3
assert quilt3.Package is not None
assert callable(quilt3.api_keys.list)  # the first use imports the real module
assert "quilt3._graphql_client" in sys.modules
import quilt3.admin.users
assert callable(quilt3.admin.users.list)
assert type(sys.modules["quilt3.admin"]) is type(sys), sys.modules["quilt3.admin"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
