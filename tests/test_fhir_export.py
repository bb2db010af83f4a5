"""The FHIR R4 export is what an EHR can file, checked against oracles written here and by an
independent validator (Medplum's, through Node, pinned in tests/fhir/package-lock.json).

The oracles below are the instruments' published LOINC codes (PHQ-9 and GAD-7 from LOINC's panels
44249-1 and 69737-5, as in the product description and issue 17), LOINC's mod-10 check digit and
the SNOMED CT route codes of FHIR R4's route-codes value set; they are written out again here, not
imported from the code under test.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # through schemathesis; no stubs
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.support.entries import body, iso
from tests.support.people import Person
from tests.support.sharing import bearer, give_grant, mint

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR_DIR = ROOT / "tests" / "fhir"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
OWN = "https://kap-journal.org/fhir/CodeSystem/journal"
CANARY = "wren-canary-71c4"

PHQ9_ITEMS = [
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
]
GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
ANSWERS = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
ROUTES = {
    "iv": "47625008",
    "im": "78421000",
    "sublingual": "37839007",
    "oral": "26643006",
    "intranasal": "46713006",
    "other": None,
}
PHQ9_WITH_FLAG = [1, 2, 1, 1, 0, 1, 2, 0, 1]  # 9: mild, item 9 = 1
PHQ9_NO_FLAG = [3, 3, 3, 3, 3, 3, 2, 0, 0]  # 20: severe, item 9 = 0
GAD7 = [2, 2, 2, 2, 2, 2, 3]  # 15: severe
PCL5 = [2, 0, 0, 0, 0, 1, 3, 4, 2, 0, 0, 0, 0, 0, 2, 2, 1, 0, 0, 0]  # 19; B1 C1 D2 E2


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit (LOINC Users' Guide, appendix: the Luhn-like algorithm)."""
    odd = "".join(reversed(number))[0::2]  # rightmost first: positions 1, 3, 5, ...
    even = "".join(reversed(number))[1::2]
    doubled = str(int("".join(reversed(odd))) * 2)
    total = sum(int(d) for d in "".join(reversed(even)) + doubled)
    return (10 - total % 10) % 10


def test_the_check_digit_oracle_knows_good_from_bad() -> None:
    # The worked example of LOINC's guide (12345 -> 5) and known terms, then a wrong digit.
    assert loinc_check_digit("12345") == 5
    assert loinc_check_digit("44249") == 1
    assert loinc_check_digit("70274") == 6
    assert loinc_check_digit("44249") != 2


async def a_journal_of_every_kind(client: httpx.AsyncClient, patient: Person) -> dict[str, Any]:
    h = patient.headers
    sessions = {
        route: (
            await client.post("/v1/sessions", headers=h, json=body("sessions", route=route))
        ).json()
        for route in ROUTES
    }
    first = sessions["sublingual"]["id"]
    intention = await client.post(
        "/v1/intentions", headers=h, json={"text": f"intent {CANARY}", "session_id": first}
    )
    reflection = await client.post(
        "/v1/reflections",
        headers=h,
        json=body("reflections", text=f"reflect {CANARY}", session_id=first, private=True),
    )
    checkins = [
        (await client.post("/v1/checkins", headers=h, json=body("checkins"))).json(),
        (await client.post("/v1/checkins", headers=h, json={"mood": 2, "private": True})).json(),
    ]
    assessments = {}
    for name, instrument, answers, private in (
        ("phq9_flag", "phq9", PHQ9_WITH_FLAG, False),
        ("phq9_private", "phq9", PHQ9_NO_FLAG, True),
        ("gad7", "gad7", GAD7, False),
        ("pcl5", "pcl5", PCL5, False),
    ):
        made = await client.post(
            "/v1/assessments",
            headers=h,
            json={
                "instrument": instrument,
                "answers": answers,
                "private": private,
                "completed_at": iso(),
            },
        )
        assert made.status_code == 201, made.text
        assessments[name] = made.json()
    response = await client.get("/v1/me/export", params={"format": "fhir"}, headers=h)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    return {
        "bundle": response.json(),
        "sessions": sessions,
        "intention": intention.json(),
        "reflection": reflection.json(),
        "checkins": checkins,
        "assessments": assessments,
    }


