"""``flask backup …``: one archive of the database and the instance files, and its restore."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from . import services

backup_group = AppGroup("backup", help="Backups: the database and the instance files in one archive.")


def _summary(manifest: dict) -> str:
    database = manifest["database"]
    rows = sum(database["tables"].values())
    return _(
        "%(created)s，%(dialect)s，数据库版本 %(revision)s，%(tables)s 张表共 %(rows)s 行，%(files)s 个实例文件",
        created=manifest["created_at"], dialect=database["dialect"],
        revision=database.get("alembic_revision") or "-", tables=len(database["tables"]), rows=rows,
        files=sum(1 for m in manifest["files"] if m.startswith(services.INSTANCE_PREFIX)),
    )


@backup_group.command("create")
@click.option(
    "--output", type=click.Path(path_type=Path), default=None,
    help="Folder for the archive (default <instance>/backups), or a file name ending in .tar.gz.",
)
def create_command(output: Path | None) -> None:
    """Back up the database and the instance files into one .tar.gz archive (safe while the app runs)."""
    try:
        result = services.create_backup(output)
    except services.BackupError as error:
        raise click.ClickException(error.message) from None
    except OSError as error:  # a full disk, a folder that is a file, no permission
        raise click.ClickException(_("无法写入备份：%(error)s", error=error)) from None
    click.echo(_("备份已写入 %(path)s", path=result.path))
    click.echo(_summary(result.manifest))


@backup_group.command("verify")
@click.argument("archive", type=click.Path(path_type=Path))
def verify_command(archive: Path) -> None:
    """Check an archive's manifest and checksums without restoring anything."""
    try:
        with services.verified_archive(archive) as (manifest, _staging):
            pass
    except services.BackupError as error:
        raise click.ClickException(error.message) from None
    click.echo(_("备份完好：%(summary)s", summary=_summary(manifest)))


@backup_group.command("restore")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite a database or instance folder that already holds data.")
def restore_command(archive: Path, force: bool) -> None:
    """Restore an archive into this instance's database (DATABASE_URL) and instance folder.

    Stop the app and the job worker first.
    """
    try:
        result = services.restore_backup(archive, force=force)
    except services.BackupError as error:
        raise click.ClickException(error.message) from None
    except OSError as error:
        raise click.ClickException(_("恢复中断：%(error)s", error=error)) from None
    click.echo(_("已恢复：%(summary)s", summary=_summary(result.manifest)))
    click.echo(_("行数与备份清单一致。"))
    if not result.at_head:
        click.echo(_("备份的数据库版本早于本程序；请运行 flask --app wsgi db upgrade。"))
