"""The policy engine: every pack parsed once, requests evaluated in Cedar batches.

Per request Cedar is asked ``deliver`` and ``review`` on the (effective) purpose and
``disclose`` on each requested category, in one ``is_authorized_batch`` call; only when the
outcome is a review is ``approve`` asked per category (a second call) for the reviewer's
ceiling. ``decide_many`` batches all of that across requests. cedarpy holds the GIL: callers
run these methods in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import cedarpy
import orjson

from sharinghub.contracts import (
    DataCategory,
    Jurisdiction,
    PolicyDecision,
    SharingRequest,
)
from sharinghub.policy import domain
from sharinghub.policy.domain import ConsentSupport, Derived, Evaluation, PackInfo, Verdict
from sharinghub.policy.packs import PACKS_DIR, CompiledPack, compile_pack, pack_ids

__all__ = ["PackInfo", "PolicyEngine", "PolicyEvaluationError"]

K = TypeVar("K")
V = TypeVar("V")

_DELIVER = {"type": "Action", "id": "deliver"}
_REVIEW = {"type": "Action", "id": "review"}
_DISCLOSE = {"type": "Action", "id": "disclose"}
_APPROVE = {"type": "Action", "id": "approve"}


class PolicyEvaluationError(RuntimeError):
    """Cedar reported an evaluation error: the engine fails closed rather than guess."""


class _Prepared:
    """One request's Cedar inputs, serialised once (category flags spliced in per category)."""

    __slots__ = ("category_head", "consent", "derived", "key", "outcome_ctx", "pack", "request")

    def __init__(
        self, request: SharingRequest, consent: ConsentSupport, pack: CompiledPack
    ) -> None:
        self.request = request
        self.consent = consent
        self.pack = pack
        self.derived: Derived = domain.derive(request)
        self.outcome_ctx = _dumps(domain.outcome_context(request, consent, self.derived))
        # JSON object without its closing brace: the per-category flags are appended.
        self.category_head = _dumps(domain.category_context(request, consent, self.derived))[:-1]
        # Everything Cedar is asked about this request: equal keys, equal answers.
        self.key = (
            pack.info.version,
            request.requester.agency_type.value,
            self.derived.purpose.value,
            self.outcome_ctx,
            self.category_head,
            tuple(
                (k, domain.consent_supported(consent, k), domain.covered_by_order(request, k))
                for k in self.derived.requested
            ),
        )

    def outcome_requests(self) -> list[dict[str, object]]:
        principal = {"type": "AgencyType", "id": self.request.requester.agency_type.value}
        resource = {"type": "Purpose", "id": self.derived.purpose.value}
        return [
            {"principal": principal, "action": a, "resource": resource, "context": self.outcome_ctx}
            for a in (_DELIVER, _REVIEW)
        ]

    def category_requests(self, action: Mapping[str, str]) -> list[dict[str, object]]:
        principal = {"type": "Purpose", "id": self.derived.purpose.value}
        head, request, consent = self.category_head, self.request, self.consent
        return [
            {
                "principal": principal,
                "action": action,
                "resource": {"type": "Category", "id": k.value},
                "context": head
                + _FLAGS[domain.consent_supported(consent, k), domain.covered_by_order(request, k)],
            }
            for k in self.derived.requested
        ]


def _dumps(value: object) -> str:
    # compact JSON, as json.dumps(separators=(",", ":")) writes it (the values are ASCII ids)
    return orjson.dumps(value).decode()


_FLAGS = {
    (s, c): f',"consent_supported":{str(s).lower()},"covered_by_order":{str(c).lower()}}}'
    for s in (False, True)
    for c in (False, True)
}


# Entries per memo. Each costs ~1 KB (its key holds the serialised Cedar context), measured
# with facts and categories varied at random: 85,000 entries took 85 MB. The bench's load
# needs ~200 answers and ~700 evaluations, so 8,192 keeps every hit for ~16 MB at most.
MEMO_ENTRIES = 8_192


