"""Closed vocabularies of sharinghub, verbatim from ``shared/domain/vocabulary.md``.

Adding an id is a reviewed change to the vocabulary document first; these enums follow it.
"""

from __future__ import annotations

from enum import StrEnum


class Jurisdiction(StrEnum):
    """Policy pack a request is judged under (chosen by the disclosing agency)."""

    US_BASELINE = "us_baseline"
    UK_ENGLAND = "uk_england"


class AgencyType(StrEnum):
    """Kinds of partner agency; `data_subject` only ever receives `client_own_request`."""

    SOCIAL_SERVICES = "social_services"
    HEALTH = "health"
    MENTAL_HEALTH = "mental_health"
    SUBSTANCE_USE_TREATMENT = "substance_use_treatment"
    POLICE = "police"
    SCHOOL = "school"
    HOUSING = "housing"
    PROBATION = "probation"
    CHILD_PROTECTIVE_SERVICES = "child_protective_services"
    ADULT_PROTECTIVE_SERVICES = "adult_protective_services"
    COURT = "court"
    OVERSIGHT_BODY = "oversight_body"
    DATA_SUBJECT = "data_subject"


PROVIDER_TYPES: frozenset[AgencyType] = frozenset(
    {AgencyType.HEALTH, AgencyType.MENTAL_HEALTH, AgencyType.SUBSTANCE_USE_TREATMENT}
)


class Purpose(StrEnum):
    """Stated purpose of use: fourteen lawful purposes and five invalid reasons."""

    CONSENT_BASED_SHARING = "consent_based_sharing"
    TREATMENT_CONTINUITY = "treatment_continuity"
    CARE_COORDINATION = "care_coordination"
    DUTY_TO_WARN = "duty_to_warn"
    IMMINENT_SELF_HARM = "imminent_self_harm"
    CHILD_SAFEGUARDING = "child_safeguarding"
    ADULT_SAFEGUARDING = "adult_safeguarding"
    COURT_ORDER = "court_order"
    SUBPOENA = "subpoena"
    LAW_ENFORCEMENT_REQUEST = "law_enforcement_request"
    MEDICAL_EMERGENCY = "medical_emergency"
    COLLEAGUE_CONSULTATION = "colleague_consultation"
    AUDIT_OVERSIGHT = "audit_oversight"
    CLIENT_OWN_REQUEST = "client_own_request"
    INVALID_CLIENT_UNTRUSTWORTHY = "invalid_client_untrustworthy"
    INVALID_PRACTITIONER_FEELS_THREATENED = "invalid_practitioner_feels_threatened"
    INVALID_CLIENT_DISSATISFIED = "invalid_client_dissatisfied"
    INVALID_JUST_IN_CASE = "invalid_just_in_case"
    INVALID_LEVERAGE_OR_SANCTION = "invalid_leverage_or_sanction"

    @property
    def is_invalid(self) -> bool:
        """True for the stated reasons that are never a lawful basis (always rejected)."""
        return self.value.startswith("invalid_")


INVALID_PURPOSES: frozenset[Purpose] = frozenset(p for p in Purpose if p.is_invalid)
URGENT_PURPOSES: frozenset[Purpose] = frozenset(
    {
        Purpose.DUTY_TO_WARN,
        Purpose.IMMINENT_SELF_HARM,
        Purpose.MEDICAL_EMERGENCY,
        Purpose.CHILD_SAFEGUARDING,
    }
)


class DataCategory(StrEnum):
    """Category of a record field; the unit at which policy allows or withholds data."""

    IDENTITY = "identity"
    CONTACT = "contact"
    DEMOGRAPHICS = "demographics"
    HOUSEHOLD_FAMILY = "household_family"
    THIRD_PARTY_INFORMATION = "third_party_information"
    RISK_ASSESSMENT = "risk_assessment"
    SAFEGUARDING_CONCERNS = "safeguarding_concerns"
    PHYSICAL_HEALTH = "physical_health"
    MENTAL_HEALTH = "mental_health"
    PSYCHOTHERAPY_NOTES = "psychotherapy_notes"
    SUBSTANCE_USE_PART2 = "substance_use_part2"
    SEXUAL_REPRODUCTIVE_HEALTH = "sexual_reproductive_health"
    HIV_STATUS = "hiv_status"
    EDUCATION = "education"
    CRIMINAL_JUSTICE = "criminal_justice"
    HOUSING = "housing"
    FINANCIAL = "financial"
    IMMIGRATION = "immigration"
    CASE_NARRATIVE = "case_narrative"
    SEALED_COURT_RECORD = "sealed_court_record"
    PRIVILEGED_COMMUNICATION = "privileged_communication"


SPECIAL_CLASSES: frozenset[DataCategory] = frozenset(
    {
        DataCategory.SUBSTANCE_USE_PART2,
        DataCategory.PSYCHOTHERAPY_NOTES,
        DataCategory.HIV_STATUS,
        DataCategory.SEXUAL_REPRODUCTIVE_HEALTH,
        DataCategory.PRIVILEGED_COMMUNICATION,
    }
)
HARD_BLOCKS: frozenset[DataCategory] = frozenset(
    {DataCategory.THIRD_PARTY_INFORMATION, DataCategory.SEALED_COURT_RECORD}
)


class Outcome(StrEnum):
    """What happened to a request; every request ends in exactly one final outcome."""

    DELIVERED = "delivered"
    DENIED = "denied"
    PENDING_REVIEW = "pending_review"
    REJECTED_INVALID = "rejected_invalid"


class Obligation(StrEnum):
    """Duties attached to a delivered disclosure (table O)."""

    NOTIFY_CLIENT = "notify_client"
    NOTIFICATION_WITHHELD_RISK = "notification_withheld_risk"
    REDISCLOSURE_NOTICE_PART2 = "redisclosure_notice_part2"
    REDISCLOSURE_NOTICE_FERPA = "redisclosure_notice_ferpa"
    RETROSPECTIVE_REVIEW = "retrospective_review"
    MINIMUM_NECESSARY_APPLIED = "minimum_necessary_applied"


class ConsentGrantor(StrEnum):
    """Who gave a consent (rule C4)."""

    CLIENT = "client"
    GUARDIAN = "guardian"


class Stage(StrEnum):
    """Pipeline stages that consume, decide and stamp an envelope."""

    INGRESS = "ingress"
    CONSENT = "consent"
    POLICY = "policy"
    REVIEW = "review"
    REDACTION = "redaction"
    DELIVERY = "delivery"
