"""Flask CLI commands: instance set-up, plus each domain's own commands."""
from __future__ import annotations

import click
from flask import Flask
from flask_migrate import upgrade

from .extensions import db


def register_cli(app: Flask) -> None:
    from .auth.commands import commands as auth_commands
    from .demo.commands import commands as demo_commands
    from .postings.commands import commands as postings_commands

    app.cli.add_command(init_instance)
    for command in (*auth_commands, *demo_commands, *postings_commands):
        app.cli.add_command(command)


@click.command("init-instance")
@click.option("--seed/--no-seed", default=True, help="Load the demo data into an empty database.")
@click.pass_context
def init_instance(ctx: click.Context, seed: bool) -> None:
    """Create or upgrade the database to the latest migration; seed an empty one."""
    from .demo.commands import database_is_empty, seed_demo

    upgrade()
    click.echo(f"database at head: {db.engine.url.render_as_string(hide_password=True)}")
    if seed and database_is_empty():
        ctx.invoke(seed_demo)
