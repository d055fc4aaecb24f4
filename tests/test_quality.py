"""House rules that a reviewer would otherwise check by hand."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "omics_edp_cli"
LAMBDA_ALLOWED_THIRD_PARTY = {"boto3", "botocore", "requests", "urllib3"}
# The packager Lambda may also use quilt3 (its zip carries it).
EXTRA_ALLOWED = {"packager": {"quilt3"}}


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "omics_edp_cli", "tests"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_lambda_side_code_imports_only_stdlib_boto3_and_requests():
    offenders = {}
    for folder in ("omics", "edp", "packager"):
        for path in (PACKAGE / folder).rglob("*.py"):
            third_party = {
                root for root in _imported_roots(path)
                if root not in sys.stdlib_module_names and root != "omics_edp_cli"
            } - LAMBDA_ALLOWED_THIRD_PARTY - EXTRA_ALLOWED.get(folder, set())
            if third_party:
                offenders[str(path.relative_to(ROOT))] = sorted(third_party)
    assert offenders == {}


def test_lambda_side_code_never_imports_cli_or_ops():
    for folder in ("omics", "edp", "packager"):
        for path in (PACKAGE / folder).rglob("*.py"):
            text = path.read_text()
            assert "omics_edp_cli.cli" not in text and "omics_edp_cli.ops" not in text, path
