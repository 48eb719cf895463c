"""Reading policy packs from disk: manifest, schema, data, policies, table O; `extends`.

A pack folder holds ``manifest.json`` (id, version, effective_date, citations, extends),
``schema.cedarschema``, ``data.json`` (agency types, categories and purpose profiles — the
tabular data the policies read as Cedar entities), ``obligations.json`` (table O) and
``policies/*.cedar``. A pack that ``extends`` another inherits every file it does not ship
itself; its policies are merged by ``@id``: the same id replaces the parent's policy, a new
id is added. The pack version is the manifest version plus a short hash of the content of
every file the pack is built from (its parents' included), so any edit changes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy
from cedarpy import pst

from sharinghub.contracts import Purpose
from sharinghub.policy.domain import PackInfo, PackRules, Rule
from sharinghub.policy.obligations import ObligationRules

PACKS_DIR = Path(__file__).resolve().parent / "packs"
_OWN_FILES = ("schema.cedarschema", "data.json", "obligations.json")


class PackError(ValueError):
    """A pack is malformed (missing file, duplicate @id, policy not valid for its schema)."""


@dataclass(frozen=True, slots=True)
class PackSource:
    """The text of a pack after resolving ``extends`` (parents first)."""

    manifest: dict[str, Any]
    files: dict[str, str]  # schema.cedarschema, data.json, obligations.json
    policies: tuple[tuple[str, str], ...]  # (pack/file name, Cedar text), parents first
    digest: str


@dataclass(frozen=True, slots=True)
class CompiledPack:
    """A pack parsed once: Cedar handles plus the pure-code view of its rules."""

    info: PackInfo
    rules: PackRules
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    entities: cedarpy.Entities
    rule_of: dict[str, str]  # Cedar positional policy id -> @id
    source: PackSource
    slices: dict[str, cedarpy.PolicySet]  # purpose id -> the policies that can apply to it


def pack_ids(packs_dir: Path = PACKS_DIR) -> list[str]:
    """Ids of the packs in a folder (every sub-folder with a manifest)."""
    return sorted(p.name for p in packs_dir.iterdir() if (p / "manifest.json").is_file())


def read_pack(pack_id: str, packs_dir: Path = PACKS_DIR) -> PackSource:
    """Read a pack's files, resolving ``extends`` recursively."""
    folder = packs_dir / pack_id
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("id") != pack_id:
        raise PackError(f"manifest id does not match folder {pack_id}")
    parent_id = manifest.get("extends")
    parent = read_pack(str(parent_id), packs_dir) if parent_id else None
    files = dict(parent.files) if parent else {}
    hasher = hashlib.sha256(parent.digest.encode() if parent else b"")
    for name in ("manifest.json", *_OWN_FILES):
        path = folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            hasher.update(f"{pack_id}/{name}\0".encode() + text.encode())
            if name != "manifest.json":
                files[name] = text
    missing = [n for n in _OWN_FILES if n not in files]
    if missing:
        raise PackError(f"pack {pack_id} lacks {', '.join(missing)}")
    policies = list(parent.policies) if parent else []
    for path in sorted((folder / "policies").glob("*.cedar")):
        text = path.read_text(encoding="utf-8")
        hasher.update(f"{pack_id}/policies/{path.name}\0".encode() + text.encode())
        policies.append((f"{pack_id}/{path.name}", text))
    return PackSource(manifest, files, tuple(policies), hasher.hexdigest())


def entities_json(data: dict[str, Any]) -> str:
    """Cedar entities (AgencyType, Category, Purpose) from a pack's ``data.json``."""

    def ref(kind: str, ident: str) -> dict[str, str]:
        return {"type": kind, "id": ident}

    out: list[dict[str, Any]] = []
    for ident, attrs in data["agency_types"].items():
        out.append({"uid": ref("AgencyType", ident), "attrs": attrs, "parents": []})
    for ident, attrs in data["categories"].items():
        out.append({"uid": ref("Category", ident), "attrs": attrs, "parents": []})
    for ident, p in data["purposes"].items():
        attrs = {
            "recipients": [ref("AgencyType", t) for t in p["recipients"]],
            "requester_must_be_provider": p["requester_must_be_provider"],
            "consent_basis": p["consent_basis"],
            "profile": [ref("Category", c) for c in p["profile"]],
            "consent_additions": [ref("Category", c) for c in p["consent_additions"]],
        }
        out.append({"uid": ref("Purpose", ident), "attrs": attrs, "parents": []})
    return json.dumps(out)


