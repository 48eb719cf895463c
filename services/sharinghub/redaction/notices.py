"""Re-disclosure notices attached to deliveries (vocabulary.md table O: O4, O5).

The texts are the hub's own plain-language summaries of the regulations, not quotations.
They name no category of the record beyond the regime the notice is required for, so a
notice is attached only when table O already says that regime's content is delivered.
"""

from __future__ import annotations

from collections.abc import Collection
from types import MappingProxyType

from sharinghub.contracts import Notice, Obligation

PART2_CITATION = "42 CFR 2.32"
FERPA_CITATION = "34 CFR 99.33"

PART2_TEXT = (
    "Notice of restrictions on further disclosure (42 CFR 2.32). The information in this "
    "delivery comes from records protected by the federal confidentiality rules in 42 CFR "
    "part 2. Those rules bind you as the recipient: you may use or disclose this information "
    "further only as 42 CFR part 2 permits, for example with the patient's written consent. "
    "Neither the records nor testimony describing them may be used to bring or support "
    "criminal, civil, administrative or legislative proceedings against the patient, or to "
    "investigate or prosecute the patient, unless the patient consents in writing or a "
    "court order issued under 42 CFR part 2 subpart E allows it. A general authorisation "
    "to release medical or other information does not satisfy these rules."
)

FERPA_TEXT = (
    "Notice of restrictions on further disclosure (34 CFR 99.33). This delivery contains "
    "personally identifiable information from a student's education records. You may use "
    "it only for the purpose for which it was disclosed to you, and you may not pass it on "
    "to any other party without the prior written consent of the parent or eligible "
    "student, unless the FERPA regulations (34 CFR part 99) allow that further disclosure."
)

# Order is the order notices appear in a payload (deterministic, independent of the
# order in which the policy listed the obligations).
_NOTICES: MappingProxyType[Obligation, tuple[str, str]] = MappingProxyType(
    {
        Obligation.REDISCLOSURE_NOTICE_PART2: (PART2_CITATION, PART2_TEXT),
        Obligation.REDISCLOSURE_NOTICE_FERPA: (FERPA_CITATION, FERPA_TEXT),
    }
)


def notices_for(obligations: Collection[Obligation]) -> list[Notice]:
    """Return the notices the recipient must receive for ``obligations``.

    Only the two re-disclosure obligations carry a notice; the others (client notification,
    retrospective review, minimum necessary) are duties of the hub, never shown to the
    recipient. Duplicates are collapsed and the order is fixed.
    """
    wanted = set(obligations)
    return [
        Notice(obligation=obligation, citation=citation, text=text)
        for obligation, (citation, text) in _NOTICES.items()
        if obligation in wanted
    ]
