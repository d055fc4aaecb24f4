"""`omics-edp batches list|show|flush`: inspect live EDP batch state and force-emit a batch."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from omics_edp_cli.cli.commands import Command, Group
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import ExitCode
from omics_edp_cli.cli.render import human_seconds, print_json, render_record, render_rows
from omics_edp_cli.errors import OperationError
from omics_edp_cli.ops.batches import (
    Target,
    emission_row,
    event_of,
    force_flush,
    open_rows,
    open_target,
    recent_rows,
    resolve_key,
    show,
)

batches_app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    help="Open batches, recent emissions and forced flushes of the EDP batcher "
         "(a deployed stack, a DynamoDB table, or a local SQLite file).",
)

Stack = Annotated[str | None, typer.Option(help="A deployed EDP stack (its state table and event bus).")]
Table = Annotated[str | None, typer.Option(help="A DynamoDB batch-state table, by name.")]
Db = Annotated[
    str | None, typer.Option(metavar="PATH", help="A local SQLite batch-state file.")
]
Bucket = Annotated[
    str | None, typer.Option(help="Bucket of PREFIX (default: the stack's BucketName, or the one "
                                  "open batch with that prefix).")
]
Prefix = Annotated[str, typer.Argument(metavar="PREFIX", help="The batch prefix, e.g. novaseq-02/run-42/ or s3://BUCKET/PREFIX/.")]


def _target(app: AppContext, stack: str | None, table: str | None, db: str | None,
            event_bus: str | None = None) -> Target:
    return open_target(app.clients, stack=stack, table=table, db=db, event_bus=event_bus)


@batches_app.command("list", cls=Command)
def list_batches(
    ctx: typer.Context,
    stack: Stack = None,
    table: Table = None,
    db: Db = None,
    limit: Annotated[int, typer.Option(min=0, help="How many recent emissions to show.")] = 20,
    output: OutputOption = None,
) -> None:
    """Open batches (count, age, time to quiet flush) and the most recent emissions.

    Example: omics-edp batches list --stack prod-edp
    """
    app = app_context(ctx, output)
    target = _target(app, stack, table, db)
    now = time.time()
    opened = open_rows(target.store, now)
    recent = recent_rows(target.store, limit) if limit else []
    if app.output is OutputFormat.json:
        print_json(app, {"source": target.description, "open": opened, "recent": recent})
        return
    app.err.print(f"batch state in {target.description}")
    buckets = {r["bucket"] for r in opened + recent}
    # One bucket (the usual case): name it in the titles and keep the columns for prefixes.
    bucket_column = ["bucket"] if len(buckets) > 1 else []
    where = f" in {next(iter(buckets))}" if len(buckets) == 1 else ""
    render_rows(app, [_open_cells(r) for r in opened],
                [*bucket_column, "prefix", "count", "age", "last object", "flush in", "unpublished"],
                title=f"Open batches{where} ({len(opened)})")
    render_rows(app, [_emission_cells(r) for r in recent],
                ["emitted", *bucket_column, "prefix", "count", "trigger", "status"],
                title=f"Recent emissions{where} ({len(recent)})")


@batches_app.command("show", cls=Command)
def show_batch(
    ctx: typer.Context,
    prefix: Prefix,
    bucket: Bucket = None,
    stack: Stack = None,
    table: Table = None,
    db: Db = None,
    batch: Annotated[
        str | None, typer.Option("--batch", metavar="BATCH_ID",
                                 help="List this batch's objects (its manifest) instead of the open one's.")
    ] = None,
    objects: Annotated[int, typer.Option("--objects", min=0, metavar="N",
                                         help="How many of the batch's objects to list.")] = 20,
    all_objects: Annotated[bool, typer.Option("--all", help="List every object of the batch.")] = False,
    output: OutputOption = None,
) -> None:
    """One prefix: its open batch, when it will flush, its recent emissions, and a batch's objects.

    Example: omics-edp batches show novaseq-02/run-42/ --stack prod-edp --batch BATCH_ID --all
    """
    app = app_context(ctx, output)
    target = _target(app, stack, table, db)
    key = resolve_key(target, prefix, bucket, any_state=True)
    record = show(target.store, key, time.time(), manifests=target.manifests, batch_id=batch,
                  objects=None if all_objects else objects)
    if app.output is OutputFormat.json:
        print_json(app, record)
        return
    recent = record.pop("recent")
    listed = record.pop("objects")
    of, total = record.pop("objects_of"), record.pop("objects_total")
    for name in ("age_seconds", "last_object_seconds_ago"):
        if name in record:
            record[name] = human_seconds(record[name])
    if "flush_in_seconds" in record:
        record["flush_in_seconds"] = _flush_in(record["flush_in_seconds"])
    render_record(app, {k.replace("_seconds", "").replace("_", " "): v for k, v in record.items()},
                  title=f"s3://{key[0]}/{key[1]}")
    render_rows(app, [_emission_cells(r) for r in recent],
                ["emitted", "count", "trigger", "status", "first event", "last event", "batch id"],
                title=f"Recent emissions ({len(recent)})")
    if of is not None:
        shown = f"first {len(listed)} of {total}" if len(listed) < total else f"all {total}"
        rows = [{"key": o["key"], "size": o["size"], "event time": o["event_time"]} for o in listed]
        render_rows(app, rows, ["key", "size", "event time"], title=f"Objects of batch {of} ({shown})")
        if len(listed) < total:
            app.err.print(f"{total - len(listed)} more: --all lists every object")


@batches_app.command("flush", cls=Command)
def flush_batch(
    ctx: typer.Context,
    prefix: Prefix,
    bucket: Bucket = None,
    stack: Stack = None,
    table: Table = None,
    db: Db = None,
    event_bus: Annotated[
        str | None, typer.Option(help="Publish to this event bus (default: the stack's EventBusName).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Emit one open batch now (trigger `flush`), whatever its count and age.

    Example: omics-edp batches flush novaseq-02/run-42/ --stack prod-edp
    """
    app = app_context(ctx, output)
    target = _target(app, stack, table, db, event_bus)
    key = resolve_key(target, prefix, bucket)
    emission, sent = force_flush(target, app.clients, key, time.time())
    if emission is None:
        if app.output is OutputFormat.json:
            print_json(app, {"published": False, "event": None, "bucket": key[0], "prefix": key[1],
                             "reason": "no open batch"})
        raise OperationError(f"s3://{key[0]}/{key[1]} has no open batch: nothing to flush")
    event = event_of(target, emission)
    if app.output is OutputFormat.json:
        print_json(app, {"published": sent, "event": event})
    else:
        row = emission_row(emission, published=sent)
        render_record(app, {k.replace("_", " "): v for k, v in row.items()}, title="Emitted")
    if sent:
        app.err.print(f"published to event bus {target.event_bus}")
    elif target.local and not target.event_bus:
        app.err.print("local state file: the event was recorded and printed, not sent to any bus")
        if app.output is not OutputFormat.json:
            print_json(app, event)
    else:
        app.err.print("[red]the batch is emitted but PutEvents failed: the flush Lambda publishes it "
                      "on its next run[/]")
        raise typer.Exit(ExitCode.FAILED)


def _flush_in(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return "due" if seconds <= 0 else human_seconds(seconds)


def _short_time(iso: str) -> str:
    """2026-03-02T10:15:00.250Z → 2026-03-02 10:15:00 (UTC): fits narrow terminals."""
    return iso[:19].replace("T", " ")


def _open_cells(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "bucket": row["bucket"], "prefix": row["prefix"], "count": row["count"],
        "age": human_seconds(row["age_seconds"]), "last object": human_seconds(row["idle_seconds"]),
        "flush in": _flush_in(row["flush_in_seconds"]), "unpublished": row["unpublished"] or "",
    }


def _emission_cells(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "emitted": _short_time(row["emitted_at"]), "bucket": row["bucket"], "prefix": row["prefix"],
        "count": row["count"], "trigger": row["trigger"], "status": row["status"],
        "first event": row["first_event_at"], "last event": row["last_event_at"],
        "batch id": row["batch_id"],
    }


def register(app: typer.Typer) -> None:
    app.add_typer(batches_app, name="batches")
