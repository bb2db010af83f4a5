"""A valid body for every journal resource, and what changes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.resources import RESOURCES as KINDS

RESOURCES = [resource.name for resource in KINDS]
EDITABLE = [resource.name for resource in KINDS if resource.update is not None]


def iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def body(resource: str, **overrides: Any) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "sessions": {
            "started_at": iso(-timedelta(days=1)),
            "route": "sublingual",
            "setting": "home",
            "dose_mg": 100.0,
            "notes": "music, eyeshade",
        },
        "intentions": {"text": "Be gentler with myself", "status": "active"},
        "reflections": {
            "text": "A wide open feeling",
            "prompts": [{"prompt": "What surprised you?", "answer": "How calm it was"}],
            "emotions": ["calm", "grief"],
        },
        "checkins": {"mood": 6, "anxiety": 3, "energy": 5, "sleep_hours": 7.5, "note": "ok day"},
        "assessments": {"instrument": "gad7", "answers": [1, 1, 0, 2, 1, 0, 1]},
    }
    return {**bodies[resource], **overrides}


# A change PATCH accepts, per editable resource.
EDIT: dict[str, dict[str, Any]] = {
    "sessions": {"notes": "edited"},
    "intentions": {"status": "revisited"},
    "reflections": {"text": "edited"},
    "checkins": {"mood": 2},
}
