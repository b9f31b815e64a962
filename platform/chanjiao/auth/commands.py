"""``flask create-user``: association staff and admin accounts."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..errors import DomainError
from ..uow import run
from . import services


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["staff", "admin"]), default="staff", show_default=True)
@click.password_option()
def create_user(email: str, name: str, role: str, password: str) -> None:
    """Create an association staff or admin account."""
    try:
        user = run(services.create_user, email, name, password, role)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"created {user.role} {user.email} (id {user.id})")


commands = [create_user]
