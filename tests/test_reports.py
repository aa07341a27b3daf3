"""Reports (hub/reports/service.py, hub/reports/routes.py) against hand-computed figures.

Three conversations over two days, applied by the persist group from stream events whose ids
(and so times) the test chooses. Days are Europe/Istanbul's (UTC+3), so a message at 22:30 UTC
belongs to the next day. On SQLite and on Postgres, through the API as the admin console
calls it, JSON and CSV.

    A (channel Site, ada's): in 06:00Z day 1; ada replies 06:10Z (first response 600 s), a
      note, an auto-reply; resolved by ada 08:00Z (7,200 s after it opened).
    B (channel Second, team Billing, bo's): in 22:30Z day 1 (= 01:30 day 2 local); bo
      replies 23:00Z (1,800 s); in again 00:00Z day 2. Not resolved.
    C (channel Site, nobody's): in 10:00Z day 2; resolved by bo 12:00Z (7,200 s), reopened,
      resolved again 14:00Z (14,400 s), "resolved" once more 14:30Z (already: not counted).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.accounts.auth import VisitorClaims
from hub.bus import Event
from hub.realtime.ingress import Ingress, message_event
from hub.services import Services
from hub.settings import Settings
from hub.storage.store import Store
from hub.web.app import create_app
from hub.workers import persist
from schemas.message import DeliveryStatus, Direction, Sender, SenderType
from tests.helpers import Tenant, backends, prepare
from tests.test_api import error_code

DAY1, DAY2 = "2026-11-02", "2026-11-03"
ZONE = "Europe/Istanbul"


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+00:00")


def stream_id(when: datetime, seq: int = 0) -> str:
    return f"{int(when.timestamp() * 1000)}-{seq}"


@dataclass
class World:
    client: TestClient
    tenant: Tenant
    ids: dict[str, str]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, settings: Settings) -> Iterator[World]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    ids = asyncio.run(seed(settings, acme))
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        yield World(client, acme, ids)


async def seed(settings: Settings, acme: Tenant) -> dict[str, str]:
    svc = Services.build(settings)
    await svc.bus.start()
    try:
        return await _seed(svc, acme)
    finally:
        await svc.close()


def ada_email(acme: Tenant) -> str:
    return f"ada.{acme.workspace_id.hex[:8]}@acme.example"


async def _seed(svc: Services, acme: Tenant) -> dict[str, str]:
    store: Store = svc.store
    workspace = acme.workspace_id
    second = await store.create_channel(workspace, "webchat", "=Second", allowed_origins=["*"])
    from hub.accounts.members import Actor

    actor = Actor(acme.admin_id, None)
    # Accounts are global: each run's workspace gets its own people.
    ada = await store.add_member(workspace, ada_email(acme), "p" * 12, "agent", "Ada")
    bo = await store.add_member(
        workspace, f"bo.{workspace.hex[:8]}@acme.example", "p" * 12, "agent", "Bo"
    )
    from hub.routing.teams import TeamBody

    team = await svc.teams.create(workspace, actor, TeamBody(name="Billing"))
    refs = {
        name: Ingress.visitor_conversation(VisitorClaims(workspace, channel, name))
        for name, channel in (("a", acme.channel_id), ("b", second.id), ("c", acme.channel_id))
    }
    agent = {
        "ada": Sender(type=SenderType.AGENT, id=str(ada.id), name="Ada"),
        "bo": Sender(type=SenderType.AGENT, id=str(bo.id), name="Bo"),
        "hub": Sender(type=SenderType.SYSTEM, id="hub"),
    }
    events: list[Event] = []

    def message(conv: str, when: datetime, who: str | None, *, note: bool = False) -> None:
        ref = refs[conv]
        inbound = who is None
        made = ref.message(
            f"{conv}-{len(events)}",
            f"c{len(events)}",
            "text",
            [],
            note=note,
            direction=Direction.IN if inbound else Direction.OUT,
            status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.SENT,
            sender=Sender(type=SenderType.CONTACT) if inbound else agent[who],
        ).model_copy(update={"sent_at": when})
        data = message_event(made, {"id": str(ref.contact_id), "name": None} if inbound else None)
        events.append(Event(stream_id(when), "message.created", data, str(ref.id)))

    def change(conv: str, when: datetime, by: str, **changes: Any) -> None:
        user = {"ada": ada.id, "bo": bo.id}[by]
        data = {"conversation_id": str(refs[conv].id), "changes": changes, "by": str(user)}
        events.append(Event(stream_id(when, 1), "conversation.updated", json.dumps(data)))

    message("a", at(DAY1, "06:00"), None)
    change("a", at(DAY1, "06:05"), "ada", assignee_id=str(ada.id))
    message("a", at(DAY1, "06:10"), "ada")
    message("a", at(DAY1, "06:20"), "ada", note=True)
    message("a", at(DAY1, "06:30"), "hub")
    change("a", at(DAY1, "08:00"), "ada", status="resolved")
    message("b", at(DAY1, "22:30"), None)
    change("b", at(DAY1, "22:40"), "bo", assignee_id=str(bo.id), team_id=str(team.id))
    message("b", at(DAY1, "23:00"), "bo")
    message("b", at(DAY2, "00:00"), None)
    message("c", at(DAY2, "10:00"), None)
    change("c", at(DAY2, "12:00"), "bo", status="resolved")
    change("c", at(DAY2, "13:00"), "bo", status="open")
    change("c", at(DAY2, "14:00"), "bo", status="resolved")
    change("c", at(DAY2, "14:30"), "bo", status="resolved")
    events.sort(key=lambda e: e.id)
    for _ in range(2):  # at least once: a batch applied again changes nothing
        await persist.apply(svc.store.sessions, str(workspace), events)
    return {
        "ada": str(ada.id),
        "bo": str(bo.id),
        "team": str(team.id),
        "site": str(acme.channel_id),
        "second": str(second.id),
    }


def report(world: World, by: str, **extra: str) -> dict[str, Any]:
    params = {"from": DAY1, "to": DAY2, "by": by, "timezone": ZONE} | extra
    answer = world.client.get("/api/reports", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


FIGURES = (
    "conversations_opened",
    "conversations_resolved",
    "first_responses",
    "first_response_avg_s",
    "resolution_avg_s",
    "messages_in",
    "messages_out",
)


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in FIGURES)


def test_by_day_in_the_time_zone(world: World) -> None:
    got = report(world, "day")
    assert (
        got["since"] == "2026-11-01T21:00:00+00:00" and got["until"] == "2026-11-03T21:00:00+00:00"
    )
    rows = {row["key"]: figures(row) for row in got["rows"]}
    #                 opened resolved frt  frt avg  res avg  in  out
    assert rows == {
        DAY1: (1, 1, 1, 600.0, 7200.0, 1, 2),
        DAY2: (2, 2, 1, 1800.0, 10800.0, 3, 1),
    }
    assert figures(got["totals"]) == (3, 3, 2, 1200.0, 9600.0, 4, 3)
    # In UTC, B's first message falls on day 1 instead.
    utc = {
        row["key"]: row["conversations_opened"]
        for row in report(world, "day", timezone="UTC")["rows"]
    }
    assert utc == {DAY1: 2, DAY2: 1}


def test_by_channel_team_and_agent(world: World) -> None:
    ids = world.ids
    channels = {
        row["key"]: (row["label"], *figures(row)) for row in report(world, "channel")["rows"]
    }
    assert channels == {
        ids["site"]: ("Site", 2, 3, 1, 600.0, 9600.0, 2, 2),
        ids["second"]: ("=Second", 1, 0, 1, 1800.0, None, 2, 1),
    }
    teams = {row["key"]: (row["label"], *figures(row)) for row in report(world, "team")["rows"]}
    assert teams == {
        ids["team"]: ("Billing", 1, 0, 1, 1800.0, None, 2, 1),
        "none": ("—", 2, 3, 1, 600.0, 9600.0, 2, 2),
    }
    agents = {row["key"]: (row["label"], *figures(row)) for row in report(world, "agent")["rows"]}
    assert agents == {
        ids["ada"]: ("Ada", 1, 1, 1, 600.0, 7200.0, 1, 1),
        ids["bo"]: ("Bo", 1, 2, 1, 1800.0, 10800.0, 2, 1),
        "hub": ("Automatic", 0, 0, 0, None, None, 0, 1),
        "none": ("—", 1, 0, 0, None, None, 1, 0),
    }


def test_csv_has_the_same_rows_and_keeps_names_from_becoming_formulas(world: World) -> None:
    params = {"from": DAY1, "to": DAY2, "by": "channel", "timezone": ZONE, "format": "csv"}
    answer = world.client.get("/api/reports", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["label"] for r in rows] == ["'=Second", "Site", "Total"]
    assert rows[-1]["conversations_opened"] == "3" and rows[-1]["first_response_avg_s"] == "1200.0"
    assert rows[0]["resolution_avg_s"] == ""  # nothing to average


def test_bad_periods_and_who_may_see_reports(world: World) -> None:
    client = world.client
    for bad in (
        {"from": DAY2, "to": DAY1},
        {"from": "2025-01-01", "to": "2026-01-05"},
        {"from": "yesterday", "to": DAY2},
        {"to": DAY2},
    ):
        answer = client.get("/api/reports", params=bad)
        assert answer.status_code == 400 and error_code(answer) == "invalid_period", bad
    zone = client.get("/api/reports", params={"from": DAY1, "to": DAY2, "timezone": "Mars/Base"})
    assert zone.status_code == 400 and error_code(zone) == "invalid_timezone"
    assert (
        client.get("/api/reports", params={"from": DAY1, "to": DAY2, "by": "x"}).status_code == 400
    )
    ada = {"email": ada_email(world.tenant), "password": "p" * 12}
    login = client.post("/api/auth/login", json=ada)
    agent = {"authorization": "", "cookie": f"hub_session={login.cookies['hub_session']}"}
    refused = client.get("/api/reports", params={"from": DAY1, "to": DAY2}, headers=agent)
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    assert json.loads(json.dumps(report(world, "day")["totals"]))["conversations_opened"] == 3


def test_an_empty_period_has_every_day_and_no_averages(world: World) -> None:
    got = report(world, "day", **{"from": "2026-10-01", "to": "2026-10-03"})
    assert [row["key"] for row in got["rows"]] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert figures(got["totals"]) == (0, 0, 0, None, None, 0, 0)
