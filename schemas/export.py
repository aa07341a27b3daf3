"""The JSON Schemas of the wire contract, generated from the pydantic models.

`scripts/export-schemas` writes them under `schemas/`; `tests/test_schemas.py` fails
when the files there differ from `generate()`, so they cannot go stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from schemas import frames
from schemas.message import Message

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def generate() -> dict[str, dict[str, Any]]:
    """File name (relative to `schemas/`) -> JSON Schema."""
    message = Message.model_json_schema()
    message["description"] = "The normalized message: one model for every channel."
    return {
        "message.json": _document(message),
        "client-frame.json": _document(
            _union(frames.client_frame, "validation"),
            title="ClientFrame",
            description="A frame a client sends on /ws/agent or /ws/visitor (protocol v1).",
        ),
        "server-frame.json": _document(
            _union(frames.server_frame, "serialization"),
            title="ServerFrame",
            description="A frame the hub sends on /ws/agent or /ws/visitor (protocol v1).",
        ),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every schema under `directory` and remove JSON files it no longer produces."""
    wanted = generate()
    for stale in directory.rglob("*.json"):
        if stale.relative_to(directory).as_posix() not in wanted:
            stale.unlink()
    written = []
    for name, schema in sorted(wanted.items()):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def _union(adapter: TypeAdapter[Any], mode: JsonSchemaMode) -> dict[str, Any]:
    schema = adapter.json_schema(mode=mode)
    # The server models give `type` a default for convenience in Python, but the
    # discriminator is always on the wire: a reader may rely on it.
    discriminator = schema["discriminator"]["propertyName"]
    for ref in schema["discriminator"]["mapping"].values():
        member = schema["$defs"][ref.rsplit("/", 1)[1]]
        if discriminator not in member.get("required", []):
            member["required"] = [discriminator, *member.get("required", [])]
    return schema


def _document(schema: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return {"$schema": DIALECT, **annotations, **schema}
