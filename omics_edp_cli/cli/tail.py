"""`omics-edp tail`: print a bus's events as they arrive (temporary queue and rule, removed on exit)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import OutputFormat, OutputOption, app_context
from omics_edp_cli.ops.tail import EventTail, resolve_target


def tail(
    ctx: typer.Context,
    stack: Annotated[
        str | None, typer.Option(help="An EDP stack: follow its package-objects-ready events. A "
                                 "processor stack: its HealthOmics run status events and the "
                                 "refusal / dead-letter alarms.")
    ] = None,
    bus: Annotated[
        str | None, typer.Option(help="Any event bus, by name: follow every event on it.")
    ] = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, metavar="N", help="Stop after N events.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, metavar="SECONDS", help="Stop after this long.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Follow an event bus live, printing each event as it arrives, until Ctrl-C (or a limit).

    A temporary SQS queue and rule carry the events; both are removed on exit, Ctrl-C included.
    Example: omics-edp -o json tail --stack prod-edp --max-events 5
    """
    app = app_context(ctx, output)
    target = resolve_target(app.clients, stack=stack, bus=bus)
    with EventTail(app.clients, target) as follower:
        app.err.print(f"following {target.description} through {follower.name} (Ctrl-C to stop)")
        count = 0
        for event in follower.events(max_events=max_events, timeout=timeout):
            count += 1
            if app.output is OutputFormat.json:
                app.out.print(json.dumps(event, separators=(",", ":")), soft_wrap=True, markup=False,
                              highlight=False)
            else:
                app.out.print(escape(_line(event)), soft_wrap=True, highlight=False)
            app.out.file.flush()  # live: a pipe must see each event as it comes
    app.err.print(f"{count} event(s); removed {follower.name}")


def _line(event: dict[str, Any]) -> str:
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    if event.get("Type") == "Notification":  # from the processor's alarm topic (SNS)
        return "  ".join([str(event.get("Timestamp", "")), "alarm", str(event.get("Subject", ""))])
    parts = [str(event.get("time", "")), str(event.get("source", "")), str(event.get("detail-type", ""))]
    if "prefix" in detail:
        parts += [f"s3://{detail.get('bucket')}/{detail.get('prefix')}", f"count={detail.get('count')}",
                  f"trigger={detail.get('trigger')}", f"batch_id={detail.get('batch_id')}"]
        if detail.get("manifest"):
            parts.append(f"manifest={detail['manifest']}")
    else:
        parts.append(json.dumps(detail, separators=(",", ":"))[:200])
    return "  ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("tail", cls=Command)(tail)
