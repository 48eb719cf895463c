"""Policy packs as code with fixtures: every pack validates, every fixture decides as filed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cedarpy
import pytest

from sharinghub.policy.packs import PACKS_DIR, compile_pack, pack_ids

PACKS = pack_ids()


def _fixtures() -> list[tuple[str, str, Path]]:
    out = []
    for pack in PACKS:
        for folder in ("ALLOW", "DENY"):
            for path in sorted((PACKS_DIR / pack / "fixtures" / folder).glob("*.json")):
                out.append((pack, folder, path))
    return out


FIXTURES = _fixtures()


@pytest.fixture(scope="module")
def compiled() -> dict[str, object]:
    return {pack: compile_pack(pack) for pack in PACKS}


def test_the_three_packs_exist() -> None:
    assert set(PACKS) == {"us_baseline", "uk_england", "us_ca"}


@pytest.mark.parametrize("pack", PACKS)
def test_pack_policies_validate_against_its_schema(pack: str, compiled: dict) -> None:
    c = compiled[pack]
    result = cedarpy.validate_policies(str(c.policy_set), c.source.files["schema.cedarschema"])
    assert result.validation_passed, [str(e) for e in result.errors]


@pytest.mark.parametrize("pack", PACKS)
def test_every_policy_is_annotated(pack: str, compiled: dict) -> None:
    """Every policy names its rule (@id) and explains itself; review rules ask a question."""
    rules = compiled[pack].rules.rules
    assert len(rules) == len(compiled[pack].policy_set)
    for rule in rules.values():
        assert rule.id and rule.explain and rule.explain != rule.id
    for cid, rid in compiled[pack].rule_of.items():
        assert rules[rid].order == int(cid.removeprefix("policy"))


@pytest.mark.parametrize("pack", PACKS)
def test_manifest_and_version(pack: str, compiled: dict) -> None:
    info = compiled[pack].info
    manifest = json.loads((PACKS_DIR / pack / "manifest.json").read_text())
    assert info.id == manifest["id"] == pack
    assert info.version.startswith(manifest["version"] + "+")
    assert len(info.version.split("+")[1]) == 12
    assert info.effective_date == manifest["effective_date"]
    assert info.citations


def test_version_changes_with_content(tmp_path: Path) -> None:
    shutil.copytree(PACKS_DIR, tmp_path / "packs")
    before = compile_pack("us_ca", tmp_path / "packs").info.version
    data = tmp_path / "packs" / "us_baseline" / "data.json"
    data.write_text(data.read_text() + "\n")
    assert compile_pack("us_baseline", tmp_path / "packs").info.version != (
        compile_pack("us_baseline").info.version
    )
    # a child's version covers its parent's content too
    assert compile_pack("us_ca", tmp_path / "packs").info.version != before


def test_us_ca_replaces_one_parent_rule_and_adds_one(compiled: dict) -> None:
    base, ca = compiled["us_baseline"], compiled["us_ca"]
    assert ca.info.extends == "us_baseline"
    assert set(ca.rules.rules) - set(base.rules.rules) == {"CA.duty_to_warn.identifiable_victim"}
    assert len(ca.policy_set) == len(base.policy_set) + 1
    replaced = "P.duty_to_warn.imminence_unknown"
    assert ca.rules.rules[replaced].order == base.rules.rules[replaced].order
    assert "identifiable_victim" in ca.rules.rules[replaced].decisive_facts


@pytest.mark.parametrize("pack", PACKS)
def test_every_pack_rule_has_a_fixture(pack: str, compiled: dict) -> None:
    named = {p.stem for (pk, _, p) in FIXTURES if pk == pack}
    own = set(compiled[pack].rules.rules)
    if pack == "us_ca":  # the child's fixtures cover what it changes; the rest is inherited
        own = {"CA.duty_to_warn.identifiable_victim", "P.duty_to_warn.imminence_unknown"}
    assert own <= named, sorted(own - named)


@pytest.mark.parametrize(
    ("pack", "folder", "path"), FIXTURES, ids=[f"{p}/{f}/{x.stem}" for p, f, x in FIXTURES]
)
def test_fixture_decides_as_its_folder_says(
    pack: str, folder: str, path: Path, compiled: dict
) -> None:
    c = compiled[pack]
    doc = json.loads(path.read_text())
    request = doc["request"]
    # validated against the schema, with the full policy set ...
    answer = cedarpy.is_authorized(request, c.policy_set, c.entities, schema=c.schema)
    assert not answer.diagnostics.errors
    assert answer.allowed is (folder == "ALLOW")
    ids = {c.rule_of[r] for r in answer.diagnostics.reasons}
    assert doc["expected_policy_id"] in ids
    # ... and the per-purpose slice the engine uses answers the same
    purpose = request[
        "resource" if request["action"]["id"] in ("deliver", "review") else "principal"
    ]
    sliced = cedarpy.is_authorized(request, c.slices[purpose["id"]], c.entities)
    assert sliced.allowed is answer.allowed
    assert {c.rule_of[r] for r in sliced.diagnostics.reasons} == ids
