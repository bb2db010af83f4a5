"""The patient's journal as a FHIR R4 Bundle (type `collection`). Pure: export in, dict out.

Mapping: Patient; an Observation per mood check-in (components for mood, anxiety, energy and
sleep); a QuestionnaireResponse and a score Observation per questionnaire (LOINC for PHQ-9 and
GAD-7); a MedicationAdministration (ketamine) per dosing session; a DocumentReference with the
text per intention and per reflection. Grants and the access log are in the JSON export only.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from api.assessments.scoring import DISPLAY_NAME, Instrument
from api.export.schemas import JournalExport

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://kap-journal.example/fhir/CodeSystem/journal"
SURVEY = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}
    ]
}
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
PANEL = {Instrument.PHQ9: "44249-1", Instrument.GAD7: "69737-5"}
TOTAL = {Instrument.PHQ9: "44261-6", Instrument.GAD7: "70274-6"}
KETAMINE = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "6130",
    "display": "ketamine",
}
SCORE_NAMESPACE = uuid.UUID("5b0c3f52-8c1e-4d2f-9a43-2f4d1c7e6a10")


def _local(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": LOCAL, "code": code}], "text": text}


def _text_attachment(title: str, text: str) -> dict[str, Any]:
    return {
        "contentType": "text/plain; charset=utf-8",
        "title": title,
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
    }


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _patient(export: JournalExport) -> dict[str, Any]:
    account = export.account
    return {
        "resourceType": "Patient",
        "id": str(account.id),
        "name": [{"text": account.display_name}],
        "telecom": [{"system": "email", "value": account.email}],
    }


def _checkin(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = []
    for checkin in export.checkins:
        components: list[dict[str, Any]] = [
            {"code": _local("mood", "Mood (0-10)"), "valueInteger": checkin.mood},
        ]
        for code, label, value in (
            ("anxiety", "Anxiety (0-10)", checkin.anxiety),
            ("energy", "Energy (0-10)", checkin.energy),
        ):
            if value is not None:
                components.append({"code": _local(code, label), "valueInteger": value})
        if checkin.sleep_hours is not None:
            components.append(
                {
                    "code": {
                        "coding": [
                            {"system": LOINC, "code": "93832-4", "display": "Sleep duration"}
                        ]
                    },
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
            "code": _local("mood-check-in", "Mood check-in"),
            "subject": subject,
            "effectiveDateTime": checkin.recorded_at.isoformat(),
            "issued": checkin.received_at.isoformat(),
            "component": components,
        }
        if checkin.note:
            observation["note"] = [{"text": checkin.note}]
        resources.append(observation)
    return resources


def _assessments(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = []
    for assessment in export.assessments:
        instrument = assessment.instrument
        name = DISPLAY_NAME[instrument]
        link_ids = (
            PHQ9_ITEMS
            if instrument is Instrument.PHQ9
            else [str(n) for n in range(1, len(assessment.answers) + 1)]
        )
        questionnaire = (
            f"http://loinc.org/q/{PANEL[instrument]}"
            if instrument in PANEL
            else f"https://kap-journal.example/fhir/Questionnaire/{instrument.value}"
        )
        response_id = str(assessment.id)
        resources.append(
            {
                "resourceType": "QuestionnaireResponse",
                "id": response_id,
                "status": "completed",
                "questionnaire": questionnaire,
                "subject": subject,
                "authored": assessment.completed_at.isoformat(),
                "item": [
                    {"linkId": link_id, "answer": [{"valueInteger": answer}]}
                    for link_id, answer in zip(link_ids, assessment.answers, strict=True)
                ],
            }
        )
        code = (
            {
                "coding": [
                    {"system": LOINC, "code": TOTAL[instrument], "display": f"{name} total score"}
                ]
            }
            if instrument in TOTAL
            else _local(f"{instrument.value}-total", f"{name} total score")
        )
        score: dict[str, Any] = {
            "resourceType": "Observation",
            "id": str(uuid.uuid5(SCORE_NAMESPACE, response_id)),
            "status": "final",
            "category": [SURVEY],
            "code": code,
            "subject": subject,
            "effectiveDateTime": assessment.completed_at.isoformat(),
            "valueInteger": assessment.total,
            "interpretation": [{"text": assessment.band.replace("_", " ")}],
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}],
        }
        resources.append(score)
    return resources


def _sessions(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = []
    for session in export.sessions:
        dosage: dict[str, Any] = {
            "route": {"text": session.route.value},
            "text": f"Setting: {session.setting.value}",
        }
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
        resources.append(administration)
    return resources


def _document(
    kind: str, entry_id: str, at: str, text: str, subject: dict[str, str], session_id: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": entry_id,
        "status": "current",
        "type": _local(kind.lower(), kind),
        "subject": subject,
        "date": at,
        "description": f"{kind} written by the patient",
        "content": [{"attachment": _text_attachment(kind, text)}],
    }
    if session_id is not None:
        document["context"] = {"related": [{"reference": f"MedicationAdministration/{session_id}"}]}
    return document


def _writing(export: JournalExport, subject: dict[str, str]) -> list[dict[str, Any]]:
    resources = [
        _document(
            "Intention",
            str(i.id),
            i.set_at.isoformat(),
            f"{i.text}\n\nStatus: {i.status.value}",
            subject,
            i.session_id,
        )
        for i in export.intentions
    ]
    for reflection in export.reflections:
        parts = [reflection.text]
        parts += [f"{p.prompt}\n{p.answer}" for p in reflection.prompts]
        if reflection.emotions:
            parts.append("Emotions: " + ", ".join(reflection.emotions))
        resources.append(
            _document(
                "Reflection",
                str(reflection.id),
                reflection.written_at.isoformat(),
                "\n\n".join(parts),
                subject,
                reflection.session_id,
            )
        )
    return resources


def to_bundle(export: JournalExport) -> dict[str, Any]:
    patient = _patient(export)
    subject = {"reference": f"Patient/{patient['id']}"}
    resources = [
        patient,
        *_sessions(export, subject),
        *_checkin(export, subject),
        *_assessments(export, subject),
        *_writing(export, subject),
    ]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": export.exported_at.isoformat(),
        "entry": [_entry(resource) for resource in resources],
    }
