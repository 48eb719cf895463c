"""Turn example scenarios into contracts (fictional data from shared/domain/examples.jsonl)."""

from __future__ import annotations

from typing import Any

from sharinghub.contracts import ConsentDirective, SharingRequest
from sharinghub.tools.scenarios import _scenario


def request_of(example: dict[str, Any], suffix: str = "t") -> SharingRequest:
    return _scenario(example, suffix).request


def directives_of(example: dict[str, Any]) -> list[ConsentDirective]:
    """The example's consents as the registry would hold them (latest version each)."""
    s = _scenario(example, "t")
    latest: dict[str, ConsentDirective] = {}
    for ev in s.directive_events:
        if ev.action in ("grant", "amend"):
            latest[ev.directive.consent_id] = ev.directive  # type: ignore[union-attr]
        else:
            prev = latest[ev.consent_id]  # type: ignore[union-attr]
            latest[ev.consent_id] = prev.model_copy(  # type: ignore[union-attr]
                update={"version": ev.version, "revoked_at": ev.revoked_at}  # type: ignore[union-attr]
            )
    return list(latest.values())
