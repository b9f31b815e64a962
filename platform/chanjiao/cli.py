"""Flask CLI commands: instance set-up, plus each domain's own commands."""
from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext
from flask import Flask
from flask_migrate import upgrade

from .extensions import db
from .curation.commands import suggest
from .demo.commands import database_is_empty, seed_demo


def register_cli(app: Flask) -> None:
    from .auth.commands import commands as auth_commands
    from .demo.commands import commands as demo_commands
    from .postings.commands import commands as postings_commands

    app.cli.add_command(init_instance)
    app.cli.add_command(matching_group)
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
            encoded += matchmaking.ensure_encoded(
                programmes=[p for p in batch if isinstance(p, Programme)],
                demands=[d for d in batch if isinstance(d, Demand)],
            )
            db.session.commit()
            bar.update(len(batch))
    click.echo(f"encoded {encoded} texts for {len(stale)} postings")


@matching_group.command("train")
@click.option("--force", is_flag=True, help="Switch to the new ranker even if it scores worse.")
def train(force: bool) -> None:
    """Retrain the ranker from staff decisions (at least 30), keeping the previous one."""
    from matching import InputError

    from . import matchmaking
    from .curation.services import labelled_pairs
    from .models.audit import record

    decisions = labelled_pairs()
    try:
        outcome = matchmaking.train_ranker(decisions, force=force)
    except InputError as error:
        db.session.rollback()
        raise click.ClickException(f"cannot retrain: {error}") from None
    record(None, "ranker.train", outcome.version, switched=outcome.switched)
    db.session.commit()
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


@matching_group.command("rollback")
def rollback() -> None:
    """Restore the ranker that the active trained ranker replaced."""
    from . import matchmaking
    from .models.audit import record

    try:
        deactivated, restored = matchmaking.rollback_ranker()
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    record(None, "ranker.rollback", deactivated)
    db.session.commit()
    target = f"version {restored.id}" if restored else "the ranker shipped with the engine"
    click.echo(f"ranker version {deactivated.id} deactivated; now using {target}")
