"""Security headers on every kind of response, HTTPS on and off, trust in a reverse proxy, the
footer's filing numbers, pages free of inline script and style (the Content-Security-Policy
forbids them), and a real browser that runs the site's scripts under that policy."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, jsonify, request, url_for

from chanjiao import create_app
from chanjiao.extensions import db
from chanjiao.models import Pairing
from chanjiao.platforms import services as platforms
from chanjiao.platforms.services import PlatformInput

from . import e2e_support as e2e
from .conftest import CSRFClient, fresh_database

ICP = "京ICP备12345678号-1"
PSB = "京公网安备11010502000001号"

# A browser keeps every header below; the CSP is the one that makes inline code inert.
COMMON_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def assert_security_headers(response, referrer: str = "strict-origin-when-cross-origin") -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    csp = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    # Nothing may re-allow inline code for scripts or styles.
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "script-src" not in directives and "style-src" not in directives
    assert response.headers["Referrer-Policy"] == referrer


@pytest.fixture
def other_app(app: Flask, monkeypatch) -> Iterator[Callable[..., Flask]]:
    """``other_app(**config)``: a second app on the test database, built after the environment
    changes a test makes (``CHANJIAO_*`` variables), with ``config`` on top of the tests' own."""
    built: list[Flask] = []
    base = {key: app.config[key] for key in (
        "TESTING", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "SERVER_NAME", "MATCHING_ENCODER",
        "MATCHING_UNIT_VECTOR_DIR", "JOBS_MODE", "MAIL_BACKEND",
    )}

    def build(**config) -> Flask:
        new = create_app({**base, **config})
        new.test_client_class = CSRFClient

        # A probe of what the app believes about the request (after any proxy fix).
        @new.get("/_probe")
        def probe():
            return jsonify(remote_addr=request.remote_addr, scheme=request.scheme,
                           host=request.host, url=url_for("public.home", _external=True))

        built.append(new)
        return new

    yield build
    for each in built:
        with each.app_context():
            for engine in db.engines.values():
                engine.dispose()


# ----------------------------------------------------------------------------- headers


def test_html_pages_api_errors_and_static_files_carry_the_headers(client):
    for path, status, kind in [
        ("/", 200, "text/html"),
        ("/login", 200, "text/html"),
        ("/no-such-page", 404, "text/html"),
        ("/api/v1/openapi.json", 200, "application/json"),
        ("/api/v1/demands", 401, "application/json"),  # no token: a JSON error
        ("/static/css/site.css", 200, "text/css"),
        ("/static/js/register.js", 200, "text/javascript"),
    ]:
        with client.get(path) as response:  # a static file is streamed: close it
            assert response.status_code == status, path
            assert response.mimetype == kind, path
            assert_security_headers(response)
    # The method-not-allowed and CSRF error pages too.
    response = client.post("/login", csrf=False, data={"email": "a@example.cn", "password": "x"})
    assert response.status_code == 400
    assert_security_headers(response)
    response = client.put("/")
    assert response.status_code == 405
    assert_security_headers(response)


def test_one_time_link_pages_keep_no_referrer_and_no_store(client, make, login):
    organisation = make.org()
    admin = make.user(organisation)
    member = make.user(organisation, role="org_member")
    login(admin)
    shown = client.post("/org/invitations", data={"role": "org_member"})
    assert shown.status_code == 200
    assert_security_headers(shown, referrer="no-referrer")
    assert shown.headers["Cache-Control"] == "no-store"
    invite_path = re.search(r'value="https?://[^/"]+(/invite/[\w-]+)"', shown.get_data(as_text=True)).group(1)
    issued = client.post(f"/org/members/{member.id}/reset")
    assert issued.status_code == 200
    assert_security_headers(issued, referrer="no-referrer")
    reset_path = re.search(r'value="https?://[^/"]+(/reset/[\w-]+)"', issued.get_data(as_text=True)).group(1)
    client.post("/logout")

    for path, status in [(invite_path, 200), (reset_path, 200), ("/invite/unknown-code", 404),
                         ("/reset/unknown-token", 404)]:
        response = client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response, referrer="no-referrer")
        assert response.headers["Cache-Control"] == "no-store"
    # An ordinary page in the same session is back to the site-wide policy.
    assert client.get("/").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# ----------------------------------------------------------------------------- HTTPS


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_https_off_by_default_plain_http_works(client, app):
    assert app.config["HTTPS"] is False
    response = client.get("/")  # the page's CSRF token opens a session
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    cookie = _session_cookie(response)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["REMEMBER_COOKIE_SECURE"] is False


