"""English is a real second language: every UI string has a translation, the catalogue is in
step with the source, and pages and form errors come out in English once a visitor chooses it.

Message ids are the Chinese text; the English catalogue is
platform/chanjiao/translations/en/LC_MESSAGES/messages.po. After adding or changing a string,
run ``scripts/update_translations.sh`` and translate what it reports.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from chanjiao import TRANSLATIONS_DIR, choices
from chanjiao.extensions import babel

REPO_ROOT = Path(__file__).resolve().parents[1]
UPDATE_SCRIPT = REPO_ROOT / "scripts" / "update_translations.sh"
FIX = "scripts/update_translations.sh, then translate the listed ids in " + str(
    (TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po").relative_to(REPO_ROOT)
)
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")


def _read_catalog(path: Path, locale: str | None = None):
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def _extraction_keywords() -> dict:
    """Babel's default keywords plus the ``-k`` flags of the update script, so that this test
    extracts exactly what the script does."""
    from babel.messages.frontend import parse_keywords

    words = shlex.split(UPDATE_SCRIPT.read_text(encoding="utf-8"), comments=True)
    extra = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-k"]
    assert "_l" in extra and "lazy_gettext" in extra, extra
    return {**DEFAULT_KEYWORDS, **parse_keywords(extra)}


def _method_map():
    from babel.messages import frontend

    parse = getattr(frontend, "parse_mapping_cfg", None)
    with (REPO_ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        if parse is not None:
            return parse(cfg, filename="babel.cfg")
        return frontend.parse_mapping(cfg)  # Babel < 2.14


@pytest.fixture(scope="module")
def source_ids() -> dict[tuple[str, str | None], str]:
    """Every message id the source marks for translation -> where it first occurs."""
    method_map, options_map = _method_map()
    found: dict[tuple[str, str | None], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(REPO_ROOT), method_map, options_map, keywords=_extraction_keywords()
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault((msgid, context), f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def en_catalog():
    return _read_catalog(TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po", locale="en")


def _messages(catalog):
    return [message for message in catalog if message.id]


# --- the catalogue ------------------------------------------------------------------------------

def test_extraction_finds_lazy_and_template_strings(source_ids):
    ids = {msgid for msgid, _context in source_ids}
    assert "企业" in ids  # _l(...) in choices.py
    assert "请输入电子邮箱。" in ids  # _l(...) in a form's validator
    assert "欢迎回来，%(name)s。" in ids  # _(...) in a view
    assert "产教融合示范平台" in ids  # {{ _("...") }} in base.html
    assert len(ids) > 400


def test_every_source_string_has_an_english_translation(source_ids, en_catalog):
    problems = []
    for (msgid, context), where in sorted(source_ids.items(), key=lambda item: item[1]):
        message = en_catalog.get(msgid, context=context)
        strings = message.string if message is not None else None
        if message is None:
            problems.append(f"  {where}: {msgid!r} (not in the catalogue)")
        elif message.fuzzy:
            problems.append(f"  {where}: {msgid!r} (fuzzy)")
        elif not (all(strings) if isinstance(strings, tuple) else strings and strings.strip()):
            problems.append(f"  {where}: {msgid!r} (empty translation)")
    assert not problems, (
        f"{len(problems)} UI string(s) lack an English translation:\n"
        + "\n".join(problems)
        + f"\nFix: run {FIX}."
    )


def test_committed_template_is_up_to_date(source_ids):
    pot = _read_catalog(TRANSLATIONS_DIR / "messages.pot")
    in_pot = {(message.id if isinstance(message.id, str) else message.id[0], message.context)
              for message in _messages(pot)}
    missing = sorted(msgid for msgid, _c in set(source_ids) - in_pot)
    stale = sorted(msgid for msgid, _c in in_pot - set(source_ids))
    assert not missing and not stale, (
        f"messages.pot is out of date. Missing: {missing}. No longer in the source: {stale}. "
        f"Fix: run {FIX}."
    )


def test_catalogue_has_no_fuzzy_or_obsolete_entries(en_catalog):
    fuzzy = [message.id for message in _messages(en_catalog) if message.fuzzy]
    assert not fuzzy, f"fuzzy entries are not used at run time; translate and unflag: {fuzzy}"
    assert not en_catalog.obsolete, f"obsolete entries: {list(en_catalog.obsolete)}; run {FIX}"


def test_placeholders_match(en_catalog):
    problems = []
    for message in _messages(en_catalog):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = sorted(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            if sorted(PLACEHOLDER.findall(string)) != expected:
                problems.append(f"  {ids[0]!r} -> {string!r}")
    assert not problems, "placeholders differ between msgid and msgstr:\n" + "\n".join(problems)
    # Babel's own checks (python-format flags, plural forms) agree.
    errors = [(message.id, [str(e) for e in errs]) for message, errs in en_catalog.check()]
    assert not errors, errors


def test_english_strings_keep_to_british_spelling(en_catalog):
    american = re.compile(r"\b(program|programs|organization\w*|center|license)\b", re.IGNORECASE)
    hits = [message.string for message in _messages(en_catalog) if american.search(message.string)]
    assert not hits, hits


def test_flask_babel_offers_english_from_the_translations_directory(app):
    assert (TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.mo").exists()
    assert "en" in {str(locale) for locale in babel.list_translations()}


# --- pages in English ---------------------------------------------------------------------------

# The language switch, the logo mark (the product's name) and Chaoyang's streets and areas
# (proper names, never passed through gettext).
ALLOWED_CHINESE = {"中文", '<span class="brand-mark" aria-hidden="true">产教</span>',
                   *choices.CHAOYANG_AREAS}


def _english(client) -> None:
    response = client.post("/lang/en", data={"next": "/"})
    assert response.status_code == 302


def _stray_chinese(html: str, data: tuple[str, ...] = ()) -> list[str]:
    """Chinese text left in ``html`` once proper names and user data are removed."""
    for text in sorted({*ALLOWED_CHINESE, *data}, key=len, reverse=True):
        html = html.replace(text, "")
    # Full-width punctuation in templates is typography, not untranslated text.
    return [hit for hit in CJK.findall(html) if re.search(r"[\u3400-\u9fff]", hit)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["Matching enterprises’ skill demands with the right training programmes",
               "Open skill demands", "Industry–education demonstration platform"]),
        ("/demands", ["<h1>Skill demands</h1>", "Search and filter skill demands",
                      "All industries", "0 skill demands"]),
        ("/programmes", ["<h1>Training programmes</h1>", "All certificate types",
                         "Subsidised training only", "0 training programmes"]),
        ("/login", ["<h1>Sign in</h1>", "Email", "Password"]),
        ("/register", ["Register your organisation", "Unified social credit code",
                       "Organisation type", "Training institution", "Street / area",
                       "Finance and business services (CBD)", "Vocational skills"]),
    ],
)
def test_public_pages_render_in_english(client, path, expected):
    _english(client)
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    for text in expected:
        assert text in html, text
    for chinese in ("企业需求", "培训项目", "登录", "注册", "产教融合示范平台"):
        assert chinese not in html, chinese
    assert not _stray_chinese(html), _stray_chinese(html)
    assert "English</button>" not in html and "中文</button>" in html


def test_vocabulary_labels_render_in_english_on_listings(client, make):
    enterprise = make.org("enterprise", name="朝阳测试企业", industry="internet")
    institution = make.org("institution", name="朝阳测试培训学校")
    demand = make.demand(enterprise)
    programme = make.programme(institution)
    data = (enterprise.name, institution.name, demand.title, demand.description,
            programme.title, programme.description, programme.certificate_name, demand.occupation,
            *demand.duties, *demand.requirements, *programme.outcomes,
            *(module["name"] for module in programme.modules))
    _english(client)
    pages = {
        "/demands": ["Level 4 / Intermediate worker", "In person"],
        "/programmes": ["Level 4 / Intermediate worker", "CNY 3800 per person", "Subsidised training"],
        f"/demands/{demand.id}": ["Level 4 / Intermediate worker", "Internet, software and IT (Wangjing)"],
        f"/programmes/{programme.id}": ["Vocational skill level certificate", "Module", "Hours"],
    }
    for path, expected in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        for text in expected:
            assert text in html, (path, text)
        assert not _stray_chinese(html, data), (path, _stray_chinese(html, data))


def test_chinese_stays_the_default_and_the_switch_goes_back(client):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "登录" in html and "Sign in" not in html
    _english(client)
    assert "Sign in" in client.get("/").get_data(as_text=True)
    client.post("/lang/zh_CN", data={"next": "/"})
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "登录" in html


# --- form errors in English ---------------------------------------------------------------------

def test_empty_login_form_errors_are_english(client):
    _english(client)
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter your email address." in html
    assert "Enter your password." in html
    assert "请输入电子邮箱" not in html and "请输入密码" not in html
    assert not _stray_chinese(html), _stray_chinese(html)


def test_wrong_password_message_is_english(client, make):
    user = make.user(make.org("enterprise"))
    _english(client)
    response = client.post("/login", data={"email": user.email, "password": "wrong-password-1"})
    assert response.status_code == 401
    assert "Incorrect email or password." in response.get_data(as_text=True)


def test_empty_registration_form_errors_are_english(client):
    _english(client)
    response = client.post("/register", data={})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for text in ("Enter your name.", "Choose a password.",
                 "Choose the organisation type: enterprise or training institution.",
                 "Enter the organisation’s name.", "Enter the unified social credit code."):
        assert text in html, text
    assert not _stray_chinese(html), _stray_chinese(html)


def test_error_pages_are_english(client):
    _english(client)
    response = client.get("/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page not found" in html and "页面不存在" not in html


def _member_pages_data(*objects) -> tuple[str, ...]:
    texts = []
    for obj in objects:
        for attr in ("name", "title", "description", "occupation", "certificate_name",
                     "address", "contact_name", "intro"):
            value = getattr(obj, attr, None)
            if isinstance(value, str):
                texts.append(value)
        for attr in ("duties", "requirements", "outcomes"):
            texts.extend(getattr(obj, attr, None) or [])
        texts.extend(module["name"] for module in getattr(obj, "modules", None) or [])
    return tuple(texts)


@pytest.mark.parametrize(
    ("who", "paths"),
    [
        ("enterprise", ["/dashboard/", "/my/demands", "/my/demands/new", "/org/members",
                        "/org/profile"]),
        ("institution", ["/dashboard/", "/my/programmes", "/my/programmes/new"]),
        ("staff", ["/staff/", "/staff/organisations", "/staff/organisations/{org}",
                   "/staff/users", "/skills/manage"]),
    ],
)
def test_signed_in_pages_render_in_english(client, make, login, who, paths):
    """Form labels, select options (lazy strings from choices.py) and page text, for members
    and the Association's staff."""
    organisation = make.org("institution" if who == "institution" else "enterprise")
    member = make.user(organisation)
    postings = (make.programme(organisation, status="draft") if who == "institution"
                else make.demand(organisation, status="draft"),)
    user = make.user(None, role="staff") if who == "staff" else member
    data = (member.name, user.name, *_member_pages_data(organisation, *postings))
    _english(client)
    login(user)
    for path in paths:
        response = client.get(path.format(org=organisation.id))
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert '<html lang="en">' in html and "Sign out" in html, path
        assert not _stray_chinese(html, data), (path, _stray_chinese(html, data))


