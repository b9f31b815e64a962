"""Chanjiao (产教): the industry–education matching platform. ``create_app`` builds the app."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, render_template, session
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import REPO_ROOT, DefaultConfig, database_url, ensure_secret_key, instance_path
from .extensions import babel, csrf, db, login_manager, migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the Flask application."""
    app = Flask(
        __name__,
        instance_path=instance_path(),
        instance_relative_config=True,
        template_folder=str(REPO_ROOT / "templates"),
    )
    app.config.from_object(DefaultConfig)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.instance_path)
    app.config["MATCHING_UNIT_VECTOR_DIR"] = str(Path(app.instance_path) / "unit-vectors")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    app.config["MAIL_FILE_PATH"] = str(Path(app.instance_path) / "mail")  # MAIL_BACKEND "file"
    app.config.from_prefixed_env("CHANJIAO")
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = ensure_secret_key(app.instance_path)

    _init_extensions(app)
    _register_blueprints(app)
    _register_error_handlers(app)
    _register_template_helpers(app)

    from .cli import register_cli

    register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from . import catalogue_jobs, models  # noqa: F401  (tables on db.metadata; the catalogue's flush hooks)
    from .models import User

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page says why already
    login_manager.session_protection = "strong"
    babel.init_app(app, locale_selector=_select_locale)
    # Not imported by its own name here: chanjiao.mail is the module that sends e-mail.
    from .extensions import mail as mailman

    mailman.init_app(app)
    from . import throttles

    throttles.init_app(app)
    from . import web_security

    web_security.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def _select_locale() -> str:
    # Chinese first: English only when the visitor chose it. CLI commands speak Chinese.
    if not has_request_context():
        return "zh_CN"
    lang = session.get("lang")
    return lang if lang in ("zh_CN", "en") else "zh_CN"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # WAL lets gunicorn workers read while one writes; SQLite ignores foreign keys unless asked.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def _register_blueprints(app: Flask) -> None:
    from .alerts.views import bp as alerts_bp
    from .api.views import bp as api_bp
    from .auth.two_factor_views import bp as two_factor_bp
    from .auth.views import bp as auth_bp
    from .curation.views import bp as curation_bp
    from .dashboard.views import bp as dashboard_bp
    from .inbox.views import bp as inbox_bp
    from .jobs.views import bp as jobs_bp
    from .matches.views import bp as matches_bp
    from .orgs.views import bp as orgs_bp
    from .platforms.views import bp as platforms_bp
    from .postings.views import bp as postings_bp
    from .public.views import bp as public_bp
    from .staff.views import bp as staff_bp
    from .tokens.views import bp as tokens_bp

    for bp in (
        public_bp, auth_bp, two_factor_bp, dashboard_bp, orgs_bp, postings_bp, staff_bp,
        matches_bp, alerts_bp, inbox_bp, curation_bp, platforms_bp, tokens_bp, jobs_bp, api_bp,
    ):
        app.register_blueprint(bp)


def _register_error_handlers(app: Flask) -> None:
    def render_error(code: int, title: str, message: str):
        return render_template("errors/error.html", code=code, title=title, message=message), code

    from flask_babel import gettext as _

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(400, _("请求已失效"), _("表单安全校验失败，请刷新页面后重新提交。"))

    @app.errorhandler(400)
    def bad_request(error):
        return render_error(400, _("请求有误"), _("请求内容不完整或格式不正确。"))

    @app.errorhandler(403)
    def forbidden(error):
        return render_error(403, _("无权访问"), _("您没有执行此操作的权限。"))

    @app.errorhandler(404)
    def not_found(error):
        return render_error(404, _("页面不存在"), _("您访问的页面不存在或已被移除。"))

    @app.errorhandler(405)
    def method_not_allowed(error):
        return render_error(405, _("不支持的请求方式"), _("该地址不支持此请求方式。"))

    @app.errorhandler(413)
    def too_large(error):
        return render_error(413, _("内容过大"), _("提交的内容超过了允许的大小。"))

    from . import availability

    availability.register(app)  # database outages: 503 pages and JSON, not this 500

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()
        return render_error(500, _("服务器错误"), _("服务暂时出现问题，请稍后再试。"))


def _register_template_helpers(app: Flask) -> None:
    from . import choices

    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        from flask_login import current_user

        from .inbox.services import unread_count

        lang = _select_locale()
        return {
            "unread_count": unread_count(current_user) if current_user.is_authenticated else 0,
            "choices": choices,
            "label": choices.label,
            "html_lang": "zh-CN" if lang == "zh_CN" else "en",
            "current_lang": lang,
        }

    # Lets base.html link only to pages whose blueprint is registered.
    app.jinja_env.globals["endpoint_exists"] = lambda endpoint: endpoint in app.view_functions

    # Several form errors (each a full sentence) in one line: "；" between Chinese sentences, a
    # space between English ones (each already ends in a full stop).
    app.jinja_env.filters["join_sentences"] = lambda sentences: (
        "；" if _select_locale() == "zh_CN" else " ").join(str(s) for s in sentences)