def test_https_on_redirects_and_sets_secure_cookies_and_hsts(other_app, monkeypatch):
    monkeypatch.setenv("CHANJIAO_HTTPS", "true")  # parsed as JSON by from_prefixed_env
    secure = other_app()
    assert secure.config["HTTPS"] is True
    client = secure.test_client()

    response = client.get("/demands?page=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://chanjiao.test/demands?page=2"
    assert "Set-Cookie" not in response.headers

    response = client.get("/", base_url="https://chanjiao.test")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31556926")
    cookie = _session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert secure.config["REMEMBER_COOKIE_SECURE"] is True
    assert_security_headers(response)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CHANJIAO_HTTPS", "maybe", "CHANJIAO_HTTPS='maybe': expected true or false"),
    ("CHANJIAO_TRUSTED_PROXIES", "-1", "CHANJIAO_TRUSTED_PROXIES=-1: expected a whole number"),
    ("CHANJIAO_TRUSTED_PROXIES", "nginx", "CHANJIAO_TRUSTED_PROXIES='nginx': expected a whole number"),
    ("CHANJIAO_PSB_BEIAN", "京公网安备号", "CHANJIAO_PSB_BEIAN='京公网安备号' has no record number"),
])
def test_bad_settings_stop_the_app_with_a_clear_message(other_app, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        other_app()


# ----------------------------------------------------------------------------- proxies


def test_no_trusted_proxy_ignores_forwarded_headers(other_app):
    client = other_app().test_client()
    seen = client.get("/_probe", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
    }).get_json()
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == "chanjiao.test"


def test_one_trusted_proxy_gives_the_client_address_scheme_and_host(other_app, monkeypatch):
    monkeypatch.setenv("CHANJIAO_TRUSTED_PROXIES", "1")
    behind_nginx = other_app(SERVER_NAME=None)
    assert behind_nginx.config["TRUSTED_PROXIES"] == 1
    client = behind_nginx.test_client()
    # nginx appends the address it saw: a value the client sent itself stays to its left.
    seen = client.get("/_probe", headers={
        "X-Forwarded-For": "10.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "chanjiao.example.cn", "X-Forwarded-Prefix": "/evil",
    }).get_json()
    assert seen["remote_addr"] == "203.0.113.9"
    assert seen["scheme"] == "https"
    assert seen["host"] == "chanjiao.example.cn"
    # The prefix is never trusted: URLs we build stay at the root.
    assert seen["url"] == "https://chanjiao.example.cn/"


def test_behind_a_tls_proxy_https_does_not_loop(other_app, monkeypatch):
    monkeypatch.setenv("CHANJIAO_HTTPS", "1")
    monkeypatch.setenv("CHANJIAO_TRUSTED_PROXIES", "1")
    client = other_app().test_client()
    response = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 200
    assert "Strict-Transport-Security" in response.headers
    assert "Secure" in _session_cookie(response)


# ----------------------------------------------------------------------------- footer


def _filings(html: str) -> str:
    match = re.search(r'<p class="filings">(.*?)</p>', html, re.S)
    return match.group(1) if match else ""


def test_footer_shows_nothing_without_filing_numbers(client):
    html = client.get("/").get_data(as_text=True)
    assert 'class="filings"' not in html
    assert "beian" not in html and "ICP" not in html


def test_footer_shows_the_icp_number_alone(other_app):
    html = other_app(ICP_BEIAN=ICP).test_client().get("/").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener">([^<]+)</a>', _filings(html))
    assert links == [("https://beian.miit.gov.cn/", ICP)]


def test_footer_shows_both_numbers_on_every_page(other_app, monkeypatch):
    monkeypatch.setenv("CHANJIAO_ICP_BEIAN", ICP)
    monkeypatch.setenv("CHANJIAO_PSB_BEIAN", PSB)
    client = other_app().test_client()
    for path in ("/", "/login", "/no-such-page"):
        links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener">([^<]+)</a>',
                           _filings(client.get(path).get_data(as_text=True)))
        assert links == [
            ("https://beian.miit.gov.cn/", ICP),
            ("https://beian.mps.gov.cn/#/query/webSearch?code=11010502000001", PSB),
        ], path


# ----------------------------------------------------------------------------- no inline code

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
FOREIGN_RESOURCE = re.compile(r"""<(script|link|img)[^>]*\s(src|href)="(?!/)[^"]*\"""", re.I)


