"""App factory, configuration and cross-cutting behaviour."""
from __future__ import annotations

from chanjiao import create_app
from chanjiao.config import database_url, ensure_secret_key


def test_home_page_is_chinese(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "产教融合对接平台" in html


def test_language_switch_to_english_and_back(client):
    response = client.post("/lang/en", data={"next": "/"})
    assert response.status_code == 302
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    client.post("/lang/zh_CN", data={"next": "/"})
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)


def test_language_switch_refuses_offsite_redirect(client):
    response = client.post("/lang/en", data={"next": "//evil.example/"})
    assert response.headers["Location"].endswith("/")
    assert "evil" not in response.headers["Location"]


def test_post_without_csrf_token_is_refused(client):
    response = client.post("/lang/en", data={"next": "/"}, csrf=False)
    assert response.status_code == 400
    assert "表单安全校验失败" in response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)


def test_unknown_page_is_a_chinese_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)


def test_session_cookie_flags(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_secret_key_is_generated_once(tmp_path):
    first = ensure_secret_key(tmp_path)
    assert len(first) == 64
    assert ensure_secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_create_app_reads_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CHANJIAO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CHANJIAO_PAGE_SIZE", "7")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["PAGE_SIZE"] == 7
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'chanjiao.db'}"
    assert app.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert app.config["MATCHING_UNIT_VECTOR_DIR"] == str(tmp_path / "unit-vectors")


def test_unit_vector_folder_can_be_configured(monkeypatch, tmp_path):
    monkeypatch.setenv("CHANJIAO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CHANJIAO_MATCHING_UNIT_VECTOR_DIR", str(tmp_path / "elsewhere"))
    assert create_app({"SECRET_KEY": "x"}).config["MATCHING_UNIT_VECTOR_DIR"] == str(tmp_path / "elsewhere")


def test_database_url_uses_psycopg3(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
    assert database_url(tmp_path) == "postgresql+psycopg://root@127.0.0.1:5432/test"
