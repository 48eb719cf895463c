"""A consent receipt in plain words: what the client agreed to, for case workers and clients.

Wording follows the definitions of ``shared/domain/vocabulary.md``. A directive holds no
record values, so nothing here can leak one; agency and consent ids are printed as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sharinghub.contracts import (
    HARD_BLOCKS,
    SPECIAL_CLASSES,
    AgencyType,
    ConsentDirective,
    ConsentGrantor,
    DataCategory,
    Purpose,
)

_C = DataCategory
CATEGORY_TEXT: dict[DataCategory, str] = {
    _C.IDENTITY: "name, aliases, date of birth and identifiers",
    _C.CONTACT: "address, phone and email",
    _C.DEMOGRAPHICS: "age band, sex/gender, language and ethnicity",
    _C.HOUSEHOLD_FAMILY: "people in the household or close family and how they are related",
    _C.THIRD_PARTY_INFORMATION: "information about other people such as neighbours, "
    "referrers, ex-partners, friends or other clients",
    _C.RISK_ASSESSMENT: "assessed risk to self or others",
    _C.SAFEGUARDING_CONCERNS: "recorded concerns of abuse, neglect or exploitation",
    _C.PHYSICAL_HEALTH: "physical diagnoses, medications, injuries and allergies",
    _C.MENTAL_HEALTH: "psychiatric diagnoses, treatment summaries and mental-state observations",
    _C.PSYCHOTHERAPY_NOTES: "a therapist's separately kept notes on session content",
    _C.SUBSTANCE_USE_PART2: "substance-use disorder diagnosis, treatment and program enrolment",
    _C.SEXUAL_REPRODUCTIVE_HEALTH: "sexual health, STI, contraception, pregnancy and "
    "termination information",
    _C.HIV_STATUS: "HIV test results, status and treatment",
    _C.EDUCATION: "attendance, attainment, special-education and discipline information",
    _C.CRIMINAL_JUSTICE: "arrests, charges, convictions and supervision conditions",
    _C.HOUSING: "tenancy, housing need, homelessness and arrears history",
    _C.FINANCIAL: "income, benefits, debts and signs of financial abuse",
    _C.IMMIGRATION: "immigration or residence status and related proceedings",
    _C.CASE_NARRATIVE: "free-text case notes",
    _C.SEALED_COURT_RECORD: "material sealed or restricted by a court",
    _C.PRIVILEGED_COMMUNICATION: "communications protected by a legal privilege you hold",
}
PURPOSE_TEXT: dict[Purpose, str] = {
    Purpose.CONSENT_BASED_SHARING: "sharing that rests only on this consent",
    Purpose.TREATMENT_CONTINUITY: "treating you or continuing your care",
    Purpose.CARE_COORDINATION: "planning services around you with other agencies",
    Purpose.DUTY_TO_WARN: "warning or protecting others from a serious threat of violence",
    Purpose.IMMINENT_SELF_HARM: "acting on an imminent risk of serious self-harm",
    Purpose.CHILD_SAFEGUARDING: "reporting or sharing about suspected abuse or neglect of a child",
    Purpose.ADULT_SAFEGUARDING: "reporting or sharing about suspected abuse, neglect or "
    "exploitation of an adult at risk",
    Purpose.COURT_ORDER: "production required by an order signed by a judge",
    Purpose.SUBPOENA: "a subpoena, witness summons or discovery demand",
    Purpose.LAW_ENFORCEMENT_REQUEST: "a police request",
    Purpose.MEDICAL_EMERGENCY: "treating a medical emergency",
    Purpose.COLLEAGUE_CONSULTATION: "asking a colleague for advice without identifying you",
    Purpose.AUDIT_OVERSIGHT: "inspection or audit by an oversight body",
    Purpose.CLIENT_OWN_REQUEST: "your own access to your record",
}
AGENCY_TEXT: dict[AgencyType, str] = {
    AgencyType.SOCIAL_SERVICES: "social work, family support and adult social care",
    AgencyType.HEALTH: "physical-health providers such as hospitals, clinics and GPs",
    AgencyType.MENTAL_HEALTH: "mental-health, counselling, psychology and crisis services",
    AgencyType.SUBSTANCE_USE_TREATMENT: "substance-use treatment programs",
    AgencyType.POLICE: "law-enforcement agencies",
    AgencyType.SCHOOL: "schools, colleges and education authorities",
    AgencyType.HOUSING: "housing authorities, housing associations and shelters",
    AgencyType.PROBATION: "probation, parole and youth-justice supervision",
    AgencyType.CHILD_PROTECTIVE_SERVICES: "child protection services",
    AgencyType.ADULT_PROTECTIVE_SERVICES: "adult protection services",
    AgencyType.COURT: "courts and tribunals",
    AgencyType.OVERSIGHT_BODY: "regulators, inspectorates and ombudsmen",
    AgencyType.DATA_SUBJECT: "you yourself",
}


def consent_receipt(directive: ConsentDirective) -> str:
    """Describe in plain English what the client agreed to in this directive version.

    Covers who may receive, for which purposes, which kinds of information (and which
    never), how long it lasts, whether it was withdrawn, and the right to withdraw.
    """
    scope = directive.scope
    who = (
        "you"
        if directive.granted_by is ConsentGrantor.CLIENT
        else "your guardian or representative"
    )
    lines = [f"Consent {directive.consent_id} (version {directive.version}), given by {who}."]

    recipients = [f"the agency {a}" for a in scope.recipient_agency_ids or []]
    recipients += [
        f"any {t.value} agency ({AGENCY_TEXT[t]})" for t in scope.recipient_agency_types or []
    ]
    if recipients:
        lines.append("Who may receive it: " + "; ".join(recipients) + ". Nobody else.")
    else:
        lines.append("No recipient is named, so this consent lets nobody receive anything.")

    purposes = [
        f"{p.value} ({PURPOSE_TEXT.get(p, 'never a lawful reason to share')})"
        for p in scope.purposes
    ]
    lines.append("What for: " + "; ".join(purposes) + ". No other purpose.")

    excluded = set(scope.categories_excluded)
    if scope.categories_included is None:
        lines.append(
            "What may be shared: every kind of information in your record, except the "
            "sensitive kinds that must be named one by one ("
            + ", ".join(sorted(SPECIAL_CLASSES))
            + ") and those listed below."
        )
    else:
        shared = sorted(set(scope.categories_included) - excluded - HARD_BLOCKS)
        items = [f"{k.value} ({CATEGORY_TEXT[k]})" for k in shared]
        lines.append("What may be shared: " + ("; ".join(items) or "nothing") + ".")
    never = [f"{k.value} ({CATEGORY_TEXT[k]})" for k in sorted(excluded)]
    lines.append("You excluded: " + ("; ".join(never) or "nothing") + ".")
    lines.append(
        "Never shared on consent alone, because it concerns other people or a court: "
        + "; ".join(f"{k.value} ({CATEGORY_TEXT[k]})" for k in sorted(HARD_BLOCKS))
        + "."
    )
    included = scope.categories_included or []
    if _C.PSYCHOTHERAPY_NOTES in included and len(set(included)) > 1:
        lines.append(
            "Note: under US rules psychotherapy notes need a consent of their own; combined "
            "with other information, this consent is not valid there."
        )

    until = (
        f"until {_when(scope.expires_at)} (not including that moment)"
        if scope.expires_at
        else "with no end date"
    )
    lines.append(f"Valid from {_when(scope.valid_from)} {until}.")
    if directive.revoked_at is not None:
        lines.append(
            f"You withdrew this consent on {_when(directive.revoked_at)}: it covers no request "
            "made from then on, and stops any sharing not yet delivered."
        )
    else:
        lines.append(
            "You can withdraw this consent at any time. Withdrawal stops future sharing and "
            "anything not yet delivered; it cannot undo what was already shared."
        )
    return "\n".join(lines)


def _when(moment: datetime) -> str:
    # Always UTC, so a receipt reads the same wherever it is printed.
    return moment.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")
