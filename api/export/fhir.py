"""The patient's journal as a FHIR R4 Bundle (type `collection`) an EHR can file. Pure: export in,
dict out.

Mapping (the README's integrator section has it as a table):

- the project's `CodeSystem` (canonical `CODE_SYSTEM_URL`), first, so every local code the Bundle
  uses is defined inside it;
- `Patient`;
- a `MedicationAdministration` (ketamine, RxNorm 6130) per dosing session, the route coded in
  SNOMED CT (`ROUTE`);
- an `Observation` per mood check-in: mood, anxiety and energy as components in the project's code
  system, each a 0-10 `valueQuantity` with its direction in the component's `referenceRange`;
  sleep as LOINC 93832-4 in hours;
- per questionnaire: a `QuestionnaireResponse` whose linkIds are the item codes; a panel
  `Observation` (LOINC panel code) whose `hasMember` are one `Observation` per item and the total
  score `Observation`, the band as a coded interpretation; PCL-5's cluster counts as components of
  its total;
- a `Flag` per PHQ-9 whose item 9 is above 0, with the safety flag's own id and state: `active`
  while it is open, `inactive` from its acknowledgement (the end of its `period`);
- a `DocumentReference` with the text per intention and per reflection.

Every reference is to a `urn:uuid:` fullUrl inside the Bundle. Entries the patient marked private
carry `meta.security` R (restricted, HL7 v3 Confidentiality), so an importing system can keep them
from clinicians. Grants and the access log are in the JSON export only.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

from api.assessments.schemas import AssessmentRead
from api.assessments.scoring import (
    DISPLAY_NAME,
    ITEM_COUNT,
    ITEM_MAX,
    PCL5_ENDORSED_ANSWER,
    PHQ9_SAFETY_ITEM,
    Instrument,
    band_of,
)
from api.checkins.schemas import CheckinRead
from api.export.schemas import JournalExport
from api.intentions.schemas import IntentionRead
from api.models import Route
from api.reflections.schemas import ReflectionRead
from api.safety_flags.schemas import FlagState, SafetyFlagRead
from api.sessions.schemas import DosingSessionRead

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
# The project's own code system: a stable canonical of the project, the same in every deployment
# (it names the codes; it does not need to resolve). Its content travels in each Bundle.
CODE_SYSTEM_URL = "https://kap-journal.org/fhir/CodeSystem/journal"
CODE_SYSTEM_VERSION = "1"
QUESTIONNAIRE_BASE = "https://kap-journal.org/fhir/Questionnaire"
SURVEY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
RESTRICTED = {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}

# LOINC. PHQ-9 and GAD-7 panels, items (in the order the instruments ask them) and totals: the
# LOINC panels 44249-1 and 69737-5 as published by LOINC (loinc.org/44249-1, loinc.org/69737-5),
# as listed in the product description.
# PCL-5: LOINC has the panel 101697-1 "Post traumatic stress disorder checklist - civilian version
# DSM-5 [PCL-5]" (class PANEL.SURVEY.MTLHLTH, added in LOINC 2.75;
# https://findacode.com/loinc/101697-1--post-traumatic-stress-disorder-checklist-civilian-version-dsm-5-pcl-5.html)
# and the total 101698-9 "PTSD PCL-5 score [PCL-5]"
# (https://www.healthassure.in/codes/loinc-101698-9-ptsd-pcl-5-score-pcl-5). No public source we
# could cite lists item codes of that panel, so PCL-5 items use this project's code system.
PANEL: dict[Instrument, tuple[str, str]] = {
    Instrument.PHQ9: ("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
    Instrument.GAD7: ("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
    Instrument.PCL5: (
        "101697-1",
        "Post traumatic stress disorder checklist - civilian version DSM-5 [PCL-5]",
    ),
}
TOTAL: dict[Instrument, tuple[str, str]] = {
    Instrument.PHQ9: (
        "44261-6",
        "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    ),
    Instrument.GAD7: (
        "70274-6",
        "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
    ),
    Instrument.PCL5: ("101698-9", "PTSD PCL-5 score [PCL-5]"),
}
LOINC_ITEMS: dict[Instrument, tuple[str, ...]] = {
    Instrument.PHQ9: (
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ),
    Instrument.GAD7: (
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ),
}
# The LOINC answers of the PHQ-9 and GAD-7 items (issue 17), for each score 0-3 in order.
FREQUENCY_ANSWERS: tuple[tuple[str, str], ...] = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)
SLEEP_DURATION = ("93832-4", "Sleep duration")
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"

# SNOMED CT route of administration, from FHIR R4's "SNOMED CT Route Codes" value set
# (http://hl7.org/fhir/R4/valueset-route-codes.html, descendants of 284009009). `other` has no
# code: its text says so.
ROUTE: dict[Route, tuple[str, str]] = {
    Route.IV: ("47625008", "Intravenous route"),
    Route.IM: ("78421000", "Intramuscular route"),
    Route.SUBLINGUAL: ("37839007", "Sublingual route"),
    Route.ORAL: ("26643006", "Oral route"),
    Route.INTRANASAL: ("46713006", "Nasal route"),
}
KETAMINE = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "6130",
    "display": "ketamine",
}
# Ids of resources the journal has no row for (item and score Observations, Flags, the CodeSystem)
# are derived from the entry's id, so the same export names them the same way every time.
DERIVED_NAMESPACE = uuid.UUID("5b0c3f52-8c1e-4d2f-9a43-2f4d1c7e6a10")
CODE_SYSTEM_ID = str(uuid.uuid5(DERIVED_NAMESPACE, CODE_SYSTEM_URL))

# The three 0-10 self-ratings of a check-in: code, display, and what the top of the scale means.
SCALES: tuple[tuple[str, str, str], ...] = (
    ("mood", "Mood", "10 is the best mood, 0 the worst"),
    ("anxiety", "Anxiety", "10 is the most anxious, 0 not anxious at all"),
    ("energy", "Energy", "10 is the most energy, 0 none"),
)
PCL5_CLUSTERS: tuple[tuple[str, str], ...] = (
    ("B", "intrusion"),
    ("C", "avoidance"),
    ("D", "negative alterations in cognitions and mood"),
    ("E", "alterations in arousal and reactivity"),
)
SAFETY_FLAG_CODE = "phq9-item9-positive"


def _derived(entry_id: str, part: str) -> str:
    return str(uuid.uuid5(DERIVED_NAMESPACE, f"{entry_id}/{part}"))


def _ref(resource_id: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _local(code: str) -> dict[str, Any]:
    display = _CONCEPTS[code][0]
    return {
        "coding": [{"system": CODE_SYSTEM_URL, "code": code, "display": display}],
        "text": display,
    }


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _band_code(instrument: Instrument, band: str) -> str:
    return f"{instrument.value}-{band.replace('_', '-')}"


def _bands(instrument: Instrument) -> list[tuple[str, int, int]]:
    """Each band of an instrument with its lowest and highest total, from the scoring rules."""
    found: list[tuple[str, int, int]] = []
    for total in range(ITEM_COUNT[instrument] * ITEM_MAX[instrument] + 1):
        band = band_of(instrument, total)
        if found and found[-1][0] == band:
            found[-1] = (band, found[-1][1], total)
        else:
            found.append((band, total, total))
    return found


def _concepts() -> dict[str, tuple[str, str]]:
    """Every code of the project's code system: code -> (display, definition)."""
    concepts: dict[str, tuple[str, str]] = {
        "mood-check-in": (
            "Mood check-in",
            "A self-rating of mood, and optionally anxiety, energy and sleep, at a moment the patient chose.",
        ),
    }
    for code, display, direction in SCALES:
        concepts[code] = (
            f"{display} (0-10)",
            f"Self-rated {display.lower()} on an 11-point scale from 0 to 10: {direction}.",
        )
    concepts["intention"] = (
        "Intention",
        "An intention the patient set for their ketamine-assisted therapy.",
    )
    concepts["reflection"] = ("Reflection", "A reflection the patient wrote during integration.")
    for number in range(1, ITEM_COUNT[Instrument.PCL5] + 1):
        concepts[f"pcl5-item-{number}"] = (
            f"PCL-5 item {number}",
            f"Answer to item {number} of the PTSD Checklist for DSM-5 (0 not at all - 4 extremely).",
        )
    for cluster, name in PCL5_CLUSTERS:
        concepts[f"pcl5-cluster-{cluster.lower()}"] = (
            f"PCL-5 cluster {cluster} endorsed items",
            f"Number of items of DSM-5 cluster {cluster} ({name}) answered "
            f"{PCL5_ENDORSED_ANSWER} (moderately) or more.",
        )
    concepts["pcl5-provisional-diagnosis"] = (
        "PCL-5 provisional DSM-5 diagnosis pattern",
        "At least 1 B, 1 C, 2 D and 2 E items endorsed. A screening signal, not a diagnosis.",
    )
    for instrument in Instrument:
        name = DISPLAY_NAME[instrument]
        for band, low, high in _bands(instrument):
            label = band.replace("_", " ")
            concepts[_band_code(instrument, band)] = (
                f"{name} {label}",
                f"{name} total score {low}-{high}.",
            )
    concepts[SAFETY_FLAG_CODE] = (
        "PHQ-9 item 9 above 0",
        "The patient answered PHQ-9 item 9 (thoughts of being better off dead or of self-harm) "
        "above 'not at all'.",
    )
    return concepts


