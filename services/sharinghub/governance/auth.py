"""Who may read the governance console: operator-configured ``name:token`` pairs.

``SHARINGHUB_GOVERNANCE_TOKENS="board:s3cret,auditor:0ther"`` — each pair works as an HTTP
bearer token (``Authorization: Bearer s3cret``), as Basic user:password
(``board:s3cret``) and through the browser login page, which sets a signed, HttpOnly
session cookie (the token itself never goes into the cookie).

Tokens are compared in constant time: every configured token is checked, whatever matches
first, and the comparison is over SHA-256 digests so a token's length does not leak either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping

ENV_VAR = "SHARINGHUB_GOVERNANCE_TOKENS"
COOKIE_NAME = "sharinghub_governance"
SESSION_TTL_S = 8 * 3600
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class TokenConfigError(ValueError):
    """The token configuration is malformed (the message never contains a token)."""


def parse_tokens(spec: str) -> dict[str, str]:
    """``"name:token,name2:token2"`` → ``{name: token}``; blanks between commas are ignored."""
    tokens: dict[str, str] = {}
    for position, item in enumerate(spec.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        name, sep, token = item.partition(":")
        if not sep or not token:
            raise TokenConfigError(f"{ENV_VAR} entry {position} is not name:token")
        if not _NAME.match(name):
            raise TokenConfigError(f"{ENV_VAR} entry {position}: name must match {_NAME.pattern}")
        if name in tokens:
            raise TokenConfigError(f"{ENV_VAR} names {name} twice")
        tokens[name] = token
    return tokens


def tokens_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The configured tokens (empty if the variable is unset)."""
    return parse_tokens((environ if environ is not None else os.environ).get(ENV_VAR, ""))


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class Authenticator:
    """Checks bearer tokens, name/password pairs and session cookies."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        *,
        secret: bytes | None = None,
        session_ttl_s: int = SESSION_TTL_S,
    ) -> None:
        self._tokens = {name: _digest(token) for name, token in tokens.items()}
        # A fresh secret per process: sessions end when the console restarts, which is fine.
        self._secret = secret or secrets.token_bytes(32)
        self._ttl = session_ttl_s

    @property
    def configured(self) -> bool:
        """False when no token is configured: then nobody can sign in."""
        return bool(self._tokens)

    def check_token(self, token: str) -> str | None:
        """The name whose token this is, or None (every entry is compared)."""
        given = _digest(token)
        found: str | None = None
        for name, expected in self._tokens.items():
            if hmac.compare_digest(given, expected):
                found = name
        return found

    def check_password(self, name: str, password: str) -> str | None:
        """``name`` if ``password`` is that name's token, else None."""
        given = _digest(password)
        ok = False
        for known, expected in self._tokens.items():
            ok |= hmac.compare_digest(given, expected) & hmac.compare_digest(
                _digest(name), _digest(known)
            )
        return name if ok else None

    def check_authorization(self, header: str) -> str | None:
        """Check an ``Authorization`` header (Bearer or Basic)."""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self.check_token(value.strip())
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
            name, _, password = decoded.partition(":")
            return self.check_password(name, password)
        return None

    def _mac(self, body: str) -> str:
        return hmac.new(self._secret, body.encode("utf-8"), hashlib.sha256).hexdigest()

    def issue_session(self, name: str, now: float | None = None) -> str:
        """Cookie value ``name|expiry|mac`` for a signed-in user."""
        expiry = int((now if now is not None else time.time()) + self._ttl)
        body = f"{name}|{expiry}"
        return f"{body}|{self._mac(body)}"

    def check_session(self, value: str, now: float | None = None) -> str | None:
        """The user a session cookie belongs to, if it is genuine, unexpired and still valid."""
        parts = value.split("|")
        if len(parts) != 3:
            return None
        name, expiry, mac = parts
        if not hmac.compare_digest(self._mac(f"{name}|{expiry}"), mac):
            return None
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        # A name removed from the configuration loses its sessions too.
        return name if name in self._tokens else None
