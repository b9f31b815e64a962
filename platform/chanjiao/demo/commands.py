"""``flask seed-demo``: the original Chaoyang demo dataset."""
from __future__ import annotations

import click
from sqlalchemy import select

from ..extensions import db
from ..models import Organisation


def database_is_empty() -> bool:
    """True when no organisation exists yet (a fresh instance)."""
    return db.session.scalar(select(Organisation.id).limit(1)) is None


@click.command("seed-demo")
def seed_demo() -> None:
    """Load the demo dataset (organisations, accounts, demands, programmes)."""
    raise click.ClickException("seed-demo is not implemented yet")


commands = [seed_demo]
