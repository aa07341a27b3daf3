"""OpenAPI descriptions of a member's own credentials (`hub.accounts.routes`), merged by
`hub.web.openapi.document`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.accounts.routes import PasswordBody


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionUser(_Out):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: str
    name: str


class NewSession(_Out):
    user: SessionUser
    csrf_token: str = Field(description="For the X-CSRF-Token header of this new session")


class TokenInfo(_Out):
    id: uuid.UUID
    name: str
    user_id: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None = Field(description="Set once revoked; the token stops at once")


class ContactExport(_Out):
    format: str = Field(description="sosyocrm.contact-export.v1")
    exported_at: datetime
    workspace_id: uuid.UUID
    contact: dict[str, Any]
    identities: list[dict[str, Any]] = Field(description="One per channel")
    conversations: list[dict[str, Any]] = Field(description="With labels and read positions")
    messages: list[dict[str, Any]] = Field(description="Every message, notes included")


class TokenList(_Out):
    items: list[TokenInfo] = Field(description="Never the tokens themselves (stored hashed)")


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""
    token = {
        "name": "token_id",
        "in": "path",
        "required": True,
        "description": "An API token's id",
        "schema": {"type": "string", "format": "uuid"},
    }
    return {
        ("/api/contacts/{contact_id}/export", "get"): dict(
            summary="Export everything held about a contact (subject access)",
            ok={200: ("A JSON file (Content-Disposition: attachment)", ContactExport)},
            errors=(401, 403, 404),
            params=(
                {
                    "name": "contact_id",
                    "in": "path",
                    "required": True,
                    "description": "A contact id",
                    "schema": {"type": "string", "format": "uuid"},
                },
            ),
            description="Admins only. Audited as `contact.exported` (ids only).",
        ),
        ("/api/me/password", "post"): dict(
            summary="Change my password",
            ok={200: ("Changed; a new session cookie for this browser", NewSession)},
            errors=(400, 401, 403, 413),
            body=PasswordBody,
            description="Needs the current password (401 if wrong). Every other session of "
            "this user ends at once. Audited as `password.changed`.",
        ),
        ("/api/tokens", "get"): dict(
            summary="API tokens",
            ok={200: ("Admins: every token of the workspace; agents: their own", TokenList)},
            errors=(401,),
        ),
        ("/api/tokens/{token_id}", "delete"): dict(
            summary="Revoke an API token",
            ok={200: ("Revoked", TokenInfo)},
            errors=(401, 403, 404),
            params=(token,),
            description="Agents may revoke their own tokens, admins any of the workspace. "
            "Audited as `api_token.revoked`.",
        ),
    }