class PolicyEngine:
    """Decides sharing requests under the policy pack of their jurisdiction."""

    def __init__(
        self, packs: Mapping[str, CompiledPack], *, cache_size: int = MEMO_ENTRIES
    ) -> None:
        """Use :meth:`load`; this takes already compiled packs keyed by pack id.

        ``cache_size`` bounds a memo of Cedar answers keyed by the exact Cedar input (pack
        version, principal, action, resource, context). Cedar is deterministic over a
        pack's fixed policies and entities, so a hit returns exactly what Cedar would;
        0 disables it. Category requests repeat a lot (a few booleans per category), and so
        do whole requests' inputs: a second memo keeps all of a request's answers by all of
        its inputs, so a repeated combination builds no Cedar request at all.
        """
        self._packs = dict(packs)
        self._cache_size = cache_size
        self._cache: dict[tuple[str, str, str, str, str, str], Verdict] = {}
        # The same memo one level up: all of a request's answers by all of its Cedar inputs.
        self._evaluations: dict[tuple[object, ...], Evaluation] = {}

    @classmethod
    def load(cls, packs_dir: Path | None = None) -> PolicyEngine:
        """Parse every pack under ``packs_dir`` once (PolicySet, Schema, Entities)."""
        folder = packs_dir or PACKS_DIR
        return cls({pid: compile_pack(pid, folder) for pid in pack_ids(folder)})

    @property
    def memo_entries(self) -> tuple[int, int]:
        """Entries held now by the memo of Cedar answers and by that of whole evaluations
        (each at most ``cache_size``)."""
        return len(self._cache), len(self._evaluations)

    @property
    def pack_ids(self) -> list[str]:
        """Ids of the loaded packs (jurisdictions plus packs such as ``us_ca``)."""
        return sorted(self._packs)

    def pack(self, jurisdiction: Jurisdiction | str) -> PackInfo:
        """Id, version (manifest version + content hash), effective date and citations."""
        return self._compiled(str(jurisdiction)).info

    def compiled(self, pack_id: str) -> CompiledPack:
        """The compiled pack (for tests, fixtures and tooling)."""
        return self._compiled(pack_id)

    def _compiled(self, pack_id: str) -> CompiledPack:
        try:
            return self._packs[pack_id]
        except KeyError:
            raise LookupError(f"no policy pack {pack_id}") from None

    def decide(
        self, request: SharingRequest, consent: ConsentSupport, *, now: datetime
    ) -> PolicyDecision:
        """Decide one request under the pack of its jurisdiction."""
        return self.decide_many([(request, consent)], now=now)[0]

    def decide_with_pack(
        self,
        pack_id: str,
        request: SharingRequest,
        consent: ConsentSupport,
        *,
        now: datetime,
    ) -> PolicyDecision:
        """Decide under a named pack (e.g. ``us_ca``, which no jurisdiction id selects yet)."""
        return self._decide_all([(request, consent, self._compiled(pack_id))], now=now)[0]

    def decide_many(
        self,
        items: Sequence[tuple[SharingRequest, ConsentSupport]],
        *,
        now: datetime,
    ) -> list[PolicyDecision]:
        """Decide many requests with as few Cedar calls as possible (two per pack at most)."""
        return self._decide_all(
            [(r, c, self._compiled(r.jurisdiction.value)) for r, c in items], now=now
        )

    def decide_after_review(
        self,
        request: SharingRequest,
        consent: ConsentSupport,
        pending: PolicyDecision,
        *,
        approved_categories: Collection[DataCategory],
        reviewer_id: str,
        now: datetime,
    ) -> PolicyDecision:
        """A reviewer approves: delivered with approved ∩ max_categories (never wider).

        Raises ``ValueError`` when the approval names a category outside the ceiling or
        leaves nothing to deliver.
        """
        pack = self._packs.get(pending.pack_id) or self._compiled(request.jurisdiction.value)
        return domain.after_review(
            request,
            consent,
            pack.rules,
            pending,
            approved_categories=approved_categories,
            reviewer_id=reviewer_id,
            now=now,
        )

    # -- evaluation -------------------------------------------------------------------

    def _decide_all(
        self,
        items: Sequence[tuple[SharingRequest, ConsentSupport, CompiledPack]],
        *,
        now: datetime,
    ) -> list[PolicyDecision]:
        results: list[PolicyDecision | None] = [None] * len(items)
        prepared: dict[int, _Prepared] = {}
        for i, (request, consent, pack) in enumerate(items):
            if request.purpose.is_invalid:  # step 1 / B6: never evaluated
                results[i] = domain.rejected(request, pack.rules, now=now)
            else:
                prepared[i] = _Prepared(request, consent, pack)

        evaluations: dict[int, Evaluation] = {}
        asked: dict[int, _Prepared] = {}
        for i, p in prepared.items():
            known = self._evaluations.get(p.key)
            if known is None:
                asked[i] = p
            else:
                evaluations[i] = known
        first = self._run(asked, lambda p: [*p.outcome_requests(), *p.category_requests(_DISCLOSE)])
        for i, verdicts in first.items():
            p = prepared[i]
            disclose = dict(zip(p.derived.requested, verdicts[2:], strict=True))
            evaluations[i] = Evaluation(deliver=verdicts[0], review=verdicts[1], disclose=disclose)

        reach_needed = {
            i: asked[i]
            for i, ev in evaluations.items()
            if i in asked and domain.needs_reach(ev.deliver, ev.review)
        }
        second = self._run(reach_needed, lambda p: p.category_requests(_APPROVE))
        for i, verdicts in second.items():
            ev = evaluations[i]
            approve = dict(zip(prepared[i].derived.requested, verdicts, strict=True))
            evaluations[i] = Evaluation(ev.deliver, ev.review, ev.disclose, approve)

        answered: dict[tuple[object, ...], Evaluation] = {
            p.key: evaluations[i] for i, p in asked.items()
        }
        _remember(self._evaluations, answered, self._cache_size)
        for i, ev in evaluations.items():
            p = prepared[i]
            results[i] = domain.compose(p.request, p.consent, p.pack.rules, p.derived, ev, now=now)
        return [r for r in results if r is not None]

    def _run(
        self,
        prepared: Mapping[int, _Prepared],
        build: Callable[[_Prepared], list[dict[str, object]]],
    ) -> dict[int, list[Verdict]]:
        """One Cedar batch per pack and purpose (uncached inputs only); verdicts per item."""
        # One call per (pack, purpose): each uses the pack's policy slice for that purpose.
        by_pack: dict[tuple[str, str], list[int]] = {}
        for i, p in prepared.items():
            by_pack.setdefault((p.pack.info.id, p.derived.purpose.value), []).append(i)
        out: dict[int, list[Verdict]] = {}
        cache = self._cache
        for indices in by_pack.values():
            pack = prepared[indices[0]].pack
            version = pack.info.version
            keys: dict[int, list[tuple[str, str, str, str, str, str]]] = {}
            missing: dict[tuple[str, str, str, str, str, str], dict[str, object]] = {}
            for i in indices:
                item_keys = []
                for r in build(prepared[i]):
                    key = _key(version, r)
                    item_keys.append(key)
                    if key not in cache:
                        missing[key] = r
                keys[i] = item_keys
            fresh: dict[tuple[str, str, str, str, str, str], Verdict] = {}
            if missing:
                policies = pack.slices[prepared[indices[0]].derived.purpose.value]
                answers = cedarpy.is_authorized_batch(
                    list(missing.values()), policies, pack.entities
                )
                fresh = {k: _verdict(pack, a) for k, a in zip(missing, answers, strict=True)}
                _remember(cache, fresh, self._cache_size)
            for i in indices:
                out[i] = [fresh[k] if k in fresh else cache[k] for k in keys[i]]
        return out


def _remember(memo: dict[K, V], fresh: Mapping[K, V], capacity: int) -> None:
    """Add `fresh` to `memo`, emptying it first when it would exceed `capacity` (a crude
    bound: it refills from the live traffic); capacity 0 keeps nothing."""
    if not capacity:
        return
    if len(memo) + len(fresh) > capacity:
        memo.clear()
    memo.update(fresh)


def _key(version: str, r: Mapping[str, object]) -> tuple[str, str, str, str, str, str]:
    principal, action, resource = r["principal"], r["action"], r["resource"]
    assert isinstance(principal, dict) and isinstance(action, dict)
    assert isinstance(resource, dict)
    return (
        version,
        str(principal["id"]),
        str(action["id"]),
        str(resource["type"]),
        str(resource["id"]),
        str(r["context"]),
    )


def _verdict(pack: CompiledPack, answer: cedarpy.AuthzResult) -> Verdict:
    errors = answer.diagnostics.errors
    if errors:
        raise PolicyEvaluationError(f"pack {pack.info.id}: {len(errors)} evaluation error(s)")
    return Verdict(
        allowed=answer.allowed,
        rule_ids=tuple(pack.rule_of[r] for r in answer.diagnostics.reasons),
    )
