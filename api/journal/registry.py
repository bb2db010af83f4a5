"""The five journal resources, in the order they appear in the spec and in sync responses."""

from __future__ import annotations

from api.assessments.resource import ASSESSMENTS
from api.checkins.resource import CHECKINS
from api.intentions.resource import INTENTIONS
from api.journal.resource import Resource
from api.reflections.resource import REFLECTIONS
from api.sessions.resource import SESSIONS

RESOURCES: tuple[Resource, ...] = (SESSIONS, INTENTIONS, REFLECTIONS, CHECKINS, ASSESSMENTS)
BY_NAME: dict[str, Resource] = {resource.name: resource for resource in RESOURCES}
