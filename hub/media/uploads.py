"""Reading a `multipart/form-data` request with files (an agent's or a visitor's attachments).

Starlette parses the form (python-multipart underneath, spooling large parts to disk); this
module bounds it and refuses what is not whole:

- the body is counted as it arrives: past what `max_files` files of `max_file_bytes` and their
  fields can take the upload stops with 413 (HUB_MAX_BODY_BYTES, for JSON bodies, does not
  apply);
- each file is at most `max_file_bytes` (413 `media_too_large`), at most `max_files` of them;
- a body that ends before its closing boundary (a client cut off, a truncated file) is 400
  `upload_incomplete`: the parser alone would silently drop the unfinished part;
- the plain fields are validated by the route's own model, as a JSON body would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from hub.errors import BadRequest, TooBig
from hub.media.store import MediaTooLarge

M = TypeVar("M", bound=BaseModel)

FILES_FIELD = "attachments"
MAX_FILES = 10  # in one message
MAX_FIELD_BYTES = 128 * 1024  # a text field (the message's text is limited further by the route)


class UploadIncomplete(BadRequest):
    code = "upload_incomplete"
    default_message = "The upload ended before its last part; nothing was kept."


class BadUpload(BadRequest):
    code = "bad_upload"
    default_message = "The request is not a well-formed multipart/form-data body."


@dataclass(frozen=True, slots=True)
class UploadedFile:
    name: str | None
    data: bytes
    declared_type: str | None  # what the client said; the hub reads the type from the bytes


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def read_form(
    request: Request,
    model: type[M],
    *,
    max_files: int,
    max_file_bytes: int,
) -> tuple[M, list[UploadedFile]]:
    """The form's fields as `model` and its files (field `attachments`), bounded."""
    boundary = _boundary(request)
    max_body = max_files * (max_file_bytes + 4096) + MAX_FIELD_BYTES * 8
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise TooBig(f"An upload is limited to {max_files} files of {max_file_bytes} bytes each.")
    tail = _Tail(request, max_body)
    counted = Request(request.scope, tail.receive)
    try:
        form = await counted.form(max_files=max_files, max_fields=32, max_part_size=MAX_FIELD_BYTES)
    except MultiPartException as exc:
        raise BadUpload(f"The multipart body could not be read: {exc.message}") from None
    except HTTPException as exc:  # Starlette's own wrapping of a MultiPartException
        raise BadUpload(f"The multipart body could not be read: {exc.detail}") from None
    except ClientDisconnect:
        raise UploadIncomplete() from None
    try:
        if not tail.ends_with(b"--" + boundary + b"--"):
            raise UploadIncomplete()
        fields: dict[str, Any] = {}
        files: list[UploadedFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != FILES_FIELD:
                    raise BadUpload(f"Files go in the field '{FILES_FIELD}', not '{name}'.")
                files.append(await _read_file(value, max_file_bytes))
            elif name == FILES_FIELD:
                raise BadUpload(f"The field '{FILES_FIELD}' holds files only.")
            elif name in fields:
                raise BadUpload(f"The field '{name}' is given twice.")
            else:
                fields[name] = value
    finally:
        await form.close()
    try:
        return model.model_validate(fields), files
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"Invalid form at {where}: {first['msg']}") from None


def _boundary(request: Request) -> bytes:
    for part in request.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("latin-1")
    raise BadUpload("The multipart body has no boundary.")


async def _read_file(upload: UploadFile, max_file_bytes: int) -> UploadedFile:
    data = await upload.read(max_file_bytes + 1)
    if len(data) > max_file_bytes:
        raise MediaTooLarge(f"A file is limited to {max_file_bytes} bytes.")
    if not data:
        raise BadUpload(f"The file {upload.filename or ''!r} is empty.")
    return UploadedFile(upload.filename, data, upload.content_type)


class _Tail:
    """Passes the request's body on, counting it and keeping its last bytes."""

    KEEP = 512

    def __init__(self, request: Request, max_bytes: int) -> None:
        self._receive = request.receive
        self.max_bytes = max_bytes
        self.size = 0
        self.last = b""

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            self.size += len(body)
            if self.size > self.max_bytes:
                raise TooBig(f"An upload is limited to {self.max_bytes} bytes.")
            self.last = (self.last + body)[-self.KEEP :]
        return message

    def ends_with(self, closing: bytes) -> bool:
        return closing in self.last  # what may follow it is an epilogue, which is ignored
