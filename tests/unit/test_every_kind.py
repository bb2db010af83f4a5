"""Every kind of entry in ``RESOURCES`` appears everywhere kinds differ, and nothing else does.

Each place is built from ``RESOURCES``; this test is what fails, loudly, when one is not (a
kind left out of sync would vanish from a phone while the cursor moved past it; left out of the
export, it would be missing from the patient's copy of their data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from api.app import TAGS
from api.audit.service import NOUNS, describe
from api.export.schemas import JournalExport
from api.journal.resource import Resource
from api.journal.schemas import ResourceName
from api.models import JOURNAL_MODELS, AuditOutcome, ReadScope
from api.resources import BY_NAME, RESOURCES
from api.sync.schemas import Changes, Deletions, WatermelonChanges
from api.web import patient_page
from tests.support.entries import EDIT, EDITABLE, body
from tests.support.sharing import ALL_SCOPES
from tests.unit.test_access_log_wording import record

NAMES = [resource.name for resource in RESOURCES]
ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "openapi" / "openapi.json").read_text())


def test_names_are_distinct_and_the_closed_set_the_spec_declares() -> None:
    assert len(set(NAMES)) == len(NAMES) == len(BY_NAME)
    assert list(get_args(ResourceName)) == NAMES


def test_every_kind_has_its_read_scope_and_only_kinds_and_the_summary_have_one() -> None:
    assert [scope.value for scope in ReadScope] == [r.scope.value for r in RESOURCES] + [
        "summary:read"
    ]
    assert [scope.value for scope in ReadScope] == ALL_SCOPES


@pytest.mark.parametrize("group", [Changes, Deletions, WatermelonChanges])
def test_sync_has_a_group_per_kind_and_refuses_any_other(group: type[BaseModel]) -> None:
    assert list(group.model_fields) == NAMES
    with pytest.raises(ValidationError, match="extra_forbidden"):
        group.model_validate({"unknown": []})


def test_sync_groups_hold_each_kind_as_its_read_schema() -> None:
    for resource in RESOURCES:
        assert Changes.model_fields[resource.name].annotation == list[resource.read]  # type: ignore[name-defined]


def test_the_export_has_every_kind_in_order_and_refuses_any_other_key() -> None:
    fields = list(JournalExport.model_fields)
    start = fields.index("account") + 1
    assert fields[start : start + len(NAMES)] == NAMES
    for resource in RESOURCES:
        assert JournalExport.model_fields[resource.name].annotation == list[resource.read]  # type: ignore[name-defined]
    example = JournalExport.model_json_schema()["examples"][0]
    with pytest.raises(ValidationError, match="extra_forbidden"):
        JournalExport.model_validate({**example, "unknown": []})


@pytest.mark.parametrize("resource", RESOURCES, ids=NAMES)
def test_the_access_log_names_every_kind_in_its_own_words(resource: Resource) -> None:
    assert NOUNS[resource.name] == resource.nouns
    seen = record(resource.name, "list", AuditOutcome.ALLOWED, count=2)
    assert describe(seen, "Dr Lee") == f"Dr Lee viewed 2 of your {resource.nouns}."


@pytest.mark.parametrize("resource", RESOURCES, ids=NAMES)
def test_the_web_page_labels_and_shows_every_kind(resource: Resource) -> None:
    assert patient_page.SCOPE_LABELS[resource.scope] == resource.nouns
    assert patient_page.DISPLAY["kinds"][resource.name] == resource.label
    assert (ROOT / "api" / "web" / "templates" / "entries" / f"{resource.name}.html").is_file()


def test_the_web_page_shows_no_kind_that_is_not_one() -> None:
    shown = {path.stem for path in (ROOT / "api/web/templates/entries").glob("*.html")}
    assert shown == set(NAMES)
    assert set(patient_page.DISPLAY["kinds"]) == set(NAMES)
    assert set(patient_page.SCOPE_LABELS) == set(ReadScope)


def _operation_ids() -> set[str]:
    return {
        operation["operationId"]
        for item in SPEC["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.mark.parametrize("resource", RESOURCES, ids=NAMES)
def test_the_spec_has_every_kinds_routes_and_tag(resource: Resource) -> None:
    paths: dict[str, Any] = SPEC["paths"]
    own, shared = f"/v1/{resource.name}", f"/v1/patients/{{patient_id}}/{resource.name}"
    assert {own, f"{own}/{{entry_id}}", shared, f"{shared}/{{entry_id}}"} <= set(paths)
    assert ("patch" in paths[f"{own}/{{entry_id}}"]) == (resource.update is not None)
    assert ("session_id" in json.dumps(paths[own]["get"]["parameters"])) == (
        resource.session_linked
    )
    assert resource.name in {tag["name"] for tag in TAGS}
    assert {tag["name"]: tag["description"] for tag in SPEC["tags"]}[
        resource.name
    ] == resource.description
    kinds = SPEC["components"]["schemas"]
    for group in ("Changes", "Deletions", "WatermelonChanges", "JournalExport"):
        assert resource.name in kinds[group]["properties"]
    assert any(resource.singular in operation_id for operation_id in _operation_ids())


@pytest.mark.parametrize("resource", RESOURCES, ids=NAMES)
def test_the_test_helpers_know_every_kind(resource: Resource) -> None:
    assert body(resource.name)
    assert (resource.name in EDITABLE) == (resource.update is not None)
    assert (resource.name in EDIT) == (resource.update is not None)


def test_key_rotation_re_encrypts_every_kind() -> None:
    assert set(JOURNAL_MODELS) == {resource.model for resource in RESOURCES}
