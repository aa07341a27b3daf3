"""Sign-in lockout: after `LOCK_AFTER` failed sign-ins for one e-mail within `WINDOW_S`, or
`IP_LOCK_AFTER` from one address, sign-in for it answers 429 `too_many_attempts` until the
window has passed, whether or not the password is right, with `Retry-After`: the seconds left
on the lock (its end, a Unix time, is the lock's value, so every node answers alike). The
counters live on the bus, so every node sees them. Their keys hold neither the e-mail nor the
address, only an HMAC of each under the secret key: a plain hash of an e-mail is found again
by hashing a list of e-mails."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from hub.bus import Bus
from hub.errors import HubError

WINDOW_S = 15 * 60
LOCK_AFTER = 5
IP_LOCK_AFTER = 50
_BUS_SPACE = "auth"  # not a workspace: sign-in happens before one is known

log = logging.getLogger("hub.auth")


class TooManyAttempts(HubError):
    status = 429
    code = "too_many_attempts"
    default_message = "Too many failed sign-ins. Wait 15 minutes and try again."


def _digest(secret_key: str, what: str, value: str) -> str:
    message = f"{what}:{value}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def keys(secret_key: str, email: str, ip: str | None) -> tuple[str, str]:
    """The bus keys counting one e-mail's and one address's failures."""
    return (
        "login-fail:" + _digest(secret_key, "lockout-email", email.strip().lower()),
        "login-fail-ip:" + _digest(secret_key, "lockout-ip", ip or "-"),
    )


async def refuse_if_locked(bus: Bus, secret_key: str, email: str, ip: str | None) -> None:
    by_email, by_ip = keys(secret_key, email, ip)
    for key in (by_email, by_ip):
        until = await bus.recall(_BUS_SPACE, "lock:" + key)
        if until is not None:
            left = int(until) - int(time.time()) if until.isdigit() else WINDOW_S
            raise TooManyAttempts(retry_after_s=min(WINDOW_S, max(1, left)))


async def note_failure(bus: Bus, secret_key: str, email: str, ip: str | None) -> None:
    by_email, by_ip = keys(secret_key, email, ip)
    for key, limit in ((by_email, LOCK_AFTER), (by_ip, IP_LOCK_AFTER)):
        if await bus.count(_BUS_SPACE, key, window_s=WINDOW_S) >= limit:
            until = str(int(time.time()) + WINDOW_S)
            await bus.remember(_BUS_SPACE, "lock:" + key, until, ttl_s=WINDOW_S)


# Password-reset requests, counted whether or not the e-mail has an account, so the limit
# reveals nothing about it. Past the per-address limit a request is refused (429 with
# Retry-After). Past the per-e-mail limit it is answered as usual and no letter goes out: the
# limit keeps a flood of letters from anyone's inbox, and refusing would let a stranger shut
# a person out of asking for their own reset (and would tell the stranger the limit was hit).
RESET_WINDOW_S = 3600
RESETS_PER_EMAIL = 5
RESETS_PER_IP = 30


class TooManyResets(HubError):
    status = 429
    code = "rate_limited"
    default_message = "Too many password-reset requests from this address. Wait and try again."


async def count_reset_request(bus: Bus, secret_key: str, email: str, ip: str | None) -> bool:
    """Count one request: refuse it past the address's limit; answer whether a letter may go
    out (False past the e-mail's limit, which is logged by the e-mail's HMAC only)."""
    by_ip = "reset-ip:" + _digest(secret_key, "reset-ip", ip or "-")
    count = await bus.count(_BUS_SPACE, by_ip, window_s=RESET_WINDOW_S)
    if count == 1:  # the window starts: its end, for Retry-After (as a lock's value above)
        end = str(int(time.time()) + RESET_WINDOW_S)
        await bus.remember(_BUS_SPACE, "until:" + by_ip, end, ttl_s=RESET_WINDOW_S)
    elif count > RESETS_PER_IP:
        until = await bus.recall(_BUS_SPACE, "until:" + by_ip)
        left = int(until) - int(time.time()) if until and until.isdigit() else RESET_WINDOW_S
        raise TooManyResets(retry_after_s=min(RESET_WINDOW_S, max(1, left)))
    by_email = "reset:" + _digest(secret_key, "reset-email", email.strip().lower())
    if await bus.count(_BUS_SPACE, by_email, window_s=RESET_WINDOW_S) <= RESETS_PER_EMAIL:
        return True
    log.warning(
        "password-reset letter not sent: over %d requests within %d s for the e-mail %s (its HMAC)",
        RESETS_PER_EMAIL,
        RESET_WINDOW_S,
        by_email.removeprefix("reset:"),
    )
    return False
