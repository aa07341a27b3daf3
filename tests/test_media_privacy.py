"""Privacy covers the stored files (hub.privacy.erasure, hub.privacy.retention,
hub.channels.purge, hub.workers.persist, hub.privacy.export): files put into conversations
through the REST uploads are deleted from the media store with what they belong to, and
another conversation's stay; the export links them for the admin. Every test runs on both
stores: the filesystem, and S3 against a real S3-API server (moto's) on loopback."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from adapters.base import ChannelContext, MessageChange
from hub.media.files import FileMediaStore
from hub.privacy.erasure import STEPS, Target
from hub.privacy.retention import Retention
from hub.services import Services
from hub.settings import Settings
from hub.web.app import create_app
from schemas.events import MessageChanges, MessageUpdated
from schemas.message import (
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    utc_now,
)
from tests.helpers import ORIGIN, Tenant, prepare
from tests.servers import new_bucket, s3_environ
from tests.test_media_api import PDF, jpeg_with_location
from tests.test_widget_api import wait_for

BASE = "https://hub.example"
S3_PREFIX = "hub"


@dataclass
class Env:
    client: TestClient
    acme: Tenant
    globex: Tenant
    settings: Settings
    s3: tuple[str, str] | None  # the server's endpoint and the bucket, for S3
    visitors: dict[str, tuple[Tenant, str]] = field(default_factory=dict)  # token -> where

    @property
    def services(self) -> Services:
        value: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return value

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.client.portal.call(run)  # type: ignore[union-attr]

    def admin(self, tenant: Tenant) -> dict[str, str]:
        return {"authorization": f"Bearer {tenant.api_token}"}

    # What the store holds, listed by the store's own means: the directory, or the bucket.

    def keys(self) -> set[str]:
        if self.s3 is None:
            store = self.services.library.store
            assert isinstance(store, FileMediaStore)
            data = store.root / "data"
            return {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
        endpoint, bucket = self.s3
        listed = httpx.get(
            f"{endpoint}/{bucket}",
            params={"list-type": "2", "prefix": S3_PREFIX + "/", "max-keys": "1000"},
            timeout=10,
        )
        listed.raise_for_status()
        assert "<IsTruncated>true</IsTruncated>" not in listed.text
        found = re.findall(r"<Key>([^<]+)</Key>", listed.text)
        return {key.removeprefix(S3_PREFIX + "/") for key in found}

    def of(self, tenant: Tenant, conversation_id: str) -> set[str]:
        """The keys of one conversation's files and thumbnails."""
        prefix = f"w/{tenant.workspace_id}/c/{conversation_id}/"
        return {key for key in self.keys() if key.startswith(prefix)}

    # Files put into conversations through the REST API

    def visitor(self, tenant: Tenant, public_key: str | None = None) -> tuple[str, str]:
        self.client.cookies.clear()
        answer = self.client.post(
            "/api/widget/token",
            json={"channel": public_key or tenant.public_key},
            headers={"origin": ORIGIN},
        )
        assert answer.status_code == 200, answer.text
        token, conversation_id = answer.json()["token"], answer.json()["conversation_id"]
        self.visitors[token] = (tenant, conversation_id)
        return token, conversation_id

    def visitor_upload(
        self, token: str, files: list[tuple[str, bytes]], client_id: str
    ) -> dict[str, Any]:
        answer = self.client.post(
            "/api/widget/messages",
            data={"client_id": client_id},
            files=[("attachments", (name, data)) for name, data in files],
            headers={"origin": ORIGIN, "authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202, answer.text
        tenant, conversation_id = self.visitors[token]
        return self.message(tenant, conversation_id, client_id)

    def agent_upload(
        self, tenant: Tenant, conversation_id: str, files: list[tuple[str, bytes]], client_id: str
    ) -> dict[str, Any]:
        answer = self.client.post(
            f"/api/conversations/{conversation_id}/messages",
            data={"client_id": client_id, "text": "here you are"},
            files=[("attachments", (name, data)) for name, data in files],
            headers=self.admin(tenant),
        )
        assert answer.status_code == 202, answer.text
        return self.message(tenant, conversation_id, client_id)

    def message(self, tenant: Tenant, conversation_id: str, client_id: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            answer = self.client.get(
                f"/api/conversations/{conversation_id}/messages", headers=self.admin(tenant)
            )
            items = answer.json()["items"] if answer.status_code == 200 else []
            return next((m for m in items if m["client_id"] == client_id), None)

        value: dict[str, Any] = wait_for(found, 10)
        return value


def keys_of(message: dict[str, Any], tenant: Tenant) -> set[str]:
    """Where a message's files (and an image's thumbnail) are kept."""
    base = f"w/{tenant.workspace_id}/c/{message['conversation_id']}"
    keys = set()
    for attachment in message["attachments"]:
        keys.add(f"{base}/f/{attachment['file']}")
        if attachment.get("thumbnail"):
            keys.add(f"{base}/t/{attachment['file']}")
    return keys


@pytest.fixture(params=["files", "s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    environ = {
        "HUB_SECRET_KEY": "test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_DATA_DIR": str(tmp_path),
    }
    s3 = None
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = new_bucket(endpoint)
        environ |= s3_environ(endpoint, bucket, S3_PREFIX)
        s3 = (endpoint, bucket)
    settings = Settings.from_env(environ).with_overrides(
        public_url=BASE,
        deletion_lease_s=2.0,  # short, for the take-over test; long enough under load
    )
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
        yield Env(client, acme, globex, settings, s3)


def served(env: Env, tenant: Tenant, message: dict[str, Any]) -> list[int]:
    """The status of each of the message's files fetched by the workspace's admin."""
    return [
        env.client.get(a["url"], headers=env.admin(tenant)).status_code
        for a in message["attachments"]
    ]


def deletion_done(env: Env, deletion_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer = env.client.get(f"/api/deletions/{deletion_id}", headers=env.admin(env.acme))
        body: dict[str, Any] = answer.json()
        return body if body["status"] in ("done", "no_data") else None

    value: dict[str, Any] = wait_for(done, 15)
    return value


# Erasure


def test_erasing_a_contact_deletes_the_files_of_their_conversations_only(env: Env) -> None:
    token, gone = env.visitor(env.acme)
    photo = env.visitor_upload(token, [("me.jpg", jpeg_with_location())], "v1")
    reply = env.agent_upload(env.acme, gone, [("invoice.pdf", PDF)], "a1")
    other_token, stays = env.visitor(env.acme)
    kept = env.visitor_upload(other_token, [("mine.pdf", PDF)], "v1")
    theirs_token, _ = env.visitor(env.globex)
    theirs = env.visitor_upload(theirs_token, [("theirs.jpg", jpeg_with_location())], "v1")
    # The person also wrote, with a file, in a conversation that is not theirs (as in a
    # comment thread someone else opened): that file goes, the conversation's own stay.
    workspace = env.acme.workspace_id
    services = env.services
    elsewhere = env.call(services.library.keep, workspace, uuid.UUID(stays), PDF, name="r.pdf")
    person = uuid.UUID(photo["contact_id"])
    aside = Message(
        id=uuid.uuid4(),
        workspace_id=workspace,
        channel_id=env.acme.channel_id,
        conversation_id=uuid.UUID(stays),
        contact_id=person,
        channel_kind=ChannelKind.WEBCHAT,
        direction=Direction.IN,
        sender=Sender(type=SenderType.CONTACT, id=str(person)),
        text="me too",
        attachments=[elsewhere],
        platform_message_id=uuid.uuid4().hex,
        client_id="aside",
        sent_at=utc_now(),
        status=DeliveryStatus.RECEIVED,
    )
    env.call(services.ingress.publish_message, aside)
    stored_aside = env.message(env.acme, stays, "aside")
    assert stored_aside["id"] == str(aside.id)
    erased = keys_of(photo, env.acme) | keys_of(reply, env.acme) | keys_of(stored_aside, env.acme)
    assert len(erased) == 4  # the photo, its thumbnail, the agent's PDF, the file aside
    survivors = keys_of(kept, env.acme) | keys_of(theirs, env.globex)
    assert erased | survivors <= env.keys()

    filed = env.client.post(
        "/api/deletions", json={"contact_id": photo["contact_id"]}, headers=env.admin(env.acme)
    )
    assert filed.status_code == 202, filed.text
    done = deletion_done(env, filed.json()["id"])
    assert done["status"] == "done"
    assert done["counts"]["files"] == 4 and done["counts"]["conversations"] == 1
    assert done["counts"]["messages"] == 3

    assert env.of(env.acme, gone) == set()
    assert survivors <= env.keys()
    assert env.of(env.acme, stays) == keys_of(kept, env.acme)
    assert served(env, env.acme, kept) == [200]
    assert served(env, env.globex, theirs) == [200]
    # The links the inbox had answer 404 now, to agents and to the visitor alike.
    file = photo["attachments"][0]["file"]
    assert (
        env.client.get(photo["attachments"][0]["url"], headers=env.admin(env.acme)).status_code
        == 404
    )
    visitor = {"origin": ORIGIN, "authorization": f"Bearer {token}"}
    assert env.client.get(f"/api/widget/media/{file}", headers=visitor).status_code == 404


def test_an_erasure_stopped_before_its_files_is_finished_by_the_restarted_worker(
    env: Env,
) -> None:
    token, conversation_id = env.visitor(env.acme)
    photo = env.visitor_upload(token, [("me.jpg", jpeg_with_location())], "v1")
    other_token, _ = env.visitor(env.acme)
    kept = env.visitor_upload(other_token, [("mine.pdf", PDF)], "v1")
    services, app = env.services, env.client.app
    env.call(app.state.worker.stop)  # type: ignore[attr-defined]  # the worker "crashes"
    row = env.call(
        services.deletions.file,
        "admin",
        "contact:x",
        [Target(str(env.acme.workspace_id), photo["contact_id"])],
        workspace_id=env.acme.workspace_id,
        actor=("system", None),
    )
    # Every step up to the database ran, then the process died: the rows are gone, the
    # files not yet; the request says where it stopped.
    files_step = STEPS.index("files")
    assert STEPS.index("database") < files_step
    assert env.call(services.deletions.run, row.id, limit=files_step) == "in_progress"
    answer = env.client.get(f"/api/conversations/{conversation_id}", headers=env.admin(env.acme))
    assert answer.status_code == 404
    assert env.of(env.acme, conversation_id) == keys_of(photo, env.acme)

    client = httpx.AsyncClient()
    worker = services.worker(client)
    env.call(worker.start)  # a new worker process: its sweep takes the lapsed request over
    try:
        done = deletion_done(env, str(row.id))
    finally:
        env.call(worker.stop)
        env.call(client.aclose)
    assert done["status"] == "done" and done["counts"]["files"] == 2
    assert env.of(env.acme, conversation_id) == set()
    assert keys_of(kept, env.acme) <= env.keys()


# Disconnecting a channel with its data


def test_disconnecting_with_data_deletion_deletes_the_channels_files(env: Env) -> None:
    body = {"kind": "webchat", "name": "Shop", "allowed_origins": [ORIGIN]}
    second = env.client.post("/api/channels", json=body, headers=env.admin(env.acme))
    assert second.status_code == 201, second.text
    token, gone = env.visitor(env.acme)
    photo = env.visitor_upload(token, [("me.jpg", jpeg_with_location())], "v1")
    reply = env.agent_upload(env.acme, gone, [("invoice.pdf", PDF)], "a1")
    other_token, stays = env.visitor(env.acme, second.json()["public_key"])
    kept = env.visitor_upload(other_token, [("mine.pdf", PDF)], "v1")
    assert keys_of(photo, env.acme) | keys_of(reply, env.acme) <= env.of(env.acme, gone)

    answer = env.client.delete(
        f"/api/channels/{env.acme.channel_id}",
        params={"delete_data": "true"},
        headers=env.admin(env.acme),
    )
    assert answer.status_code == 200, answer.text
    done = deletion_done(env, answer.json()["data_deletion"]["id"])
    assert done["counts"]["files"] == 3
    assert env.of(env.acme, gone) == set()
    assert env.of(env.acme, stays) == keys_of(kept, env.acme)
    assert served(env, env.acme, kept) == [200]


# Retention


def test_the_retention_sweep_deletes_the_files_of_what_it_deletes(env: Env) -> None:
    token, partly = env.visitor(env.acme)
    old = env.visitor_upload(token, [("old.jpg", jpeg_with_location()), ("a.pdf", PDF)], "v1")
    whole_token, whole = env.visitor(env.acme)
    emptied = env.visitor_upload(whole_token, [("gone.pdf", PDF)], "v1")
    # A file of the emptied conversation that no message names (an upload whose message
    # never arrived): the conversation's prefix takes it too.
    stray = env.call(
        env.services.library.keep, env.acme.workspace_id, uuid.UUID(whole), PDF, name="x.pdf"
    )
    theirs_token, _ = env.visitor(env.globex)
    theirs = env.visitor_upload(theirs_token, [("theirs.pdf", PDF)], "v1")
    cutoff = datetime.fromisoformat(emptied["sent_at"]) + timedelta(milliseconds=1)
    while utc_now() <= cutoff:
        pass
    new = env.visitor_upload(token, [("new.jpg", jpeg_with_location())], "v2")
    assert datetime.fromisoformat(new["sent_at"]) > cutoff > datetime.fromisoformat(old["sent_at"])
    answer = env.client.patch(
        "/api/workspace", json={"retention_days": 30}, headers=env.admin(env.acme)
    )
    assert answer.status_code == 200, answer.text

    services = env.services
    retention = Retention(
        services.store, services.bus, services.ingress, services.library, every_s=60
    )
    swept = env.call(retention.sweep, cutoff + timedelta(days=30))
    counts = swept[str(env.acme.workspace_id)].counts
    assert (counts["messages"], counts["conversations"]) == (2, 1)
    assert counts["files"] == 3 + 1 + 1  # the photo, its thumbnail, the PDF; gone.pdf; x.pdf
    assert str(env.globex.workspace_id) not in swept

    # The conversation with a recent message keeps that message's files, and only them.
    assert env.of(env.acme, partly) == keys_of(new, env.acme)
    assert env.of(env.acme, whole) == set()
    assert stray.file is not None
    assert served(env, env.acme, new) == [200]
    assert keys_of(theirs, env.globex) <= env.keys()


# Unsend


def test_an_unsent_message_loses_its_files_and_keeps_none_fetched_later(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    unsent = env.visitor_upload(token, [("oops.jpg", jpeg_with_location()), ("a.pdf", PDF)], "v1")
    kept = env.visitor_upload(token, [("fine.pdf", PDF)], "v2")
    services, workspace = env.services, env.acme.workspace_id
    channel = ChannelContext(workspace, env.acme.channel_id, ChannelKind.WEBCHAT, "")

    # The platform's unsend, as its webhook is published once the adapter parsed it.
    change = MessageChange(
        env.acme.channel_id,
        uuid.UUID(conversation_id),
        unsent["platform_message_id"],
        {"deleted": True},
        utc_now(),
        "unsend:" + unsent["platform_message_id"],
    )
    env.call(services.ingress.publish_parsed, channel, change)
    wait_for(lambda: env.message(env.acme, conversation_id, "v1")["deleted"], 10)
    gone = env.message(env.acme, conversation_id, "v1")
    assert gone["attachments"] == []
    wait_for(lambda: not keys_of(unsent, env.acme) & env.keys(), 10)
    assert env.of(env.acme, conversation_id) == keys_of(kept, env.acme)

    # A file fetched for the message after it was unsent (its event comes late) is deleted
    # rather than kept for nobody.
    late = env.call(
        services.library.keep, workspace, uuid.UUID(conversation_id), PDF, name="late.pdf"
    )
    assert late.file is not None
    data = MessageUpdated(
        channel_id=env.acme.channel_id,
        conversation_id=uuid.UUID(conversation_id),
        platform_message_id=unsent["platform_message_id"],
        message_id=uuid.UUID(unsent["id"]),
        changes=MessageChanges(attachments=[late]),
    )
    env.call(
        services.bus.publish,
        str(workspace),
        data.NAME,
        data.dump(),
        conversation_id=conversation_id,
    )
    late_key = f"w/{workspace}/c/{conversation_id}/f/{late.file}"
    wait_for(lambda: late_key not in env.keys(), 10)
    assert env.message(env.acme, conversation_id, "v1")["attachments"] == []
    assert env.of(env.acme, conversation_id) == keys_of(kept, env.acme)


# Export


def test_the_export_links_the_files_and_the_admin_fetches_them(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    photo = env.visitor_upload(token, [("me.jpg", jpeg_with_location())], "v1")
    reply = env.agent_upload(env.acme, conversation_id, [("invoice.pdf", PDF)], "a1")
    answer = env.client.get(
        f"/api/contacts/{photo['contact_id']}/export", headers=env.admin(env.acme)
    )
    assert answer.status_code == 200, answer.text
    files = answer.json()["files"]
    by_file = {f["file"]: f for f in files}
    [image] = photo["attachments"]
    [pdf] = reply["attachments"]
    assert set(by_file) == {image["file"], pdf["file"]}
    listed = by_file[image["file"]]
    assert listed["message_id"] == photo["id"] and listed["conversation_id"] == conversation_id
    assert (listed["type"], listed["name"], listed["mime_type"]) == (
        "image",
        "me.jpg",
        "image/jpeg",
    )
    assert listed["url"] == BASE + image["url"]
    assert listed["thumbnail_url"] == BASE + image["url"] + "?size=thumb"
    assert by_file[pdf["file"]]["thumbnail_url"] is None

    fetched = env.client.get(listed["url"], headers=env.admin(env.acme))
    assert fetched.status_code == 200 and len(fetched.content) == listed["size"]
    assert fetched.content[:2] == b"\xff\xd8"
    thumb = env.client.get(listed["thumbnail_url"], headers=env.admin(env.acme))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    document = env.client.get(by_file[pdf["file"]]["url"], headers=env.admin(env.acme))
    assert document.status_code == 200 and document.content == PDF
    # The links are as private as the inbox's: another workspace and no credentials get none.
    assert env.client.get(listed["url"], headers=env.admin(env.globex)).status_code == 404
    env.client.cookies.clear()
    assert env.client.get(listed["url"]).status_code == 401