_CONCEPTS = _concepts()


def code_system() -> dict[str, Any]:
    """The project's CodeSystem resource: every local code an export uses, defined."""
    return {
        "resourceType": "CodeSystem",
        "id": CODE_SYSTEM_ID,
        "url": CODE_SYSTEM_URL,
        "version": CODE_SYSTEM_VERSION,
        "name": "KapJournal",
        "title": "KAP integration journal codes",
        "status": "active",
        "experimental": False,
        "publisher": "KAP integration journal",
        "description": "Codes of the KAP integration journal for what LOINC and SNOMED CT do not cover: "
        "the 0-10 self-ratings of a mood check-in (with the direction of each scale), the kinds of "
        "journal writing, PCL-5 items and cluster counts, questionnaire severity bands and the "
        "PHQ-9 item 9 safety flag.",
        "caseSensitive": True,
        "content": "complete",
        "count": len(_CONCEPTS),
        "concept": [
            {"code": code, "display": display, "definition": definition}
            for code, (display, definition) in _CONCEPTS.items()
        ],
    }


def _text_attachment(title: str, text: str) -> dict[str, Any]:
    return {
        "contentType": "text/plain; charset=utf-8",
        "title": title,
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
    }


def _restricted(resource: dict[str, Any], private: bool) -> dict[str, Any]:
    if private:
        resource["meta"] = {"security": [RESTRICTED]}
    return resource


