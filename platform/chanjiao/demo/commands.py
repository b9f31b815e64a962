"""``flask seed-demo``: the original Chaoyang demo dataset."""
from __future__ import annotations

import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..choices import ORG_KINDS, label
from ..extensions import db
from ..models import Organisation, User
from ..uow import run


def database_is_empty() -> bool:
    """True when no organisation and no account exist yet (a fresh instance)."""
    return (
        db.session.scalar(select(Organisation.id).limit(1)) is None
        and db.session.scalar(select(User.id).limit(1)) is None
    )


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load the demo dataset (organisations, accounts, demands, programmes) into an empty database."""
    from .loader import ADMIN_EMAIL, DEMO_PASSWORD, STAFF_EMAIL, load_demo_data

    if not database_is_empty():
        raise click.ClickException(
            "数据库中已有机构或账号，未写入任何演示数据。seed-demo 只能在空数据库上运行。"
            " (The database is not empty; seed-demo only runs on an empty database.)"
        )
    started = time.perf_counter()
    summary = run(load_demo_data)  # all of the demo data, or none of it
    elapsed = time.perf_counter() - started

    for kind in ORG_KINDS:
        by_status = {s: n for (k, s), n in sorted(summary.organisations.items()) if k == kind}
        click.echo(f"{label(ORG_KINDS, kind)}: {sum(by_status.values())} {by_status}")
    click.echo(f"企业技能需求: {sum(summary.demands.values())} {dict(sorted(summary.demands.items()))}")
    click.echo(f"培训项目: {sum(summary.programmes.values())} {dict(sorted(summary.programmes.items()))}")
    click.echo(f"技能标签: {summary.skills}; 账号: {summary.users}; 已建索引: {summary.indexed}")
    click.echo(f"协会工作人员登录: {STAFF_EMAIL} / {DEMO_PASSWORD}")
    click.echo(f"系统管理员: {ADMIN_EMAIL}; 各机构管理员: org01@chanjiao.demo 起（密码相同）")
    click.echo(f"演示数据已载入，用时 {elapsed:.1f} 秒。")


commands = [seed_demo]
