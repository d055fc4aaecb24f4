"""`omics-edp dlq list|show|redrive|purge`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from omics_edp_cli.cli.commands import Command, Group
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.errors import CliError, ExitCode
from omics_edp_cli.cli.render import print_json, render_record, render_rows
from omics_edp_cli.ops.dlq.queues import (
    DeadLetterQueue,
    Redriver,
    default_purge_file,
    find,
    group,
    purge,
    resolve_queues,
    scan,
)

dlq_app = typer.Typer(
    cls=Group,
    name="dlq", no_args_is_help=True, rich_markup_mode="rich",
    help="Inspect, redrive and purge the dead-letter queues of either stack.",
)


class QueueChoice(StrEnum):
    processor = "processor"
    ingest = "ingest"
    flush = "flush"
    packager = "packager"


StackOpt = Annotated[
    str | None, typer.Option(help="Stack whose dead-letter queues to use (processor, EDP or packager).")
]
QueueUrlOpt = Annotated[str | None, typer.Option(help="A dead-letter queue URL, instead of --stack.")]
QueueOpt = Annotated[
    QueueChoice | None, typer.Option("--queue", help="With --stack: only this one of its queues.")
]
FunctionOpt = Annotated[
    str | None, typer.Option(help="The function whose async failures land in the queue (default: "
                             "the stack's; destination records and EventBridge target failures "
                             "name their own).")
]


def _queues(app: AppContext, stack: str | None, queue_url: str | None, queue: QueueChoice | None,
            function: str | None, source_queue_url: str | None = None) -> list[DeadLetterQueue]:
    return resolve_queues(app.clients, stack, queue_url, queue.value if queue else None, function,
                          source_queue_url)


@dlq_app.command("list", cls=Command)
def list_command(
    ctx: typer.Context,
    stack: StackOpt = None,
    queue_url: QueueUrlOpt = None,
    queue: QueueOpt = None,
    function: FunctionOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Read at most this many messages per queue.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Group dead letters by failure signature, without consuming them.

    Example: omics-edp dlq list --stack prod-omics
    """
    app = app_context(ctx, output)
    scans = scan(app.clients, _queues(app, stack, queue_url, queue, function), limit)
    groups = group(scans)
    queues = [{"queue": s.queue.label, "name": s.queue.name, "url": s.queue.url, **s.depth}
              for s in scans]
    for q in queues:
        app.err.print(f"{q['name']} ({q['queue']}): {q['visible']} visible, {q['in_flight']} in flight")
    if app.output is OutputFormat.table and not groups:
        app.err.print("No messages.")
        return
    if app.output is OutputFormat.json:
        print_json(app, {"queues": queues, "groups": groups})
        return
    app.out.print(_group_table(groups))


def _group_table(groups: list[dict[str, Any]]) -> Table:
    """Signature and ids get the width; count and times stay on their lines."""
    table = Table(title="Dead letters by failure signature", title_justify="left", header_style="bold")
    table.add_column("queue / kind", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("first / last", no_wrap=True)
    table.add_column("signature / sample ids", overflow="fold", ratio=1)
    for g in groups:
        table.add_row(f"{g['queue']}\n{g['kind']}", str(g["count"]), f"{g['first'] or ''}\n{g['last'] or ''}",
                      Text(f"{g['signature']}\n{' '.join(g['sample_ids'])}"))
    return table


@dlq_app.command("show", cls=Command)
def show_command(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(metavar="ID", help="Message id (or a unique prefix).")],
    stack: StackOpt = None,
    queue_url: QueueUrlOpt = None,
    queue: QueueOpt = None,
    function: FunctionOpt = None,
    output: OutputOption = None,
) -> None:
    """Show a dead letter's original event and its error, without consuming it.

    Example: omics-edp dlq show 6f1c2e4a --stack prod-omics
    """
    app = app_context(ctx, output)
    letter = find(app.clients, _queues(app, stack, queue_url, queue, function), message_id)
    record = letter.record()
    if app.output is OutputFormat.json:
        print_json(app, record)
        return
    event = record.pop("event")
    for name in ("body", "attributes", "message_attributes"):
        record.pop(name)
    trace = record.pop("stack_trace") or []
    render_record(app, {k: v for k, v in record.items() if v is not None}, title="Dead letter")
    if trace:
        app.out.print("Stack trace:")
        for line in trace:
            app.out.print(f"  {str(line).rstrip()}", markup=False, highlight=False)
    app.out.print("Original event:")
    print_json(app, event)


