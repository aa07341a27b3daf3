"""Sign-in lockout: after `LOCK_AFTER` failed sign-ins for one e-mail within `WINDOW_S`, or
`IP_LOCK_AFTER` from one address, sign-in for it answers 429 `too_many_attempts` until the
window has passed, whether or not the password is right. The counters live on the bus, so
every node sees them; the e-mail is kept only as a digest."""

from __future__ import annotations

import hashlib

from hub.errors import HubError
from hub.services import Services

WINDOW_S = 15 * 60
LOCK_AFTER = 5
IP_LOCK_AFTER = 50
_BUS_SPACE = "auth"  # not a workspace: sign-in happens before one is known


class TooManyAttempts(HubError):
    status = 429
    code = "too_many_attempts"
    default_message = "Too many failed sign-ins. Wait 15 minutes and try again."


def _keys(email: str, ip: str | None) -> tuple[str, str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{digest}", f"login-fail-ip:{ip or '-'}"


async def refuse_if_locked(svc: Services, email: str, ip: str | None) -> None:
    by_email, by_ip = _keys(email, ip)
    for key in (by_email, by_ip):
        if await svc.bus.recall(_BUS_SPACE, "lock:" + key) is not None:
            raise TooManyAttempts()


async def note_failure(svc: Services, email: str, ip: str | None) -> None:
    by_email, by_ip = _keys(email, ip)
    for key, limit in ((by_email, LOCK_AFTER), (by_ip, IP_LOCK_AFTER)):
        if await svc.bus.count(_BUS_SPACE, key, window_s=WINDOW_S) >= limit:
            await svc.bus.remember(_BUS_SPACE, "lock:" + key, "1", ttl_s=WINDOW_S)
