"""OpenAPI descriptions of the privacy endpoints (`hub.privacy.routes`): Meta's two callbacks
(public form posts), the public status page of a deletion request, and the admins' deletion
requests. Merged by `hub.web.openapi.document`; the answer models mirror `hub.privacy.routes`
and are checked against real answers in tests/test_openapi.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.privacy.routes import DeletionBody

Status = Literal["received", "in_progress", "done", "no_data"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignedRequestForm(BaseModel):
    signed_request: str = Field(
        description="<base64url HMAC-SHA256 signature>.<base64url JSON payload>, signed with "
        "the app secret; the payload has algorithm HMAC-SHA256 and user_id (app-scoped)"
    )


class DeletionAccepted(_Out):
    url: str = Field(description="Where the person can follow the request (a public page)")
    confirmation_code: str = Field(pattern="^[0-9a-f]{32}$")


class Deauthorized(_Out):
    """An empty object."""


class DeletionState(_Out):
    confirmation_code: str
    status: Status


class DeletionFiled(_Out):
    id: uuid.UUID
    confirmation_code: str
    status: Status


class DeletionCounts(_Out):
    contacts: int = Field(ge=0)
    conversations: int = Field(ge=0)
    messages: int = Field(ge=0)
    stream_entries: int = Field(ge=0, description="Events deleted from the workspace stream")


class Deletion(_Out):
    id: uuid.UUID
    confirmation_code: str
    source: Literal["meta", "admin"]
    status: Status
    counts: DeletionCounts = Field(description="What was erased so far; never who")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class DeletionPage(_Out):
    items: list[Deletion] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


SIGNED = (
    " Public, answered to Meta: the form field `signed_request` must verify under the hosted "
    "app's secret or a channel's own app secret (400 `bad_signature`), with algorithm "
    "HMAC-SHA256 (400 `bad_algorithm`); anything else malformed is 400 "
    "`malformed_signed_request`. A refused request changes nothing."
)


def operations(page_max_items: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""
    form = "application/x-www-form-urlencoded"
    deletion = {
        "name": "deletion_id",
        "in": "path",
        "required": True,
        "description": "A deletion request's id",
        "schema": {"type": "string", "format": "uuid"},
    }
    return {
        ("/privacy/meta/data-deletion", "post"): dict(
            summary="Meta's data-deletion callback",
            ok={200: ("Filed; erasure has started", DeletionAccepted)},
            errors=(400, 413),
            body=SignedRequestForm,
            body_media=form,
            auth=False,
            description="Erases the person (`user_id`) from every channel of the app that "
            "signed the request: contact, identities, conversations, messages and their "
            "stream events. Idempotent: a repeat files a new request that ends `no_data`." + SIGNED,
        ),
        ("/privacy/meta/deauthorize", "post"): dict(
            summary="Meta's deauthorize callback",
            ok={200: ("Done", Deauthorized)},
            errors=(400, 413),
            body=SignedRequestForm,
            body_media=form,
            auth=False,
            description="Disconnects the app's channels that this user connected (the "
            "channel's account is the user, or the user authorized it through Business Login "
            "for Instagram): secrets destroyed, routing stopped, `channel.updated` to agents; "
            "audited as `channel.deauthorized` by the platform." + SIGNED,
        ),
        ("/privacy/deletion/{code}", "get"): dict(
            summary="The state of a deletion request (public)",
            ok={200: ("The state; HTML, or JSON with Accept: application/json", DeletionState)},
            errors=(404,),
            params=(
                {
                    "name": "code",
                    "in": "path",
                    "required": True,
                    "description": "The confirmation code",
                    "schema": {"type": "string"},
                },
            ),
            auth=False,
            html=True,
            description="Tells the state only: received, in_progress, done or no_data.",
        ),
        ("/api/deletions", "post"): dict(
            summary="Erase a person (admins)",
            ok={202: ("Filed; erasure has started", DeletionFiled)},
            errors=(400, 401, 403, 404, 413),
            body=DeletionBody,
            description="Give `contact_id`, or `channel_id` with `platform_user_id` (404 for "
            "a channel of another workspace). Erases the contact, its identities, "
            "conversations, messages, read positions and labels, and their stream events; "
            "agents get `contact.deleted`. A subject the hub knows nothing of ends `no_data`. "
            "Audited as `deletion.requested` and `deletion.completed`.",
        ),
        ("/api/deletions", "get"): dict(
            summary="The workspace's deletion requests (admins)",
            ok={200: ("A page", DeletionPage)},
            errors=(400, 401, 403),
            params=(
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "Page size",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": page_max_items,
                        "default": 50,
                    },
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "description": "`next_cursor` of the previous page",
                    "schema": {"type": "string"},
                },
            ),
            description="Meta's requests are listed in the workspace they erased from (one "
            "that touched several workspaces is in none).",
        ),
        ("/api/deletions/{deletion_id}", "get"): dict(
            summary="One deletion request (admins)",
            ok={200: ("The request", Deletion)},
            errors=(401, 403, 404),
            params=(deletion,),
        ),
    }
