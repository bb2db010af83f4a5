"""The merge rules of POST /v1/sync, against an oracle: random interleavings of two phones' offline
edits and syncs (answers lost at random), through the real app and database.

Each phone keeps what it last pulled and one pending change per entry (as offline-first stores
do: a create absorbs later edits, edits merge, a delete replaces them). A sync pushes the pending
changes and, unless the answer is lost, settles them by the answer and pulls. On a conflict the
patient, shown both, keeps their own change: it is made again against the version now current.

The oracle below is the rule written out on its own (README, "Building an offline app"):
every result's outcome and the server's final entries must be what it says. At the end both
phones sync until nothing is pending, which must take a bounded number of rounds (no sync fails
forever), and both then hold exactly the server's entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import hypothesis
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client
from tests.support.people import Person, register

FIELDS = ("mood", "anxiety")
VALUES = st.integers(min_value=3, max_value=5)  # few values: edits that coincide happen too
Fields = dict[str, int]


@dataclass
class Pending:
    kind: Literal["create", "update", "delete"]
    base: int  # the version it was made against (a create makes version 1)
    fields: Fields = field(default_factory=dict)


# --- the oracle ------------------------------------------------------------------------------------

DELETED = "deleted"


@dataclass
class Oracle:
    """The server as the rules say it should be: id -> (version, fields), or DELETED."""

    entries: dict[str, tuple[int, Fields] | str] = field(default_factory=dict)

    def apply(self, entry_id: str, pending: Pending) -> str:
        state = self.entries.get(entry_id)
        if pending.kind == "delete":
            if state is None or state == DELETED:
                return "replayed"
            assert isinstance(state, tuple)
            if state[0] != pending.base:
                return "conflict"  # a delete never discards an edit it did not see
            self.entries[entry_id] = DELETED
            return "applied"
        if state == DELETED:
            return "conflict"  # deleted meanwhile: the change is not kept
        if state is None:
            if pending.kind == "update":
                return "rejected"
            self.entries[entry_id] = (1, dict(pending.fields))
            return "applied"
        assert isinstance(state, tuple)
        version, stored = state
        holds = all(stored.get(k) == v for k, v in pending.fields.items())
        if pending.kind == "create" and holds:
            return "replayed"  # this very create, answered before
        if version == pending.base:
            self.entries[entry_id] = (version + 1, {**stored, **pending.fields})
            return "applied"
        return "replayed" if holds else "conflict"

    def live(self) -> dict[str, tuple[int, Fields]]:
        return {k: v for k, v in self.entries.items() if isinstance(v, tuple)}


# --- the phones ------------------------------------------------------------------------------------


@dataclass
class Phone:
    person: Person
    known: dict[str, tuple[int, Fields]] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    cursor: str = "0"

    def visible(self) -> list[str]:
        ids = set(self.known) | {i for i, p in self.pending.items() if p.kind == "create"}
        return sorted(i for i in ids if self.pending.get(i, Pending("update", 0)).kind != "delete")

    def create(self, values: Fields) -> None:
        self.pending[str(uuid.uuid4())] = Pending("create", 1, values)

    def edit(self, entry_id: str, name: str, value: int) -> None:
        waiting = self.pending.get(entry_id)
        if waiting is None:
            waiting = self.pending[entry_id] = Pending("update", self.known[entry_id][0])
        waiting.fields[name] = value

    def delete(self, entry_id: str) -> None:
        waiting = self.pending.get(entry_id)
        base = waiting.base if waiting is not None else self.known[entry_id][0]
        self.pending[entry_id] = Pending("delete", base)

    def operations(self) -> list[tuple[str, Pending, dict[str, Any]]]:
        operations = []
        for entry_id, pending in self.pending.items():
            operation: dict[str, Any] = {"op": pending.kind, "resource": "checkins", "id": entry_id}
            if pending.kind != "create":
                operation["if_match"] = f'"{pending.base}"'
            if pending.kind != "delete":
                operation["data"] = dict(pending.fields)
            operations.append((entry_id, pending, operation))
        return operations

    def settle(self, entry_id: str, pending: Pending, result: dict[str, Any]) -> None:
        if result["outcome"] in ("applied", "replayed"):
            if self.pending.get(entry_id) is pending:
                del self.pending[entry_id]
            return
        assert result["outcome"] == "conflict", result
        now = result["current"]
        if now is None:  # deleted elsewhere: nothing left to change
            del self.pending[entry_id]
            return
        # The patient keeps their change, made again against the version shown.
        fields = pending.fields if pending.kind != "create" else dict(pending.fields)
        kind: Literal["update", "delete"] = "delete" if pending.kind == "delete" else "update"
        self.pending[entry_id] = Pending(kind, now["version"], fields)


def as_known(entry: dict[str, Any]) -> tuple[int, Fields]:
    return entry["version"], {name: entry[name] for name in FIELDS}


# --- driving it -----------------------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 1), VALUES, VALUES),
        st.tuples(
            st.just("edit"), st.integers(0, 1), st.integers(0, 5), st.sampled_from(FIELDS), VALUES
        ),
        st.tuples(st.just("delete"), st.integers(0, 1), st.integers(0, 5)),
        st.tuples(st.just("sync"), st.integers(0, 1), st.booleans()),
    ),
    min_size=1,
    max_size=14,
)


async def sync(
    client: httpx.AsyncClient, phone: Phone, oracle: Oracle, *, lost: bool = False
) -> int:
    """Push and (unless the answer is lost) settle and pull; returns how many were pending."""
    operations = phone.operations()
    if operations:
        response = await client.post(
            "/v1/sync",
            json={"operations": [operation for _, _, operation in operations]},
            headers={**phone.person.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        for (entry_id, pending, _), result in zip(operations, results, strict=True):
            assert result["outcome"] == oracle.apply(entry_id, pending), (pending, result)
            hypothesis.event(f"{pending.kind} {result['outcome']}")
            assert result["outcome"] != "rejected", result
            if not lost:
                phone.settle(entry_id, pending, result)
    if lost:
        return len(operations)
    while True:
        response = await client.get(
            "/v1/sync", params={"cursor": phone.cursor}, headers=phone.person.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        for entry in page["changes"]["checkins"]:
            phone.known[entry["id"]] = as_known(entry)
        for entry_id in page["deleted"]["checkins"]:
            phone.known.pop(entry_id, None)
        phone.cursor = page["next_cursor"]
        if not page["has_more"]:
            return len(operations)


async def play(client: httpx.AsyncClient, script: list[tuple[Any, ...]]) -> None:
    patient = await register(client, "patient")
    phones = [Phone(patient), Phone(patient)]
    oracle = Oracle()
    # Two entries both phones hold already, so that most scripts touch the same entries.
    phones[0].create({"mood": 4, "anxiety": 4})
    phones[0].create({"mood": 5, "anxiety": 5})
    for phone in phones:
        await sync(client, phone, oracle)
    for step in script:
        phone = phones[step[1]]
        if step[0] == "create":
            phone.create(dict(zip(FIELDS, step[2:], strict=True)))
        elif step[0] == "sync":
            await sync(client, phone, oracle, lost=step[2])
        elif visible := phone.visible():
            entry_id = visible[step[2] % len(visible)]
            if step[0] == "edit":
                phone.edit(entry_id, step[3], step[4])
            else:
                phone.delete(entry_id)
    # Everything drains: each phone's queue empties within a few rounds, answers arriving.
    for _ in range(3):
        for phone in phones:
            await sync(client, phone, oracle)
    assert [phone.pending for phone in phones] == [{}, {}]
    for phone in phones:
        await sync(client, phone, oracle)
    server = {entry_id: (version, fields) for entry_id, (version, fields) in oracle.live().items()}
    assert phones[0].known == phones[1].known == server
    # And the server's own rows are the oracle's, read through the list route.
    response = await client.get("/v1/checkins?limit=200", headers=patient.headers)
    assert {item["id"]: as_known(item) for item in response.json()["items"]} == server


def test_two_phones_offline_end_as_the_rules_say(settings: Settings, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(make_settings(tmp_path, settings.database_url))
    stack = contextlib.AsyncExitStack()
    try:
        loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
        client = loop.run_until_complete(
            stack.enter_async_context(
                conforming_client(transport=httpx.ASGITransport(app=app), base_url="http://t")
            )
        )

        @hypothesis.settings(
            max_examples=30, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
        )
        @hypothesis.given(script=steps)
        def run(script: list[tuple[Any, ...]]) -> None:
            loop.run_until_complete(play(client, script))

        run()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
