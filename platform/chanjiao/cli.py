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
