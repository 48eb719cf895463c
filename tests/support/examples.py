"""Turn example scenarios into contracts (fictional data from shared/domain/examples.jsonl)."""

from __future__ import annotations

from typing import Any

from sharinghub.contracts import ConsentDirective, SharingRequest
from sharinghub.tools.scenarios import _scenario, directives_on_file


def request_of(example: dict[str, Any], suffix: str = "t") -> SharingRequest:
    return _scenario(example, suffix).request


def directives_of(example: dict[str, Any]) -> list[ConsentDirective]:
    """The example's consents as the registry would hold them (latest version each)."""
    return directives_on_file(_scenario(example, "t"))
