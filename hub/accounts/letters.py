# ruff: noqa: RUF001 (Turkish text has the dotless i, which RUF001 mistakes for a plain i)
"""The letters the hub sends: an invitation to a workspace and a password-reset link, each in
English or Turkish (the two languages of the inbox and console). The invitation is written in
the language of the admin's console when it was sent, a reset in that of the sign-in page;
English otherwise. Plain text and a simple HTML part with the same words; every value from a
person (a workspace's or an inviter's name) is escaped in the HTML."""

from __future__ import annotations

import logging
from html import escape
from typing import Literal

from hub.mail import Letter

Language = Literal["en", "tr"]

log = logging.getLogger("hub.mail")

_INVITATION = {
    "en": (
        "You are invited to {workspace} on SosyoCRM",
        "{inviter} invited you ({email}) to join {workspace} on SosyoCRM as {role}.",
        "Accept the invitation",
        "The link works once, until {expires} (UTC). If you did not expect this, ignore it: "
        "nothing happens unless you accept.",
    ),
    "tr": (
        "SosyoCRM'de {workspace} çalışma alanına davet edildiniz",
        "{inviter}, sizi ({email}) SosyoCRM'de {workspace} çalışma alanına {role} olarak "
        "davet etti.",
        "Daveti kabul edin",
        "Bağlantı bir kez ve {expires} (UTC) saatine kadar çalışır. Bunu beklemiyorsanız "
        "görmezden gelin: kabul etmedikçe hiçbir şey olmaz.",
    ),
}
_ROLES = {
    "en": {"admin": "an admin", "agent": "an agent"},
    "tr": {"admin": "yönetici", "agent": "temsilci"},
}
_RESET = {
    "en": (
        "Reset your SosyoCRM password",
        "Someone (we hope you) asked to reset the password of {email} on SosyoCRM.",
        "Choose a new password",
        "The link works once, until {expires} (UTC). If you did not ask for it, ignore this "
        "letter: your password stays as it is.",
    ),
    "tr": (
        "SosyoCRM parolanızı sıfırlayın",
        "Birisi (umarız siz) SosyoCRM'de {email} hesabının parolasını sıfırlamak istedi.",
        "Yeni bir parola seçin",
        "Bağlantı bir kez ve {expires} (UTC) saatine kadar çalışır. Siz istemediyseniz bu "
        "e-postayı görmezden gelin: parolanız değişmez.",
    ),
}


def invitation(
    language: Language,
    *,
    to: str,
    workspace: str,
    inviter: str,
    role: str,
    link: str,
    expires: str,
) -> Letter:
    subject, lead, action, note = _INVITATION[language]
    values = {
        "workspace": workspace,
        "inviter": inviter,
        "email": to,
        "role": _ROLES[language].get(role, role),
        "expires": expires,
    }
    return _letter(to, subject.format(**values), lead, action, note, link, values)


def password_reset(language: Language, *, to: str, link: str, expires: str) -> Letter:
    subject, lead, action, note = _RESET[language]
    values = {"email": to, "expires": expires}
    return _letter(to, subject, lead, action, note, link, values)


def _letter(
    to: str, subject: str, lead: str, action: str, note: str, link: str, values: dict[str, str]
) -> Letter:
    safe = {key: escape(value) for key, value in values.items()}
    text = f"{lead.format(**values)}\n\n{action}:\n{link}\n\n{note.format(**values)}\n"
    html = (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5">'
        f"<p>{lead.format(**safe)}</p>"
        f'<p><a href="{escape(link)}" style="font-weight:bold">{escape(action)}</a></p>'
        f'<p style="color:#555">{note.format(**safe)}</p>'
        "</body></html>"
    )
    return Letter(to=to, subject=subject, text=text, html=html)


def unsent(kind: str) -> None:
    """Say why a letter was not sent when the hub has no address for its link of its own
    (`hub.web.http.letter_base`); the answer stays what it would have been."""
    log.warning(
        "%s letter not sent: set HUB_PUBLIC_URL, the hub's own address for the links in letters",
        kind,
    )