def test_posting_form_errors_are_english(client, make, login):
    user = make.user(make.org("enterprise"))
    _english(client)
    login(user)
    response = client.post("/my/demands/new", data={})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter the job title." in html
    assert "Choose a skill level." in html
    assert f"Welcome back, {user.name}." in html  # the sign-in flash, in English too
    assert not _stray_chinese(html, (user.name,)), _stray_chinese(html, (user.name,))


# --- punctuation in English ---------------------------------------------------------------------

FULL_WIDTH_PUNCTUATION = re.compile(r"[：（）；，。]")


def _stray_full_width_punctuation(html: str, data: tuple[str, ...] = ()) -> list[str]:
    """Full-width punctuation the templates put around translated labels ("Level：L4",
    "Sign out（name）"), once user data and proper names are removed."""
    for text in sorted({*ALLOWED_CHINESE, *data}, key=len, reverse=True):
        html = html.replace(text, "")
    return [html[max(0, m.start() - 40):m.end() + 40] for m in FULL_WIDTH_PUNCTUATION.finditer(html)]


def test_english_pages_have_no_full_width_punctuation_around_labels(client, make, login):
    import datetime

    # ASCII user data wherever the templates show it next to a label; the rest is removed below.
    enterprise = make.org("enterprise", name="Acme Motors", industry="internet")
    institution = make.org("institution", name="Chaoyang Skills School")
    demand = make.demand(enterprise, title="EV technician", occupation="Mechanic",
                         location="Building 3", desired_start=datetime.date(2027, 3, 1),
                         budget_per_person=2000)
    programme = make.programme(institution, title="EV high-voltage course",
                               certificate_name="Mechanic L4", location="Room 101",
                               schedule="Weekends")
    free = make.programme(institution, title="Free safety course", fee=0,
                          certificate_kind="none", certificate_name="")
    data = _member_pages_data(enterprise, institution, demand, programme, free)
    user = make.user(enterprise, name="Alice Example")
    _english(client)
    pages = {
        "/": ["Level: Level 4 / Intermediate worker", "Fee: Free", "Certificate: None",
              "For enterprises", "For training institutions", "Training institutions"],
        "/demands": ["Level: Level 4 / Intermediate worker", "Mode: In person", "People: 5"],
        "/programmes": ["Fee: CNY 3800 per person", "Certificate: Mechanic L4", "Hours: 40"],
        f"/demands/{demand.id}": ["Occupation (trade): Mechanic", "Number of people: 5",
                                  "Location: Building 3", "2027-03-01"],
        f"/programmes/{programme.id}": ["Total hours: 40", "Places: 30", "Schedule: Weekends",
                                        "Vocational skill level certificate (Mechanic L4)"],
    }
    for path, expected in pages.items():
        html = client.get(path).get_data(as_text=True)
        for text in expected:
            assert text in html, (path, text)
        assert not _stray_full_width_punctuation(html, data), (
            path, _stray_full_width_punctuation(html, data))
    login(user)
    for path in ("/", "/org/members", "/org/profile", "/my/demands", "/dashboard/"):
        html = client.get(path).get_data(as_text=True)
        assert not _stray_full_width_punctuation(html, data), (
            path, _stray_full_width_punctuation(html, data))
    html = client.get("/").get_data(as_text=True)
    assert "Sign out (Alice Example)" in html


def test_chinese_pages_keep_full_width_punctuation(client, make):
    enterprise = make.org("enterprise")
    institution = make.org("institution")
    demand = make.demand(enterprise, budget_per_person=2000)
    programme = make.programme(institution)
    html = client.get("/").get_data(as_text=True)
    assert "等级：" in html and "费用：" in html
    assert "<h2>企业</h2>" in html and "<h2>培训机构</h2>" in html and "<span>培训机构</span>" in html
    html = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert "职业（工种）：汽车维修工" in html and "人均预算：2000 元" in html
    html = client.get(f"/programmes/{programme.id}").get_data(as_text=True)
    assert "证书：职业技能等级证书：汽车维修工（四级）" in html and "总学时：40" in html


def test_labels_escape_user_data(client, make):
    enterprise = make.org("enterprise")
    demand = make.demand(enterprise, location="<b>Room</b> & co")
    html = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert "地点：&lt;b&gt;Room&lt;/b&gt; &amp; co" in html
