"""The kinds of journal entry, in the order they appear in the spec, in sync and in the export.

This list sits above both ``api.journal`` (what every kind shares) and the kinds themselves
(``api.<kind>/resource.py``): the shared package never imports the packages that use it. Every
place that differs by kind (the sync and export schemas, the audit wording, the web page's
labels, the spec's tags, the test helpers) is built from ``RESOURCES``; the README's "Adding a
kind of entry" tells the steps.
"""

from __future__ import annotations

from api.assessments.resource import ASSESSMENTS
from api.checkins.resource import CHECKINS
from api.intentions.resource import INTENTIONS
from api.journal.resource import Resource
from api.reflections.resource import REFLECTIONS
from api.sessions.resource import SESSIONS

RESOURCES: tuple[Resource, ...] = (SESSIONS, INTENTIONS, REFLECTIONS, CHECKINS, ASSESSMENTS)
BY_NAME: dict[str, Resource] = {resource.name: resource for resource in RESOURCES}