def inline_code(html: str) -> list[str]:
    """Every fragment of ``html`` that the Content-Security-Policy would block."""
    found = []
    for pattern in (INLINE_SCRIPT, STYLE_ATTRIBUTE, EVENT_HANDLER, STYLE_ELEMENT, JAVASCRIPT_URL,
                    FOREIGN_RESOURCE):
        found += [match.group(0)[:120] for match in pattern.finditer(html)]
    return found


def test_the_inline_code_check_finds_what_it_must():
    assert inline_code('<p style="color: red">x</p>') == ['<p style=']
    assert inline_code("<script>alert(1)</script>") == ["<script>"]
    assert inline_code('<button type="button" onclick="go()">') == ['<button type="button" onclick=']
    assert inline_code('<a href="javascript:go()">') == ['href="javascript:']
    assert inline_code('<script src="https://cdn.example/x.js"></script>') == [
        '<script src="https://cdn.example/x.js"']
    assert inline_code('<script src="/static/js/skills.js" defer></script><p class="pre-line">'
                       "one=1 style=plain</p>") == []


@pytest.fixture
def world(make):
    """One of everything that has a page: organisations, people, postings, a pairing, a
    published platform, and the one-time links."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    member = make.user(enterprise, role="org_member")
    staff = make.user(None, role="staff")
    make.skill("养老护理")
    demand = make.demand(enterprise, description="第一行\n第二行")
    programme = make.programme(institution, description="第一行\n第二行")
    pairing = Pairing(demand_id=demand.id, programme_id=programme.id, status="accepted", score=0.8)
    db.session.add(pairing)
    db.session.commit()
    platform = platforms.create_platform(staff, PlatformInput(
        name="示范平台", description="校企共建\n第二行", goal_trainees=30, notice_days=0,
        pairing_ids=[pairing.id]))
    platforms.confirm_participation(hr, platform.id)
    platforms.confirm_participation(trainer, platform.id)
    platforms.start_notice(staff, platform.id)
    platforms.publish(staff, platform.id)
    db.session.commit()
    return {"enterprise": enterprise, "institution": institution, "hr": hr, "trainer": trainer,
            "member": member, "staff": staff, "demand": demand, "programme": programme,
            "platform": platform}


def _links(client: CSRFClient, login, world) -> dict[str, str]:
    """Values for URL arguments: the world's ids and a real invitation code and reset token."""
    login(world["hr"])
    shown = client.post("/org/invitations", data={"role": "org_member"}).get_data(as_text=True)
    code = re.search(r'/invite/([\w-]+)"', shown).group(1)
    issued = client.post(f"/org/members/{world['member'].id}/reset").get_data(as_text=True)
    token = re.search(r'/reset/([\w-]+)"', issued).group(1)
    client.post("/logout")
    return {
        "demand_id": str(world["demand"].id), "programme_id": str(world["programme"].id),
        "platform_id": str(world["platform"].id), "organisation_id": str(world["enterprise"].id),
        "user_id": str(world["member"].id), "code": code, "token": token, "reason": "register",
    }


def _page_paths(app: Flask, values: dict[str, str]) -> dict[str, str]:
    """A GET path for every endpoint of the app (whatever blueprint adds it), arguments filled
    from ``values`` (1 or "x" for arguments this test does not know)."""
    paths = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "_probe"):
            continue
        if rule.endpoint.startswith("api."):
            continue  # JSON only: covered by the header test
        arguments = {}
        for name in rule.arguments:
            converter = type(rule._converters[name]).__name__
            arguments[name] = values.get(name, "1" if converter == "IntegerConverter" else "x")
        with app.test_request_context():
            paths[rule.endpoint] = url_for(rule.endpoint, **arguments)
    return paths


# The pages each person must actually see (200), so that the sweep below cannot pass on
# redirects and refusals alone.
MUST_SEE = {
    "anonymous": {"public.home", "public.demands", "public.programmes", "public.demand_detail",
                  "public.programme_detail", "platforms.index", "platforms.detail", "auth.login",
                  "auth.register", "auth.accept_invitation", "auth.reset_password",
                  "auth.forgot_password", "auth.email_sent"},
    "hr": {"dashboard.index", "postings.my_demands", "postings.demand_new", "postings.demand_edit",
           "postings.demand_preview", "matches.demand_matches", "matches.interests", "orgs.members",
           "orgs.profile", "inbox.index", "curation.org_platforms", "tokens.index", "public.home"},
    "trainer": {"dashboard.index", "postings.my_programmes", "postings.programme_new",
                "postings.programme_edit", "postings.programme_preview",
                "matches.programme_opportunities", "curation.org_platforms"},
    # (Staff's dashboard is the staff index; a published platform is no longer editable.)
    "staff": {"staff.index", "staff.organisations", "staff.organisation",
              "staff.users", "curation.queue", "curation.platform_list", "curation.platform_detail",
              "curation.platform_new", "postings.skills_manage",
              "matches.staff_demand_matches", "matches.staff_programme_opportunities", "jobs.index"},
}


