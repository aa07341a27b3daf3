"""Outgoing e-mail: invitations and password resets.

With HUB_SMTP_HOST set, a letter goes to that SMTP server through aiosmtplib (implicit TLS,
STARTTLS or none, and a login when HUB_SMTP_USER is set). Without it (the demo), the hub is in
log-only mode: the whole message is written to a file of its own under `<data_dir>/mail`
(readable by the owner only) and the log says only that a message to whom, with which subject,
was written there. Neither mode ever logs a letter's body, since its links are credentials.

`send` never raises: a letter that could not go is logged (without the SMTP password or the
body) and nothing else changes, so an API answer never depends on, or reveals, whether or
where a letter went.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

import aiosmtplib

from hub.settings import Settings

log = logging.getLogger("hub.mail")

SMTP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Letter:
    to: str
    subject: str
    text: str
    html: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = settings.data_dir / "mail"

    @property
    def log_only(self) -> bool:
        return self.settings.smtp_host is None

    def message(self, letter: Letter) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = letter.to
        message["Subject"] = letter.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
        message.set_content(letter.text)
        message.add_alternative(letter.html, subtype="html")
        return message

    async def send(self, letter: Letter) -> None:
        message = self.message(letter)
        try:
            if self.log_only:
                path = self._write(message)
                log.info(
                    "mail to %s with subject %r written to %s (HUB_SMTP_HOST is not set)",
                    letter.to,
                    letter.subject,
                    path,
                )
                return
            await self._smtp(message)
            log.info("mail to %s with subject %r sent", letter.to, letter.subject)
        except Exception as exc:  # a letter never fails its request
            log.warning(
                "mail to %s with subject %r not sent: %s%s",
                letter.to,
                letter.subject,
                type(exc).__name__,
                _smtp_code(exc),
            )

    async def _smtp(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        port = s.smtp_port or {"tls": 465, "none": 25}.get(s.smtp_tls, 587)
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=port,
            username=s.smtp_user,
            password=s.smtp_password,
            use_tls=s.smtp_tls == "tls",
            start_tls=True if s.smtp_tls == "starttls" else False,
            timeout=SMTP_TIMEOUT_S,
        )

    def _write(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(message.as_bytes())
        return path


def _smtp_code(exc: Exception) -> str:
    """The SMTP server's reply code, when it gave one (its text may echo what it was sent)."""
    code = getattr(exc, "code", None)
    return f" (SMTP {code})" if isinstance(code, int) and code > 0 else ""
