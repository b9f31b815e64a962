"""Flask commands for postings and the skill vocabulary."""
from __future__ import annotations

import importlib

import click
from flask.cli import with_appcontext

from ..skills import seed_vocabulary
from ..uow import run


@click.command("seed-skills")
@with_appcontext
def seed_skills() -> None:
    """Add the seeded skill vocabulary (tags and synonyms); safe to run again."""
    try:
        # Imported lazily: the vocabulary is large and only this command needs it.
        vocabulary = importlib.import_module("chanjiao.skill_vocabulary").VOCABULARY
    except (ImportError, AttributeError):
        raise click.ClickException("chanjiao.skill_vocabulary.VOCABULARY is not available") from None
    added = run(seed_vocabulary, vocabulary)
    click.echo(f"skill vocabulary: {added} tags added, {len(vocabulary)} in the vocabulary")


commands = [seed_skills]