def test_no_page_has_inline_script_style_or_handlers(app, client, login, world):
    values = _links(client, login, world)
    paths = _page_paths(app, values)
    assert {endpoint for seen in MUST_SEE.values() for endpoint in seen} <= paths.keys()
    people = {"anonymous": None, "hr": world["hr"], "trainer": world["trainer"], "staff": world["staff"]}
    for who, user in people.items():
        if user is not None:
            login(user)  # staff through their second factor too
        seen = set()
        for endpoint, path in sorted(paths.items()):
            response = client.get(path)
            if response.mimetype != "text/html":
                continue
            html = response.get_data(as_text=True)
            assert inline_code(html) == [], (who, path, inline_code(html))
            assert_security_headers(response, referrer=response.headers["Referrer-Policy"])
            if response.status_code == 200:
                seen.add(endpoint)
        assert MUST_SEE[who] <= seen, (who, sorted(MUST_SEE[who] - seen))
        client.post("/logout")
    # The English pages too (other strings, same templates).
    with app.test_request_context():
        switch = url_for("public.set_language", code="en")
    assert client.post(switch, data={"next": "/"}).status_code == 302
    for path in (paths["public.home"], paths["auth.register"], paths["public.demand_detail"]):
        html = client.get(path).get_data(as_text=True)
        assert 'lang="en"' in html and inline_code(html) == [], path


# ----------------------------------------------------------------------------- in a browser

CSP_WORDS = "Content Security Policy"


@pytest.fixture
def live(tmp_path):
    """gunicorn on a fresh, migrated database with no data: enough for the public pages."""
    e2e.require_chromium()
    with fresh_database(tmp_path) as database:
        env = e2e.server_env(tmp_path / "instance", database)
        env["CHANJIAO_MATCHING_ENCODER"] = "lexical"  # no page here matches anything
        env["CHANJIAO_ICP_BEIAN"] = ICP
        e2e._run([e2e.sys.executable, "-m", "flask", "--app", "wsgi", "init-instance", "--no-seed"], env)
        with e2e.live_server(env, tmp_path) as server:
            yield server


@pytest.mark.slow
@pytest.mark.browser
def test_scripts_run_under_the_policy_and_nothing_is_blocked(live):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=e2e.CHROMIUM, args=e2e.CHROMIUM_ARGS)
        try:
            context = chromium.new_context(base_url=live.url, locale="zh-CN")
            context.set_default_timeout(15_000)
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))

            for path in ("/", "/demands", "/programmes", "/platforms/", "/login", "/no-such-page"):
                page.goto(path)
                expect(page.locator("footer .filings a")).to_have_text(ICP)
            assert [text for text in console if CSP_WORDS in text] == [], console

            # register.js (formerly inline) shows only the field of the chosen kind.
            page.goto("/register")
            industry = page.locator(".field", has=page.locator("#industry"))
            category = page.locator(".field", has=page.locator("#category"))
            page.get_by_role("radio", name="培训机构").check()
            expect(industry).to_be_hidden()
            expect(category).to_be_visible()
            page.get_by_role("radio", name="企业", exact=True).check()
            expect(industry).to_be_visible()
            expect(category).to_be_hidden()
            # The stylesheet applies (it is an external file, allowed by the policy).
            assert page.locator(".site-footer").evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
            assert [text for text in console if CSP_WORDS in text] == [], console

            # The policy is enforced and its violations reach the console: an injected inline
            # script does not run, and the browser says why.
            ran = page.evaluate("""() => {
                const script = document.createElement("script");
                script.textContent = "window.__inline_ran = true";
                document.body.appendChild(script);
                return window.__inline_ran === true;
            }""")
            assert ran is False
            page.wait_for_timeout(200)
            assert any(CSP_WORDS in text for text in console), console
        finally:
            chromium.close()

