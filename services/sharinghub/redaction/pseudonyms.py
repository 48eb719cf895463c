"""One-time pseudonyms that replace the subject id when identity is not delivered (rule S2).

A pseudonym is random, not derived from the subject id: nothing the recipient holds can
be turned back into the client, and two deliveries about the same client cannot be linked
by their pseudonyms. The mapping pseudonym → subject lives only in the audit record.
"""

from __future__ import annotations

import re
import secrets

PSEUDONYM_PREFIX = "psn-"
# 15 random bytes = 120 bits → 20 url-safe characters. With 120 bits a repeat is not a
# practical concern (about 2**60 pseudonyms before a 50 % chance of one collision), so no
# registry of issued pseudonyms is needed to keep them one-time.
_TOKEN_BYTES = 15
_TOKEN_CHARS = 20
_PSEUDONYM = re.compile(rf"^{PSEUDONYM_PREFIX}[A-Za-z0-9_-]{{{_TOKEN_CHARS}}}$")


def new_pseudonym() -> str:
    """Return a fresh one-time pseudonym, e.g. ``psn-3q2Vb0xYk1Zt9aLmN4pQ``.

    Drawn from the OS CSPRNG (``secrets``); it carries no information about the subject.
    """
    return PSEUDONYM_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def is_pseudonym(value: str) -> bool:
    """True if ``value`` has the shape `new_pseudonym` produces (guards against passing an id)."""
    return _PSEUDONYM.fullmatch(value) is not None
