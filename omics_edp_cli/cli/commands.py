"""The command and group classes every `omics-edp` command is built with: help as people read it.

Typer shows a `<bool>` type beside every flag and wraps arguments in braces on the usage line
(`deploy [OPTIONS] {kind}`); here flags show no type and arguments read `KIND` / `[KIND]`.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


class _PlainHelp:
    """Mixed into a Typer command or group class (before it, so these methods win)."""

    options_metavar: str | None

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if param.metavar is not None:
                continue
            if param.param_type_name == "option" and getattr(param, "is_flag", False):
                param.metavar = ""  # a flag takes no value: no type to show
            elif param.param_type_name == "argument":
                param.metavar = str(param.name).upper()
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            piece = str(param.metavar) if param.required else f"[{param.metavar}]"
            pieces.append(piece + ("..." if param.nargs != 1 else ""))
        return pieces


class Command(_PlainHelp, TyperCommand):
    """Every leaf command: `app.command("name", cls=Command)`."""


class Group(_PlainHelp, TyperGroup):
    """Every command group: `typer.Typer(cls=Group)`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*super().collect_usage_pieces(ctx), str(self.subcommand_metavar)]
