"""Property tests of consent matching: the C1 time window and the scope rules (table C)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sharinghub.consent.domain import assess_consent, withdrawn_categories
from sharinghub.contracts import (
    HARD_BLOCKS,
    PROVIDER_TYPES,
    SPECIAL_CLASSES,
    AgencyType,
    CaseRecord,
    ConsentDirective,
    ConsentGrantor,
    ConsentScope,
    DataCategory,
    Facts,
    Jurisdiction,
    Purpose,
    Recipient,
    Requester,
    SharingRequest,
)

T0 = datetime(2025, 3, 4, 14, 20, tzinfo=UTC)
SUBJECT = "subj-prop-0001"
AGENCIES = ["ag-prop-a", "ag-prop-b", "ag-prop-c"]  # a small pool, so matches are frequent
LAWFUL = [p for p in Purpose if not p.is_invalid]

# offsets around T0 that hit the boundaries exactly and by one microsecond
offsets = st.one_of(
    st.sampled_from([timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1)]),
    st.timedeltas(min_value=-timedelta(days=400), max_value=timedelta(days=400)),
)


def request_for(
    *,
    purpose: Purpose = Purpose.CONSENT_BASED_SHARING,
    recipient: tuple[str, AgencyType] = ("ag-prop-a", AgencyType.HOUSING),
    requester_type: AgencyType = AgencyType.SOCIAL_SERVICES,
    categories: list[DataCategory] | None = None,
    jurisdiction: Jurisdiction = Jurisdiction.US_BASELINE,
    minor: bool | None = False,
) -> SharingRequest:
    return SharingRequest(
        request_id="req-prop-0001",
        jurisdiction=jurisdiction,
        requester=Requester(agency_id="ag-prop-requester", agency_type=requester_type),
        recipient=Recipient(agency_id=recipient[0], agency_type=recipient[1]),
        purpose=purpose,
        facts=Facts(subject_is_minor=minor),
        requested_categories=categories or [DataCategory.IDENTITY],
        record=CaseRecord(subject_id=SUBJECT, fields=[]),
        requested_at=T0,
    )


def directive_for(consent_id: str = "cd-prop-a", **scope: Any) -> ConsentDirective:
    revoked_at = scope.pop("revoked_at", None)
    granted_by = scope.pop("granted_by", ConsentGrantor.CLIENT)
    subject_id = scope.pop("subject_id", SUBJECT)
    base: dict[str, Any] = {
        "recipient_agency_ids": ["ag-prop-a"],
        "purposes": [Purpose.CONSENT_BASED_SHARING],
        "categories_included": [DataCategory.IDENTITY],
        "valid_from": T0 - timedelta(days=1),
    }
    return ConsentDirective(
        consent_id=consent_id,
        version=1,
        subject_id=subject_id,
        granted_by=granted_by,
        scope=ConsentScope(**{**base, **scope}),
        revoked_at=revoked_at,
    )


# ---------------------------------------------------------------- C1 time window


@given(start=offsets, end=st.none() | offsets, revoked=st.none() | offsets)
def test_c1_window_valid_from_inclusive_expiry_and_revocation_exclusive(
    start: timedelta, end: timedelta | None, revoked: timedelta | None
) -> None:
    directive = directive_for(
        valid_from=T0 + start,
        expires_at=None if end is None else T0 + end,
        revoked_at=None if revoked is None else T0 + revoked,
    )
    in_window = (
        start <= timedelta(0)
        and (end is None or end > timedelta(0))
        and (revoked is None or revoked > timedelta(0))
    )
    result = assess_consent(request_for(), [directive], assessed_at=T0 + timedelta(days=999))
    assert (DataCategory.IDENTITY in result.supported) is in_window
    assert bool(result.findings[0].reasons) is not in_window


@given(revoked=offsets, now_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(7)))
def test_withdrawal_counts_every_revocation_up_to_now(
    revoked: timedelta, now_after: timedelta
) -> None:
    directive = directive_for(revoked_at=T0 + revoked)
    now = T0 + now_after
    withdrawn = withdrawn_categories(request_for(), [DataCategory.IDENTITY], [directive], now=now)
    assert (withdrawn == [DataCategory.IDENTITY]) is (T0 + revoked <= now)


# ---------------------------------------------------------------- scope rules


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "recipient_agency_ids": draw(st.none() | st.lists(st.sampled_from(AGENCIES), max_size=2)),
        "recipient_agency_types": draw(
            st.none() | st.lists(st.sampled_from(list(AgencyType)), max_size=3)
        ),
        "purposes": draw(st.lists(st.sampled_from(LAWFUL[:4]), min_size=1, max_size=2)),
        "categories_included": draw(
            st.none() | st.lists(st.sampled_from(list(DataCategory)), max_size=6)
        ),
        "categories_excluded": draw(st.lists(st.sampled_from(list(DataCategory)), max_size=3)),
        "granted_by": draw(st.sampled_from(list(ConsentGrantor))),
        "subject_id": draw(st.sampled_from([SUBJECT, SUBJECT, "subj-prop-other"])),
    }


requests = st.builds(
    request_for,
    purpose=st.sampled_from(LAWFUL[:4]),
    recipient=st.tuples(st.sampled_from(AGENCIES), st.sampled_from(list(AgencyType))),
    requester_type=st.sampled_from(list(AgencyType)),
    categories=st.lists(st.sampled_from(list(DataCategory)), min_size=1, max_size=8),
    jurisdiction=st.sampled_from(list(Jurisdiction)),
    minor=st.sampled_from([True, False, None]),
)


@settings(max_examples=300)
@given(request=requests, raw_scopes=st.lists(scopes(), min_size=1, max_size=4))
def test_a_consent_never_reaches_beyond_its_scope(
    request: SharingRequest, raw_scopes: list[dict[str, Any]]
) -> None:
    directives = [directive_for(f"cd-prop-{i}", **raw) for i, raw in enumerate(raw_scopes)]
    by_id = {d.consent_id: d for d in directives}
    result = assess_consent(request, directives, assessed_at=T0)
    us = request.jurisdiction is Jurisdiction.US_BASELINE
    for finding in result.findings:
        d = by_id[finding.consent.consent_id]
        scope = d.scope
        for k in finding.supports:
            assert d.subject_id == request.record.subject_id
            assert request.purpose in scope.purposes  # never another purpose
            assert request.recipient.agency_id in (scope.recipient_agency_ids or []) or (
                request.recipient.agency_type in (scope.recipient_agency_types or [])
            )  # never another recipient
            assert k in request.requested_categories
            assert k not in scope.categories_excluded
            assert k not in HARD_BLOCKS
            if scope.categories_included is None:
                assert k not in SPECIAL_CLASSES  # behaviour B4
            else:
                assert k in scope.categories_included
            if request.facts.subject_is_minor is True:
                assert d.granted_by is ConsentGrantor.GUARDIAN
            if (
                us
                and scope.categories_included
                and (DataCategory.PSYCHOTHERAPY_NOTES in scope.categories_included)
            ):
                assert set(scope.categories_included) == {DataCategory.PSYCHOTHERAPY_NOTES}
            if us and request.requester.agency_type is AgencyType.SCHOOL:
                assert scope.categories_included is not None
            if us and (
                k is DataCategory.SUBSTANCE_USE_PART2
                or request.requester.agency_type is AgencyType.SUBSTANCE_USE_TREATMENT
            ):
                named = request.recipient.agency_id in (scope.recipient_agency_ids or [])
                tpo = (
                    request.purpose is Purpose.TREATMENT_CONTINUITY
                    and request.recipient.agency_type in PROVIDER_TYPES
                )
                assert named or tpo
        # every requested category is either supported or explained
        if set(finding.supports) != set(request.requested_categories):
            assert finding.reasons
    # the summary agrees with the findings
    expected = {
        k: [f.consent for f in result.findings if k in f.supports]
        for k in sorted(set(request.requested_categories))
    }
    assert result.supported == {k: refs for k, refs in expected.items() if refs}


@given(request=requests, raw_scopes=st.lists(scopes(), min_size=1, max_size=4), data=st.data())
def test_assessment_does_not_depend_on_directive_order(
    request: SharingRequest, raw_scopes: list[dict[str, Any]], data: st.DataObject
) -> None:
    directives = [directive_for(f"cd-prop-{i}", **raw) for i, raw in enumerate(raw_scopes)]
    shuffled = data.draw(st.permutations(directives))
    assert assess_consent(request, shuffled, assessed_at=T0) == assess_consent(
        request, directives, assessed_at=T0
    )


@given(request=requests, raw_scopes=st.lists(scopes(), max_size=4))
def test_withdrawn_with_unchanged_directives_is_what_was_never_supported(
    request: SharingRequest, raw_scopes: list[dict[str, Any]]
) -> None:
    directives = [directive_for(f"cd-prop-{i}", **raw) for i, raw in enumerate(raw_scopes)]
    supported = assess_consent(request, directives, assessed_at=T0).supported
    requested = set(request.requested_categories)
    assert withdrawn_categories(request, requested, directives, now=T0) == sorted(
        requested - set(supported)
    )
    assert withdrawn_categories(request, list(supported), directives, now=T0) == []
