"""Alembic migrations build the same schema as the models, on SQLite and PostgreSQL."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from chanjiao import create_app
from chanjiao.extensions import db

from .conftest import fresh_database


def test_migrations_upgrade_empty_database_to_head_matching_models(tmp_path):
    with fresh_database(tmp_path) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
                tables = set(sa.inspect(conn).get_table_names())
            assert diff == [], f"models and migrations differ: {diff}"
            assert {"organisation", "user", "demand", "programme", "skill"} <= tables
            downgrade(revision="base")
            with db.engine.connect() as conn:
                assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
            db.engine.dispose()