@dlq_app.command("redrive", cls=Command)
def redrive_command(
    ctx: typer.Context,
    stack: StackOpt = None,
    queue_url: QueueUrlOpt = None,
    queue: QueueOpt = None,
    function: FunctionOpt = None,
    source_queue_url: Annotated[
        str | None, typer.Option(help="Send SQS-sourced messages here (default: the queue AWS recorded, "
                                 "the stack's ingest queue, or the one queue that redrives here).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show where each message would go; send and delete nothing.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Redrive at most this many messages.")] = None,
    rate: Annotated[
        float, typer.Option(min=0, help="At most this many messages per second (0: no limit).")
    ] = 10.0,
    output: OutputOption = None,
) -> None:
    """Send dead letters back where they came from; each is deleted only once that succeeded.

    SQS messages go back to their source queue; Lambda failures and EventBridge target failures
    re-invoke the function (async) with the original event.

    Example: omics-edp dlq redrive --stack prod-omics --dry-run
    """
    app = app_context(ctx, output)
    queues = _queues(app, stack, queue_url, queue, function, source_queue_url)
    outcomes = Redriver(app.clients, rate or None).run(queues, dry_run=dry_run, limit=limit)
    rows = [o.as_dict() for o in outcomes]
    failed = sum(1 for o in outcomes if o.outcome == "failed")
    done = len(outcomes) - failed
    verb = "would redrive" if dry_run else "redriven"
    note = " (dry run: nothing sent or deleted)" if dry_run else ""
    app.err.print(f"{done} {verb}, {failed} failed{note}")
    if rows or app.output is OutputFormat.json:
        render_rows(app, rows, ("message_id", "queue", "kind", "target", "outcome", "error"),
                    title="Redrive")
    if failed:
        raise typer.Exit(ExitCode.FAILED)


@dlq_app.command("purge", cls=Command)
def purge_command(
    ctx: typer.Context,
    stack: StackOpt = None,
    queue_url: QueueUrlOpt = None,
    queue: QueueOpt = None,
    save: Annotated[
        Path | None, typer.Option(help="Save the messages here first (JSON lines) "
                                  "(default: dlq-QUEUE-TIME.jsonl in the current folder).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete the messages.")] = False,
    output: OutputOption = None,
) -> None:
    """Delete every dead letter, after saving them all to a JSON-lines file.

    Example: omics-edp dlq purge --stack prod-omics --queue processor --yes
    """
    app = app_context(ctx, output)
    if not yes:
        raise CliError("purge deletes every message in the queue: pass --yes "
                       "(they are saved to a JSON-lines file first)", ExitCode.USAGE)
    queues = _queues(app, stack, queue_url, queue, None)
    result = purge(app.clients, queues, save or default_purge_file(queues))
    if result.saved == 0:
        # purge created the file (it never overwrites one), so removing it loses nothing.
        result.path.unlink(missing_ok=True)
        which = "the dead-letter queue is" if len(queues) == 1 else "the dead-letter queues are"
        app.err.print(f"Nothing to purge: {which} empty (no file written).")
        render_record(app, {"saved": 0, "deleted": 0, "file": None})
        return
    app.err.print(f"Saved {result.saved} message(s) to {result.path}; deleted {result.deleted}.")
    render_record(app, {"saved": result.saved, "deleted": result.deleted, "file": str(result.path)})


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
