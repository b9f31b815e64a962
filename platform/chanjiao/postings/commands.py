"""Flask commands for postings and the skill vocabulary."""
from __future__ import annotations

commands: list = []
