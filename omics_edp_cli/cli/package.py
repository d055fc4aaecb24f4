"""`omics-edp package processor|edp`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import OutputOption, app_context
from omics_edp_cli.cli.render import render_record
from omics_edp_cli.ops.deploy import packaging


class Kind(StrEnum):
    processor = "processor"
    edp = "edp"
    packager = "packager"


def package(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="Which Lambda package: processor, edp or packager.")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder to write the zip to.", file_okay=False)
    ] = Path("dist"),
    output: OutputOption = None,
) -> None:
    """Build a Lambda zip: byte-identical for identical sources; prints path, size and sha256.

    The packager zip holds quilt3 and its dependencies as wheels for the Lambda platform
    (manylinux2014_x86_64, Python 3.12), pinned to the versions installed here.

    Example: omics-edp package processor --out-dir dist
    """
    app = app_context(ctx, output)
    built = packaging.build(kind.value)
    path = packaging.write(built, out_dir)
    record: dict[str, object] = {"path": str(path), "size": len(built.data), "sha256": built.sha256,
                                 "files": built.files}
    if built.wheels:
        record["wheels"] = list(built.wheels) if app.output.value == "json" else ", ".join(built.wheels)
    render_record(app, record)


def register(app: typer.Typer) -> None:
    app.command("package", cls=Command)(package)