class Index:
    """A Bundle's resources by fullUrl and by id."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.by_url: dict[str, dict[str, Any]] = {
            e["fullUrl"]: e["resource"] for e in bundle["entry"]
        }
        self.by_id: dict[str, dict[str, Any]] = {r["id"]: r for r in self.by_url.values()}

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.by_url.values() if r["resourceType"] == kind]

    def resolve(self, reference: dict[str, str]) -> dict[str, Any]:
        return self.by_url[reference["reference"]]

    def panel_for(self, entry_id: str) -> dict[str, Any]:
        response = f"urn:uuid:{entry_id}"
        [panel] = [
            o
            for o in self.of("Observation")
            if "hasMember" in o and o["derivedFrom"] == [{"reference": response}]
        ]
        return panel


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def codings(node: Any, system: str) -> list[str]:
    return [n["code"] for n in walk(node) if n.get("system") == system and "code" in n]


@pytest.fixture
async def journal(client: httpx.AsyncClient, patient: Person) -> dict[str, Any]:
    return await a_journal_of_every_kind(client, patient)


async def test_every_loinc_term_code_has_a_valid_check_digit(journal: dict[str, Any]) -> None:
    used = set(codings(journal["bundle"], LOINC))
    terms = {code for code in used if not code.startswith("LA")}
    # Panels, items and totals of all three instruments, and sleep duration, are all used.
    assert {"44249-1", "69737-5", "101697-1", "44261-6", "70274-6", "101698-9", "93832-4"} <= terms
    assert set(PHQ9_ITEMS) | set(GAD7_ITEMS) <= terms
    for code in sorted(terms):
        number, _, digit = code.partition("-")
        assert number.isdigit(), code
        assert digit.isdigit(), code
        assert loinc_check_digit(number) == int(digit), f"{code}: check digit is wrong"
    assert used - terms <= set(ANSWERS)


async def test_phq9_and_gad7_are_panels_of_item_observations_and_a_total(
    journal: dict[str, Any],
) -> None:
    index = Index(journal["bundle"])
    for name, panel_code, total_code, items, answers, total, band in (
        ("phq9_flag", "44249-1", "44261-6", PHQ9_ITEMS, PHQ9_WITH_FLAG, 9, "phq9-mild"),
        ("phq9_private", "44249-1", "44261-6", PHQ9_ITEMS, PHQ9_NO_FLAG, 20, "phq9-severe"),
        ("gad7", "69737-5", "70274-6", GAD7_ITEMS, GAD7, 15, "gad7-severe"),
    ):
        entry_id = journal["assessments"][name]["id"]
        response = index.by_url[f"urn:uuid:{entry_id}"]
        assert response["resourceType"] == "QuestionnaireResponse"
        assert response["questionnaire"] == f"http://loinc.org/q/{panel_code}"
        assert [i["linkId"] for i in response["item"]] == items
        assert [i["answer"][0]["valueCoding"]["code"] for i in response["item"]] == [
            ANSWERS[a] for a in answers
        ]
        panel = index.panel_for(entry_id)
        assert codings(panel["code"], LOINC) == [panel_code]
        members = [index.resolve(m) for m in panel["hasMember"]]
        assert [codings(m["code"], LOINC) for m in members] == [[c] for c in items] + [[total_code]]
        *item_observations, total_observation = members
        assert [codings(o["valueCodeableConcept"], LOINC) for o in item_observations] == [
            [ANSWERS[a]] for a in answers
        ]
        assert total_observation["valueInteger"] == total == sum(answers)
        assert codings(total_observation["interpretation"], OWN) == [band]
        for observation in members:
            assert observation["derivedFrom"] == [{"reference": f"urn:uuid:{entry_id}"}]


async def test_pcl5_uses_loinc_where_loinc_has_codes_and_its_clusters_are_components(
    journal: dict[str, Any],
) -> None:
    index = Index(journal["bundle"])
    entry_id = journal["assessments"]["pcl5"]["id"]
    response = index.by_url[f"urn:uuid:{entry_id}"]
    own_items = [f"pcl5-item-{n}" for n in range(1, 21)]
    assert [i["linkId"] for i in response["item"]] == own_items
    assert [i["answer"][0]["valueInteger"] for i in response["item"]] == PCL5
    panel = index.panel_for(entry_id)
    assert codings(panel["code"], LOINC) == ["101697-1"]
    *items, total = [index.resolve(m) for m in panel["hasMember"]]
    assert [codings(o["code"], OWN) for o in items] == [[c] for c in own_items]
    assert [o["valueInteger"] for o in items] == PCL5
    assert codings(total["code"], LOINC) == ["101698-9"]
    assert total["valueInteger"] == sum(PCL5)
    assert codings(total["interpretation"], OWN) == ["pcl5-below-threshold"]
    # Oracle: an item >= 2 is endorsed; B 1-5, C 6-7, D 8-14, E 15-20.
    clusters = {
        name: sum(a >= 2 for a in PCL5[first - 1 : last])
        for name, (first, last) in {"b": (1, 5), "c": (6, 7), "d": (8, 14), "e": (15, 20)}.items()
    }
    components = {codings(c["code"], OWN)[0]: c for c in total["component"]}
    assert {
        code.removeprefix("pcl5-cluster-"): c["valueInteger"]
        for code, c in components.items()
        if code.startswith("pcl5-cluster-")
    } == clusters
    assert components["pcl5-provisional-diagnosis"]["valueBoolean"] is True


async def test_a_phq9_item_9_above_zero_exports_a_flag(journal: dict[str, Any]) -> None:
    index = Index(journal["bundle"])
    flagged = journal["assessments"]["phq9_flag"]["id"]
    [flag] = index.of("Flag")
    assert flag["status"] == "active"
    assert codings(flag["code"], OWN) == ["phq9-item9-positive"]
    assert flag["extension"][0]["valueReference"] == {"reference": f"urn:uuid:{flagged}"}
    assert flag["subject"] == {
        "reference": f"urn:uuid:{journal['bundle']['entry'][1]['resource']['id']}"
    }


async def test_check_ins_use_the_code_system_the_bundle_publishes(
    journal: dict[str, Any],
) -> None:
    index = Index(journal["bundle"])
    [system] = index.of("CodeSystem")
    assert system["url"] == OWN
    assert ".example" not in system["url"]
    assert system["status"] == "active"
    assert system["content"] == "complete"
    defined = {c["code"]: c for c in system["concept"]}
    used = set(codings(journal["bundle"], OWN))
    assert used
    assert used <= set(defined), used - set(defined)
    checkin = index.by_id[journal["checkins"][0]["id"]]
    components = {c["code"]["coding"][0]["code"]: c for c in checkin["component"]}
    for code, value in (("mood", 6), ("anxiety", 3), ("energy", 5)):
        component = components[code]
        assert component["valueQuantity"]["value"] == value
        [scale] = component["referenceRange"]
        assert (scale["low"]["value"], scale["high"]["value"]) == (0, 10)
        assert "10 is" in scale["text"]
        assert "0 to 10" in defined[code]["definition"]
    assert components["93832-4"]["valueQuantity"] == {
        "value": 7.5,
        "unit": "h",
        "system": "http://unitsofmeasure.org",
        "code": "h",
    }


async def test_dosing_routes_are_snomed_route_codes(journal: dict[str, Any]) -> None:
    index = Index(journal["bundle"])
    for route, code in ROUTES.items():
        administration = index.by_id[journal["sessions"][route]["id"]]
        assert administration["resourceType"] == "MedicationAdministration"
        assert codings(administration["dosage"]["route"], SNOMED) == ([code] if code else [])
        assert administration["dosage"]["route"]["text"] == route


async def test_every_reference_resolves_inside_the_bundle(journal: dict[str, Any]) -> None:
    bundle = journal["bundle"]
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    assert all(
        u == f"urn:uuid:{e['resource']['id']}" for u, e in zip(urls, bundle["entry"], strict=False)
    )
    references = [n["reference"] for n in walk(bundle) if "reference" in n]
    assert len(references) > 40
    assert set(references) <= set(urls), set(references) - set(urls)
    document = Index(bundle).by_id[journal["intention"]["id"]]
    assert document["context"]["related"] == [
        {"reference": f"urn:uuid:{journal['sessions']['sublingual']['id']}"}
    ]


async def test_private_entries_are_marked_restricted(journal: dict[str, Any]) -> None:
    index = Index(journal["bundle"])
    private_entries = {
        journal["reflection"]["id"],
        journal["checkins"][1]["id"],
        journal["assessments"]["phq9_private"]["id"],
    }
    restricted = {
        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "code": "R",
        "display": "restricted",
    }
    marked = set()
    for resource in index.by_url.values():
        security = resource.get("meta", {}).get("security")
        if security is not None:
            assert security == [restricted]
            marked.add(resource["id"])
    assert private_entries <= marked
    # Everything derived from the private PHQ-9 (panel, nine items, total) is restricted too.
    panel = index.panel_for(journal["assessments"]["phq9_private"]["id"])
    derived = {panel["id"], *(index.resolve(m)["id"] for m in panel["hasMember"])}
    assert len(derived) == 11
    assert marked == private_entries | derived


async def test_the_export_fits_its_spec_schema_and_fhir_resources_models(
    journal: dict[str, Any], client: httpx.AsyncClient
) -> None:
    spec = (await client.get("/openapi.json")).json()
    content = spec["paths"]["/v1/me/export"]["get"]["responses"]["200"]["content"]
    schema = content["application/fhir+json"]["schema"]
    jsonschema.validate(journal["bundle"], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**journal["bundle"], "type": "transaction"}, schema)
    # A second, independent reading of the same bundle (pydantic FHIR models).
    model = Bundle.model_validate(journal["bundle"])
    texts = [
        base64.b64decode(r["content"][0]["attachment"]["data"]).decode()
        for r in Index(journal["bundle"]).of("DocumentReference")
    ]
    assert sum(CANARY in t for t in texts) == 2
    assert model.entry is not None
    assert len(model.entry) == len(journal["bundle"]["entry"])


# --- Medplum's validator -------------------------------------------------------------------


@pytest.fixture(scope="session")
def medplum() -> Path:
    """tests/fhir with its pinned node_modules installed (npm ci from the lock when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, "the FHIR validator needs Node.js (20.19+) on PATH"
    assert npm, "the FHIR validator needs npm on PATH"
    lock = json.loads((VALIDATOR_DIR / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/@medplum/core"]["version"]
    installed = VALIDATOR_DIR / "node_modules" / "@medplum" / "core" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=VALIDATOR_DIR,
            check=True,
            timeout=600,
        )
    return VALIDATOR_DIR


def validate(directory: Path, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", "validate.mjs"],
        cwd=directory,
        input=json.dumps(bundle),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_medplum_finds_nothing_wrong_in_any_resource(
    journal: dict[str, Any], medplum: Path
) -> None:
    bundle = journal["bundle"]
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds == {
        "CodeSystem",
        "Patient",
        "MedicationAdministration",
        "Observation",
        "QuestionnaireResponse",
        "Flag",
        "DocumentReference",
    }
    count = dict.fromkeys(kinds, 0)
    for entry in bundle["entry"]:
        count[entry["resource"]["resourceType"]] += 1
    # Per questionnaire: a panel, one Observation per item and a total; per check-in, one.
    assert count["Observation"] == 2 + (1 + 9 + 1) * 2 + (1 + 7 + 1) + (1 + 20 + 1)
    assert count["MedicationAdministration"] == len(ROUTES)
    assert (count["QuestionnaireResponse"], count["DocumentReference"], count["Flag"]) == (4, 2, 1)
    report = validate(medplum, bundle)
    assert len(report) == len(bundle["entry"]) + 1  # the Bundle itself, then every resource
    assert [r["issues"] for r in report if r["issues"]] == []


async def test_medplum_refuses_a_broken_bundle(journal: dict[str, Any], medplum: Path) -> None:
    bundle = json.loads(json.dumps(journal["bundle"]))
    observation = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    del observation["status"]  # required, 1..1
    observation["valueInteger"] = "six"  # wrong type
    flag = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag")
    flag["colour"] = "red"  # no such element
    report = validate(medplum, bundle)
    broken = {r["resourceType"]: r["issues"] for r in report[1:] if r["issues"]}
    assert set(broken) == {"Observation", "Flag"}
    found = json.dumps(broken)
    assert "Observation.status" in found
    assert "Observation.value[x]" in found
    assert "Flag.colour" in found


async def test_the_flag_takes_its_state_from_the_safety_flag_record(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """Open: `active`, with the record's own id. Acknowledged by a therapist: `inactive`, its
    period ending at the acknowledgement, so an EHR does not raise an alarm already answered."""
    answers = [0, 0, 0, 0, 0, 0, 0, 0, 2]
    created = await client.post(
        "/v1/assessments", headers=patient.headers, json={"instrument": "phq9", "answers": answers}
    )
    assert created.status_code == 201, created.text
    [record] = (await client.get("/v1/me/safety-flags", headers=patient.headers)).json()["items"]

    async def exported_flag() -> dict[str, Any]:
        response = await client.get("/v1/me/export?format=fhir", headers=patient.headers)
        assert response.status_code == 200, response.text
        [flag] = Index(response.json()).of("Flag")
        return flag

    flag = await exported_flag()
    assert (flag["id"], flag["status"]) == (record["id"], "active")
    assert "end" not in flag["period"]

    grant = await give_grant(client, patient, therapist, ["assessments:read"])
    token = await mint(client, therapist, grant["id"])
    acknowledged = await client.post(
        f"/v1/patients/{patient.id}/safety-flags/{record['id']}/acknowledgement",
        json={},
        headers=bearer(token),
    )
    assert acknowledged.status_code == 200, acknowledged.text
    [record] = (await client.get("/v1/me/safety-flags", headers=patient.headers)).json()["items"]
    assert record["state"] == "acknowledged"

    flag = await exported_flag()
    assert (flag["id"], flag["status"]) == (record["id"], "inactive")
    assert flag["period"]["end"] == record["acknowledged_at"].replace("Z", "+00:00")
    assert flag["period"]["start"] < flag["period"]["end"]
