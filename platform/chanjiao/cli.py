"""Flask CLI commands: instance set-up, plus each domain's own commands."""
from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade

from .curation.commands import suggest
from .demo.commands import database_is_empty, seed_demo
from .extensions import db
from .uow import unit_of_work


def register_cli(app: Flask) -> None:
    from .auth.commands import commands as auth_commands
    from .backup.commands import backup_group
    from .demo.commands import commands as demo_commands
    from .jobs.commands import jobs_group
    from .postings.commands import commands as postings_commands

    app.cli.add_command(init_instance)
    app.cli.add_command(matching_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(backup_group)
    for command in (*auth_commands, *demo_commands, *postings_commands):
        app.cli.add_command(command)


@click.command("init-instance")
@with_appcontext
@click.option("--seed/--no-seed", default=True, help="Load the demo data into an empty database.")
@click.pass_context
def init_instance(ctx: click.Context, seed: bool) -> None:
    """Create or upgrade the database to the latest migration; seed an empty one."""
    upgrade()
    click.echo(f"database at head: {db.engine.url.render_as_string(hide_password=True)}")
    if seed and database_is_empty():
        ctx.invoke(seed_demo)
    # Resumable: postings whose vectors are all stored are skipped, so this is quick after
    # the first run.
    ctx.invoke(reindex)


# AppGroup runs each subcommand inside the app context, as `flask` and the test runner both need.
matching_group = AppGroup("matching", help="Matching engine: encode postings, retrain and roll back the ranker.")
matching_group.add_command(suggest)


@matching_group.command("reindex")
@click.option("--batch-size", default=20, show_default=True, type=click.IntRange(1, 1000))
def reindex(batch_size: int) -> None:
    """Encode every posting whose texts have no stored vector yet.

    Each batch is committed, so an interrupted run keeps its work and the next run resumes.
    """
    # Deliberately one unit of work per batch, not one per command: encoding is slow, and
    # what is stored is only ever a cache of vectors, so a half-done run is a valid state.
    from sqlalchemy import select

    from . import matchmaking
    from .models import Demand, Programme

    if matchmaking.encoder() is None:
        click.echo("lexical matching: nothing to encode")
        return
    postings = [
        *db.session.scalars(select(Programme).where(Programme.status != "archived").order_by(Programme.id)),
        *db.session.scalars(select(Demand).where(Demand.status != "archived").order_by(Demand.id)),
    ]
    stale = matchmaking.stale_postings(postings)
    if not stale:
        click.echo(f"all {len(postings)} postings are encoded ({matchmaking.encoder_name()})")
        return
    encoded = 0
    with click.progressbar(length=len(stale), label=f"encoding {len(stale)} postings") as bar:
        for start in range(0, len(stale), batch_size):
            batch = stale[start : start + batch_size]
            with unit_of_work():
                encoded += matchmaking.ensure_encoded(
                    programmes=[p for p in batch if isinstance(p, Programme)],
                    demands=[d for d in batch if isinstance(d, Demand)],
                )
            bar.update(len(batch))
    click.echo(f"encoded {encoded} texts for {len(stale)} postings")


@matching_group.command("train")
@click.option(
    "--force", is_flag=True,
    help="Switch to the new ranker, and to a refitted calibrator, even if they score worse.",
)
def train(force: bool) -> None:
    """Retrain the ranker from staff decisions (at least 30), and refit the probability
    calibrator (from at least 200, with 50 accepted and 50 rejected), keeping the previous ones.

    The calibrator is fitted on three quarters of the decisions (grouped by demand, fixed
    seed) and kept only if its expected calibration error (ECE) on the other quarter is lower
    than the one in use. Decided pairs are a biased sample: staff only decide pairs the engine
    suggested or both parties asked for, so the refit learns from the top of the lists.
    Every stored version carries the calibrator used with it; `rollback` restores both.
    """
    from matching import InputError

    from . import matchmaking
    from .curation.services import labelled_pairs
    from .models.audit import record

    try:
        with unit_of_work():
            outcome = matchmaking.train_ranker(labelled_pairs(), force=force)
            calibration = outcome.calibration
            record(
                None, "ranker.train", outcome.version, switched=outcome.switched,
                calibrator_refitted=calibration.refitted,
                calibrator_switched=outcome.calibrator_switched,
                ece_before=calibration.ece_before, ece_after=calibration.ece_after,
            )
            if outcome.calibration_version is not None:
                record(
                    None, "ranker.recalibrate", outcome.calibration_version,
                    ece_before=calibration.ece_before, ece_after=calibration.ece_after,
                )
    except InputError as error:
        raise click.ClickException(f"cannot retrain: {error}") from None
    click.echo(
        f"{outcome.decisions} decisions on {outcome.demands} demands, "
        f"{outcome.folds}-fold cross-validation grouped by demand"
    )
    for name in ("ndcg@10", "auc"):
        click.echo(f"  {name:8} before {outcome.before[name]:.4f}  after {outcome.after[name]:.4f}")
    if outcome.switched:
        note = " (forced)" if outcome.version.forced else ""
        click.echo(f"ranker version {outcome.version.id} is now active{note}")
    else:
        click.echo(
            f"ranker version {outcome.version.id} scores worse and was kept inactive; "
            "use --force to switch anyway"
        )
    _echo_calibration(outcome)
    if outcome.switched or outcome.calibrator_switched:
        click.echo("run `flask matching suggest` to refresh the suggested pairings with the new model")


def _echo_calibration(outcome: Any) -> None:  # a matchmaking.TrainingOutcome
    calibration = outcome.calibration
    live = outcome.calibration_version or (outcome.version if outcome.switched else None)
    where = f"ranker version {live.id}" if live is not None else "the ranker in use"
    if not calibration.refitted:
        click.echo(f"calibrator not refitted: {calibration.reason}; the calibrator in use stays")
        return
    click.echo(
        f"calibrator refitted on {calibration.fitted} decisions; {calibration.held_out} decisions "
        f"of {calibration.held_out_demands} demands held back"
    )
    click.echo(
        f"  {'ece':8} before {calibration.ece_before:.4f}  after {calibration.ece_after:.4f}"
        "  (held-back decisions, scores of the ranker that is active now)"
    )
    if outcome.calibrator_switched:
        note = " (forced)" if not calibration.improved else ""
        click.echo(f"the new calibrator is now in use with {where}{note}")
    else:
        click.echo(
            f"the new calibrator is not better on the held-back decisions; the calibrator in use "
            f"stays with {where}; use --force to switch anyway"
        )


@matching_group.command("rollback")
def rollback() -> None:
    """Restore the ranker that the active trained ranker replaced, with its calibrator."""
    from . import matchmaking
    from .models.audit import record

    try:
        with unit_of_work():
            deactivated, restored = matchmaking.rollback_ranker()
            record(None, "ranker.rollback", deactivated)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if restored is None:
        target = "the ranker shipped with the engine and its calibrator"
    elif "calibrator.json" in restored.files:
        target = f"version {restored.id} (its ranker and calibrator)"
    else:
        target = f"version {restored.id} (its ranker, with the calibrator shipped with the engine)"
    click.echo(f"ranker version {deactivated.id} deactivated; now using {target}")
