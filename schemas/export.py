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

from schemas import frames, lean
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
            description="A frame a client sends on /ws/agent or /ws/visitor (protocol v1 and v2).",
        ),
        "message-created-v2.json": _document(lean.json_schema()),
        "server-frame.json": _document(
            _union(frames.server_frame, "serialization"),
            title="ServerFrame",
            description="A frame the hub sends on /ws/agent or /ws/visitor (protocol v1 and v2).",
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
    _require_discriminators(schema, schema, [])
    return schema


def _require_discriminators(
    document: dict[str, Any], union: dict[str, Any], outer: list[str]
) -> None:
    """The server models give `type` (and an event's `name`) a default for convenience in
    Python, but the discriminators are always on the wire: a reader may rely on them. A
    union inside the union (the events, one model per name) becomes a definition of its own,
    named after its discriminator's value (`EventFrame`), so every mapping names a `$ref`."""
    discriminators = [*outer, union["discriminator"]["propertyName"]]
    mapping = union["discriminator"]["mapping"]
    for value, ref in mapping.items():
        if isinstance(ref, dict):
            name = value.title() + "Frame"
            mapping[value] = f"#/$defs/{name}"
            union["oneOf"] = [{"$ref": mapping[value]} if b == ref else b for b in union["oneOf"]]
            document["$defs"][name] = ref
            ref["title"] = name
            _require_discriminators(document, ref, discriminators)
            continue
        member = document["$defs"][ref.rsplit("/", 1)[1]]
        required = member.get("required", [])
        member["required"] = [*(d for d in discriminators if d not in required), *required]


def _document(schema: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return {"$schema": DIALECT, **annotations, **schema}
