"""`omics-edp demo`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from omics_edp_cli.cli.commands import Command
from omics_edp_cli.cli.context import AppContext, OutputFormat, OutputOption, app_context
from omics_edp_cli.cli.render import print_json, render_rows

if TYPE_CHECKING:
    from omics_edp_cli.local.demo import DemoResult, Names
    from omics_edp_cli.local.sandbox import LocalSandbox


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the local AWS running afterwards and print the "
                     "AWS_ENDPOINT_URL to point the other commands at it (Ctrl-C to stop)."),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Run both pipelines end to end on this machine: no AWS account needed.

    Starts a local AWS (moto), a HealthOmics fake and an NGS360-style receiver on 127.0.0.1,
    deploys both stacks into it, processes a run's events (the receiver is down for part of
    it), replays what failed, batches an S3 burst, and shows batches and the dead-letter queue.

    Example: omics-edp demo
    """
    # Imported here: moto is in the optional `local` extra and slow to import.
    from omics_edp_cli.local.demo import Names, Step, run_demo

    app = app_context(ctx, output)
    names = Names()

    steps: list[dict[str, Any]] = []

    def report(step: Step) -> None:
        steps.append({"step": step.title, "summary": step.summary, "rows": step.rows})
        if app.output is OutputFormat.json:
            return
        app.err.print(f"[bold green]✓ {step.title}[/]: {step.summary}")
        if step.rows:
            render_rows(app, step.rows)

    if keep:
        def hold(box: LocalSandbox, result: DemoResult) -> None:
            _finish(app, result, steps, _environment(box))
            _wait_for_ctrl_c(app, names, box)

        run_demo(report, keep=hold, names=names)
    else:
        _finish(app, run_demo(report, names=names), steps)


def _environment(box: LocalSandbox) -> dict[str, str]:
    """What another shell exports to use the other commands against the kept local AWS."""
    return {
        "AWS_ENDPOINT_URL": box.aws_url, "AWS_ENDPOINT_URL_OMICS": box.omics.url,
        "AWS_ACCESS_KEY_ID": "omics-edp-local", "AWS_SECRET_ACCESS_KEY": "omics-edp-local",
        "AWS_REGION": "us-east-1", "OMICS_EDP_API_TOKEN": box.token,
    }


def _finish(app: AppContext, result: DemoResult, steps: list[dict[str, Any]],
            environment: dict[str, str] | None = None) -> None:
    if app.output is OutputFormat.json:
        print_json(app, {
            "archived_payloads": result.archived,
            "callbacks_accepted": result.callbacks_accepted,
            "deliveries_failed_then_replayed": result.deliveries_failed,
            "replay": result.replayed,
            "batches_emitted": result.batches_emitted,
            "packages_created": result.packages_created,
            "dead_letters": result.dead_letters,
            "seconds": round(result.seconds, 1),
            "steps": steps,
            **({"environment": environment} if environment else {}),
        })
    else:
        app.err.print(f"[bold]Demo finished in {result.seconds:.1f} s.[/]")


def _wait_for_ctrl_c(app: AppContext, names: Names, box: LocalSandbox) -> None:
    """Print how to reach the local AWS from another shell, then serve until Ctrl-C."""
    try:
        app.err.print("\nThe local AWS is still running. In another shell:")
        # With -o json, stdout holds only the JSON document (which has the same variables).
        console = app.err if app.output is OutputFormat.json else app.out
        export = " ".join(f"{k}={v}" for k, v in _environment(box).items())
        console.print(f"export {export}", soft_wrap=True, markup=False, highlight=False)
        console.file.flush()
        app.err.print(f"  omics-edp batches list --stack {names.edp_stack}\n"
                      f"  omics-edp dlq list --stack {names.processor_stack}\n"
                      f"  omics-edp doctor --stack {names.processor_stack}\n"
                      "Press Ctrl-C to stop.")
        threading.Event().wait()
    except KeyboardInterrupt:
        app.err.print("Stopped.")


def register(app: typer.Typer) -> None:
    app.command("demo", cls=Command)(demo)
