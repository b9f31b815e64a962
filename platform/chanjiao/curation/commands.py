"""`flask matching suggest`: store the engine's top programmes per open demand as pairings."""
from __future__ import annotations

import click

from ..uow import run


@click.command("suggest")
@click.option("--per-demand", default=5, show_default=True, type=click.IntRange(1, 50))
def suggest(per_demand: int) -> None:
    """Refresh suggested pairings for every open demand (staff decisions are never changed).

    Only programmes offered as matches (calibrated probability at least tau) are suggested;
    suggestions the engine no longer offers are withdrawn.
    """
    from .services import refresh_all

    counts = run(refresh_all, per_demand)  # every demand's suggestions, or none
    click.echo(
        f"{counts.demands} open demands: {counts.inserted} pairings suggested, "
        f"{counts.updated} updated, {counts.kept} decided by staff left unchanged, "
        f"{counts.withdrawn} no longer offered withdrawn; "
        f"{counts.below} top candidates below the match threshold not suggested"
    )
