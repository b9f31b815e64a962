"""What every response carries whatever the view: security headers (flask-talisman), the trust
given to a reverse proxy's X-Forwarded-* headers, HTTPS, and the filing numbers (备案号) that a
site hosted in mainland China must show in its footer."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

# Everything from our own origin, nothing inline: a script or style injected into a page (an
# unescaped organisation description, say) does not run. (The authenticator QR code is inline
# SVG with presentation attributes, which the policy allows.) No page may frame ours
# (clickjacking), no form may post elsewhere, and a <base> tag cannot redirect relative URLs.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
REFERRER_POLICY = "strict-origin-when-cross-origin"
MIIT_URL = "https://beian.miit.gov.cn/"
MPS_URL = "https://beian.mps.gov.cn/#/query/webSearch?code={code}"


class _Talisman(Talisman):
    # Talisman overwrites Referrer-Policy on every response; a view that chose a stricter one
    # (the one-time links' "no-referrer", which keeps their token out of any Referer) keeps it.
    def _set_referrer_policy_headers(self, headers) -> None:
        headers.setdefault("Referrer-Policy", self.referrer_policy)


@dataclass(frozen=True)
class Filing:
    """One filing number for the footer and the official page where a visitor can check it."""

    number: str
    url: str


def init_app(app: Flask) -> None:
    """Trust the configured proxies, send the security headers and expose the filing numbers."""
    https = config_flag(app.config.get("HTTPS"), "CHANJIAO_HTTPS")
    proxies = config_count(app.config.get("TRUSTED_PROXIES"), "CHANJIAO_TRUSTED_PROXIES")
    if proxies:
        # X-Forwarded-Prefix stays untrusted: the site is served at the root of its host, and
        # a proxy that passes a client's prefix through would let it rewrite every URL we build.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    # Secure cookies only over HTTPS: on plain http (``make run``) a browser would drop them and
    # nobody could log in.
    app.config["SESSION_COOKIE_SECURE"] = https
    app.config["REMEMBER_COOKIE_SECURE"] = https
    _Talisman(
        app,
        force_https=https,
        strict_transport_security=https,
        session_cookie_secure=https,
        # Talisman writes these into app.config; keep what config.py chose.
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE"),
        session_cookie_http_only=app.config.get("SESSION_COOKIE_HTTPONLY", True),
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy=REFERRER_POLICY,
        x_content_type_options=True,
    )
    filings = filing_numbers(app.config.get("ICP_BEIAN"), app.config.get("PSB_BEIAN"))
    app.jinja_env.globals["filings"] = filings


def filing_numbers(icp: Any, psb: Any) -> tuple[Filing, ...]:
    """The footer's filing numbers: the ICP one (checked at MIIT) and the 公安 one (at MPS)."""
    filings = []
    icp = _text(icp)
    if icp:
        filings.append(Filing(icp, MIIT_URL))
    psb = _text(psb)
    if psb:
        digits = "".join(re.findall(r"\d", psb))
        if not digits:
            raise ValueError(
                f"CHANJIAO_PSB_BEIAN={psb!r} has no record number: expected e.g. 京公网安备11010502000001号"
            )
        filings.append(Filing(psb, MPS_URL.format(code=digits)))
    return tuple(filings)


def _text(value: Any) -> str:
    # from_prefixed_env parses values as JSON: a bare number arrives as an int.
    return "" if value is None else str(value).strip()


def config_flag(value: Any, name: str) -> bool:
    """A boolean setting, from a bool or an environment string such as "true" or "0"."""
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r}: expected true or false")


def config_count(value: Any, name: str) -> int:
    """A non-negative whole-number setting, from an int or an environment string."""
    if isinstance(value, bool) or not re.fullmatch(r"\d+", _text(value) or "0"):
        raise ValueError(f"{name}={value!r}: expected a whole number of proxies, 0 or more")
    return int(_text(value) or 0)