def _patient(export: JournalExport) -> dict[str, Any]:
    account = export.account
    return {
        "resourceType": "Patient",
        "id": str(account.id),
        "name": [{"text": account.display_name}],
        "telecom": [{"system": "email", "value": account.email}],
    }


def _scale(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def _checkins(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = []
    for checkin in export.entries(CheckinRead):
        components: list[dict[str, Any]] = []
        for (code, _display, direction), value in zip(
            SCALES, (checkin.mood, checkin.anxiety, checkin.energy), strict=True
        ):
            if value is None:
                continue
            components.append(
                {
                    "code": _local(code),
                    "valueQuantity": _scale(value),
                    "referenceRange": [
                        {"low": _scale(0), "high": _scale(10), "text": f"0-10: {direction}"}
                    ],
                }
            )
        if checkin.sleep_hours is not None:
            components.append(
                {
                    "code": _loinc(*SLEEP_DURATION),
                    "valueQuantity": {
                        "value": checkin.sleep_hours,
                        "unit": "h",
                        "system": UCUM,
                        "code": "h",
                    },
                }
            )
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": str(checkin.id),
            "status": "final",
            "category": [SURVEY],
            "code": _local("mood-check-in"),
            "subject": subject,
            "effectiveDateTime": checkin.recorded_at.isoformat(),
            "issued": checkin.received_at.isoformat(),
            "component": components,
        }
        if checkin.note:
            observation["note"] = [{"text": checkin.note}]
        resources.append(_restricted(observation, checkin.private))
    return resources


def _item_codes(instrument: Instrument) -> list[dict[str, str]]:
    """The code of each item, in order: LOINC where LOINC has one, else the project's."""
    if instrument in LOINC_ITEMS:
        return [{"system": LOINC, "code": code} for code in LOINC_ITEMS[instrument]]
    return [
        {"system": CODE_SYSTEM_URL, "code": f"pcl5-item-{n}", "display": f"PCL-5 item {n}"}
        for n in range(1, ITEM_COUNT[instrument] + 1)
    ]


def _answer(instrument: Instrument, answer: int) -> dict[str, Any]:
    """An answer as a Questionnaire answer value: the LOINC answer where there is one."""
    if instrument in LOINC_ITEMS:
        code, display = FREQUENCY_ANSWERS[answer]
        return {
            "valueCoding": {
                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": answer}],
                "system": LOINC,
                "code": code,
                "display": display,
            }
        }
    return {"valueInteger": answer}


def _questionnaire(instrument: Instrument) -> str:
    # LOINC-based questionnaires are named by LOINC's panel (as LHC-Forms and the NLM form
    # builder do); PCL-5 items are ours, so the questionnaire that asks them is too.
    if instrument in LOINC_ITEMS:
        return f"http://loinc.org/q/{PANEL[instrument][0]}"
    return f"{QUESTIONNAIRE_BASE}/{instrument.value}"


def _flag_state(flag: SafetyFlagRead | None) -> dict[str, Any]:
    """A Flag's status and period from the safety-flag record: `active` while it is open,
    `inactive` from its acknowledgement on. A questionnaire with no record (never expected: one
    is raised with every such PHQ-9) stays `active`, so a flag is never lost by export."""
    if flag is None or flag.state is FlagState.OPEN or flag.acknowledged_at is None:
        return {"status": "active"}
    return {"status": "inactive", "period_end": flag.acknowledged_at.isoformat()}


def _assessment(
    assessment: AssessmentRead, subject: dict[str, str], flag: SafetyFlagRead | None = None
) -> list[dict[str, Any]]:
    instrument = assessment.instrument
    name = DISPLAY_NAME[instrument]
    entry_id = str(assessment.id)
    when = assessment.completed_at.isoformat()
    codes = _item_codes(instrument)
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": entry_id,
        "status": "completed",
        "questionnaire": _questionnaire(instrument),
        "subject": subject,
        "authored": when,
        "item": [
            {"linkId": code["code"], "answer": [_answer(instrument, answer)]}
            for code, answer in zip(codes, assessment.answers, strict=True)
        ],
    }
    derived_from = [_ref(entry_id)]

    def observation(part: str, code: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": _derived(entry_id, part),
            "status": "final",
            "category": [SURVEY],
            "code": code,
            "subject": subject,
            "effectiveDateTime": when,
            "derivedFrom": derived_from,
            **fields,
        }

    items = []
    for number, (code, answer) in enumerate(zip(codes, assessment.answers, strict=True), start=1):
        concept = {"coding": [code], "text": f"{name} item {number}"}
        if instrument in LOINC_ITEMS:
            value = _answer(instrument, answer)["valueCoding"]
            items.append(
                observation(
                    f"item/{number}",
                    concept,
                    valueCodeableConcept={"coding": [value], "text": value["display"]},
                )
            )
        else:
            items.append(observation(f"item/{number}", concept, valueInteger=answer))
    band = _band_code(instrument, assessment.band)
    total = observation(
        "total",
        _loinc(*TOTAL[instrument]),
        valueInteger=assessment.total,
        interpretation=[_local(band)],
    )
    if instrument is Instrument.PCL5 and assessment.clusters is not None:
        total["component"] = [
            {
                "code": _local(f"pcl5-cluster-{cluster.lower()}"),
                "valueInteger": dict(assessment.clusters)[cluster],
            }
            for cluster, _name in PCL5_CLUSTERS
        ] + [
            {
                "code": _local("pcl5-provisional-diagnosis"),
                "valueBoolean": bool(assessment.provisional_diagnosis),
            }
        ]
    panel = observation(
        "panel",
        _loinc(*PANEL[instrument]),
        hasMember=[_ref(member["id"]) for member in [*items, total]],
    )
    resources = [response, panel, *items, total]
    if instrument is Instrument.PHQ9 and assessment.answers[PHQ9_SAFETY_ITEM - 1] > 0:
        state = _flag_state(flag)
        period = {"start": when}
        if "period_end" in state:
            period["end"] = state["period_end"]
        resources.append(
            {
                "resourceType": "Flag",
                "id": str(flag.id) if flag is not None else _derived(entry_id, "flag"),
                "status": state["status"],
                "category": [
                    {
                        "coding": [
                            {"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}
                        ]
                    }
                ],
                "code": _local(SAFETY_FLAG_CODE),
                "subject": subject,
                "period": period,
                # R4 Flag has no evidence element; the core flag-detail extension points at it.
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/flag-detail",
                        "valueReference": _ref(entry_id),
                    }
                ],
            }
        )
    return [_restricted(resource, assessment.private) for resource in resources]


