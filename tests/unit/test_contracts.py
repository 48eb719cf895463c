"""Contracts: vocabulary verbatim, examples valid, generated schemas committed and fresh."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from sharinghub.contracts import (
    AgencyType,
    DataCategory,
    Jurisdiction,
    Obligation,
    Outcome,
    Purpose,
    SharingRequest,
    topics,
)
from sharinghub.contracts.schemas import build
from sharinghub.runtime.codec import InvalidMessage, decode
from tests.conftest import EXAMPLES, PACKAGED_EXAMPLES
from tests.support.examples import request_of

VOCABULARY = Path(__file__).resolve().parents[3] / "shared" / "domain" / "vocabulary.md"


def table_ids(section: str) -> set[str]:
    text = VOCABULARY.read_text()
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", body, flags=re.M))


@pytest.mark.skipif(not VOCABULARY.exists(), reason="shared/domain/vocabulary.md not beside repo")
@pytest.mark.parametrize(
    ("section", "enum"),
    [
        ("Jurisdictions (policy packs)", Jurisdiction),
        ("Agency types", AgencyType),
        ("Data categories", DataCategory),
        ("Outcomes", Outcome),
        ("Obligations", Obligation),
    ],
)
def test_enums_are_the_vocabulary_verbatim(section, enum) -> None:  # type: ignore[no-untyped-def]
    assert {m.value for m in enum} == table_ids(section)


@pytest.mark.skipif(not VOCABULARY.exists(), reason="shared/domain/vocabulary.md not beside repo")
def test_purposes_are_the_vocabulary_verbatim() -> None:
    # the purposes section holds two tables: lawful purposes and invalid stated reasons
    assert {p.value for p in Purpose} == table_ids("Purposes of use")


def test_every_example_is_a_valid_request(examples) -> None:  # type: ignore[no-untyped-def]
    for ex in examples:
        assert request_of(ex).requested_categories


def test_packaged_demo_scenarios_match_shared_examples() -> None:
    if not EXAMPLES.exists():
        pytest.skip("shared/domain/examples.jsonl not beside the repo")
    assert PACKAGED_EXAMPLES.read_text() == EXAMPLES.read_text(), (
        "services/sharinghub/tools/demo_scenarios.jsonl is stale: copy shared/domain/examples.jsonl"
    )


def test_generated_schemas_and_asyncapi_are_fresh() -> None:
    stale = [str(p) for p, content in build().items() if not p.exists() or p.read_text() != content]
    assert not stale, f"regenerate with `python -m sharinghub.contracts.schemas`: {stale}"


def test_every_field_of_the_request_is_documented() -> None:
    schema = SharingRequest.model_json_schema()
    props = schema["properties"]
    undocumented = [k for k, v in props.items() if "description" not in v and "$ref" not in v]
    assert not undocumented


def test_unknown_vocabulary_id_is_a_schema_violation_without_the_value(examples) -> None:  # type: ignore[no-untyped-def]
    data = request_of(examples[0]).model_dump(mode="json")
    data["record"]["fields"][0]["category"] = "secret_sauce"
    with pytest.raises(InvalidMessage) as err:
        decode(SharingRequest, orjson.dumps(data), max_bytes=1_000_000)
    assert err.value.reason_code == "schema_violation"
    assert "record.fields.0.category" in err.value.reason
    assert "secret_sauce" not in err.value.reason
    assert data["record"]["fields"][0]["value"] not in err.value.reason
    assert err.value.request_id == data["request_id"]


def test_oversize_and_malformed_messages_get_clear_reasons() -> None:
    with pytest.raises(InvalidMessage) as err:
        decode(SharingRequest, b"x" * 2048, max_bytes=1024)
    assert err.value.reason_code == "oversize"
    with pytest.raises(InvalidMessage) as err2:
        decode(SharingRequest, b'{"request_id": ', max_bytes=1024)
    assert err2.value.reason_code == "malformed_json"


def test_strict_booleans_refuse_strings(examples) -> None:  # type: ignore[no-untyped-def]
    data = request_of(examples[0]).model_dump(mode="json")
    data["facts"]["threat_imminent"] = "yes"
    with pytest.raises(ValidationError):
        SharingRequest.model_validate(data)


def test_inbox_topic_is_a_valid_kafka_name_per_agency() -> None:
    assert topics.inbox_topic("ag-x") == "agency.ag-x.inbox.v1"
    assert topics.inbox_topic("self:subj-1") == "agency.self_subj-1.inbox.v1"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", topics.inbox_topic("self:subj-1"))
