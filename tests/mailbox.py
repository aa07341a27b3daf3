"""Letters in tests: a real SMTP server on loopback (aiosmtpd) that keeps what it receives, the
log-only outbox (`<data_dir>/mail`), the links in a letter, and `join`, which makes a member
the way a person does: an admin invites, the person follows the e-mailed link and accepts."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class SmtpServer:
    """What the loopback server received, each as an EmailMessage, with its envelope."""

    host: str
    port: int
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def letters(self) -> list[EmailMessage]:
        return [message for _, _, message in self.received]

    def env(self) -> dict[str, str]:
        """The hub's settings that send to this server (plain SMTP on loopback)."""
        return {
            "HUB_SMTP_HOST": self.host,
            "HUB_SMTP_PORT": str(self.port),
            "HUB_SMTP_TLS": "none",
            "HUB_MAIL_FROM": "SosyoCRM <hub@hub.example>",
        }


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def outbox(data_dir: Path) -> list[EmailMessage]:
    """The letters the log-only mode wrote, oldest first."""
    folder = data_dir / "mail"
    letters = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        letters.append(message)
    return letters


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def token_in(message: EmailMessage, page: str) -> str:
    """The token of the letter's `/invite#...` or `/reset#...` link (in both of its parts)."""
    found = re.findall(rf"/{page}#([A-Za-z0-9_-]+)", text_of(message))
    assert len(found) == 1, text_of(message)
    html = message.get_body(preferencelist=("html",))
    assert html is not None and found[0] in str(html.get_content())  # type: ignore[attr-defined]
    return str(found[0])


def wait_letter(
    letters: Callable[[], list[EmailMessage]], to: str, *, after: int = 0, timeout_s: float = 10
) -> EmailMessage:
    """The newest letter to `to` among those after the first `after` (letters go out after
    the answer, in a background task)."""
    deadline = time.monotonic() + timeout_s
    while True:
        mine = [m for m in letters()[after:] if m["To"] == to]
        if mine:
            return mine[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no letter to {to} within {timeout_s} s")
        time.sleep(0.05)


def join(
    client: Any,
    headers: dict[str, str],
    address: str,
    name: str,
    password: str,
    role: str = "agent",
    *,
    data_dir: Path | None = None,
    letters: Callable[[], list[EmailMessage]] | None = None,
) -> str:
    """A new member, the way a person becomes one; answers their user id. `client` is an
    httpx client or a TestClient (whose own cookies are kept: the accepted session, or the
    second step it needs, is not)."""
    if letters is None:
        folder = data_dir or client.app.state.services.settings.data_dir
        letters = lambda: outbox(folder)  # noqa: E731
    before = len(letters())
    invited = client.post("/api/members", json={"email": address, "role": role}, headers=headers)
    assert invited.status_code == 202, invited.text
    token = token_in(wait_letter(letters, address.strip().lower(), after=before), "invite")
    kept = list(client.cookies.jar)
    accepted = client.post(
        "/api/invitations/accept", json={"token": token, "name": name, "password": password}
    )
    client.cookies.clear()
    for cookie in kept:
        client.cookies.jar.set_cookie(cookie)
    assert accepted.status_code == 200, accepted.text
    if "user" in accepted.json():
        return str(accepted.json()["user"]["user_id"])
    # A member now, but their session waits for a second step (an admin where the workspace
    # requires two-factor): their id is on the roster.
    roster = client.get("/api/members", headers=headers).json()["items"]
    return str(next(m["id"] for m in roster if m["email"] == address.strip().lower()))