def _sessions(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = []
    for session in export.entries(DosingSessionRead):
        route: dict[str, Any] = {"text": session.route.value}
        if session.route in ROUTE:
            code, display = ROUTE[session.route]
            route["coding"] = [{"system": SNOMED, "code": code, "display": display}]
        dosage: dict[str, Any] = {"route": route, "text": f"Setting: {session.setting.value}"}
        if session.dose_mg is not None:
            dosage["dose"] = {"value": session.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
        administration: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": str(session.id),
            "status": "completed",
            "medicationCodeableConcept": {"coding": [KETAMINE], "text": "Ketamine"},
            "subject": subject,
            "effectiveDateTime": session.started_at.isoformat(),
            "dosage": dosage,
        }
        if session.notes:
            administration["note"] = [{"text": session.notes}]
        resources.append(_restricted(administration, session.private))
    return resources


def _document(
    kind: str,
    entry: IntentionRead | ReflectionRead,
    at: str,
    text: str,
    subject: dict[str, str],
    sessions: set[str],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": str(entry.id),
        "status": "current",
        "type": _local(kind),
        "subject": subject,
        "date": at,
        "description": f"{_CONCEPTS[kind][0]} written by the patient",
        "content": [{"attachment": _text_attachment(_CONCEPTS[kind][0], text)}],
    }
    # Only to a session in this Bundle, so every reference resolves inside it.
    if entry.session_id is not None and str(entry.session_id) in sessions:
        document["context"] = {"related": [_ref(str(entry.session_id))]}
    return _restricted(document, entry.private)


def _writing(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    sessions = {str(s.id) for s in export.entries(DosingSessionRead)}
    resources = [
        _document(
            "intention",
            i,
            i.set_at.isoformat(),
            f"{i.text}\n\nStatus: {i.status.value}",
            subject,
            sessions,
        )
        for i in export.entries(IntentionRead)
    ]
    for reflection in export.entries(ReflectionRead):
        parts = [reflection.text]
        parts += [f"{p.prompt}\n{p.answer}" for p in reflection.prompts]
        if reflection.emotions:
            parts.append("Emotions: " + ", ".join(reflection.emotions))
        resources.append(
            _document(
                "reflection",
                reflection,
                reflection.written_at.isoformat(),
                "\n\n".join(parts),
                subject,
                sessions,
            )
        )
    return resources


def _entries(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]


def to_bundle(export: JournalExport) -> dict[str, Any]:
    patient = _patient(export)
    subject = _ref(patient["id"])
    flags = {flag.assessment_id: flag for flag in export.safety_flags}
    resources = [
        code_system(),
        patient,
        *_sessions(export, subject),
        *_checkins(export, subject),
        *(
            r
            for a in export.entries(AssessmentRead)
            for r in _assessment(a, subject, flags.get(a.id))
        ),
        *_writing(export, subject),
    ]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": export.exported_at.isoformat(),
        "entry": _entries(resources),
    }