def _position(cedar_id: str) -> int:
    return int(cedar_id.removeprefix("policy"))


def merge_policies(sources: tuple[tuple[str, str], ...]) -> pst.PolicySet:
    """Merge policy files in order; a later policy with an existing @id replaces it."""
    merged: dict[str, pst.Template] = {}
    for name, text in sources:
        seen: set[str] = set()
        nodes = cedarpy.PolicySet.from_str(text).to_pst().static_policies
        for cedar_id in sorted(nodes, key=_position):
            node = nodes[cedar_id]
            rule_id = node.annotations.get("id")
            if not rule_id:
                raise PackError(f"{name}: every policy needs an @id annotation")
            if rule_id in seen:
                raise PackError(f"{name}: duplicate @id {rule_id}")
            seen.add(rule_id)
            merged[rule_id] = node  # replaces in place (keeps the parent's position)
    renumbered = {
        f"policy{i}": dataclasses.replace(node, id=f"policy{i}")
        for i, node in enumerate(merged.values())
    }
    return pst.PolicySet(templates={}, static_policies=renumbered, template_links=())


def _scoped_elsewhere(scope: object, purpose: str) -> bool:
    """True if a scope names a single Purpose entity other than ``purpose``."""
    if isinstance(scope, pst.ScopeEq) and isinstance(scope.entity, pst.EntityUid):
        uid = scope.entity
        return str(uid.type) == "Purpose" and uid.id != purpose
    return False


def slice_for(tree: pst.PolicySet, purpose: str) -> pst.PolicySet:
    """The policies whose scope can match requests about ``purpose`` (Cedar policy slicing).

    Outcome actions carry the purpose as resource, category actions as principal; a policy
    scoped to another purpose can never be satisfied, so leaving it out changes no answer —
    it only spares evaluating it. Positional ids are kept so reasons map to the same @id.
    """
    kept = {
        cid: node
        for cid, node in tree.static_policies.items()
        if not _scoped_elsewhere(node.resource, purpose)
        and not _scoped_elsewhere(node.principal, purpose)
    }
    return pst.PolicySet(templates={}, static_policies=kept, template_links=())


def _rule(order: int, node: pst.Template) -> Rule:
    notes = node.annotations
    facts = notes.get("facts", "")
    return Rule(
        id=notes["id"],
        order=order,
        effect="permit" if node.effect == "permit" else "forbid",
        explain=notes.get("explain", notes["id"]),
        question=notes.get("question"),
        decisive_facts=tuple(f.strip() for f in facts.split(",") if f.strip()),
        consent_basis=notes.get("basis") == "consent",
        keeps_review_when_empty=notes.get("empty_reach") == "review",
    )


def compile_pack(pack_id: str, packs_dir: Path = PACKS_DIR) -> CompiledPack:
    """Read, validate and parse a pack once (Cedar PolicySet, Schema and Entities)."""
    src = read_pack(pack_id, packs_dir)
    tree = merge_policies(src.policies)
    policy_set = cedarpy.PolicySet.from_pst(tree)
    schema_text = src.files["schema.cedarschema"]
    result = cedarpy.validate_policies(str(policy_set), schema_text)
    if not result.validation_passed:
        raise PackError(f"pack {pack_id} fails schema validation: {result.errors[:3]}")
    schema = cedarpy.Schema.from_str(schema_text)
    data = json.loads(src.files["data.json"])
    entities = cedarpy.Entities.from_json_str(entities_json(data), schema)
    nodes = tree.static_policies
    rules = {node.annotations["id"]: _rule(_position(cid), node) for cid, node in nodes.items()}
    m = src.manifest
    version = f"{m['version']}+{src.digest[:12]}"
    info = PackInfo(
        id=pack_id,
        version=version,
        effective_date=str(m["effective_date"]),
        citations=tuple(str(c) for c in m.get("citations", [])),
        extends=m.get("extends"),
    )
    pack_rules = PackRules(
        pack_id=pack_id,
        version=version,
        rules=rules,
        consent_purposes=frozenset(
            Purpose(p) for p, attrs in data["purposes"].items() if attrs["consent_basis"]
        ),
        obligations=ObligationRules.from_mapping(json.loads(src.files["obligations.json"])),
    )
    return CompiledPack(
        info=info,
        rules=pack_rules,
        policy_set=policy_set,
        schema=schema,
        entities=entities,
        rule_of={cid: node.annotations["id"] for cid, node in nodes.items()},
        source=src,
        slices={p: cedarpy.PolicySet.from_pst(slice_for(tree, p)) for p in data["purposes"]},
    )
