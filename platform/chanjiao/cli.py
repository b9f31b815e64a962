"""Flask CLI commands: instance set-up, accounts, demo data."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask_migrate import upgrade

from .extensions import db


def register_cli(app: Flask) -> None:
    app.cli.add_command(init_instance)


@click.command("init-instance")
@click.option("--seed/--no-seed", default=True, help="Load the demo data into an empty database.")
def init_instance(seed: bool) -> None:
    """Create or upgrade the database to the latest migration (and seed an empty one)."""
    upgrade()
    click.echo(f"database at head: {db.engine.url.render_as_string(hide_password=True)}")
    if seed:
        from .models import Organisation

        if db.session.query(Organisation.id).first() is None:
            seed_cmd = current_app.cli.get_command(click.get_current_context(), "seed-demo")
            if seed_cmd is None:
                click.echo("no seed-demo command; database left empty")
            else:
                click.get_current_context().invoke(seed_cmd)
