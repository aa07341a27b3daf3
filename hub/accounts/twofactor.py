"""Two-factor sign-in: TOTP (RFC 6238: six digits, 30-second steps, SHA-1, as every
authenticator app reads them) with single-use recovery codes.

- Enrolment: `begin` makes a secret and keeps it sealed (`hub.storage.vault`) on the user
  as pending; `confirm` with a code from the app turns it on and hands out the recovery
  codes, shown that once.
- A code is accepted for the current step and the one before (a clock a little behind, a
  code typed as it rolled over), and never twice: the user's last accepted step is kept and
  moved forward in the same UPDATE that accepts it, so two requests racing with one code
  cannot both win.
- Recovery codes are 80 random bits each, stored as sha256: a slow hash protects guessable
  secrets (passwords), not random ones, and a plain digest lets a code be found and spent
  in one conditional UPDATE.
- Sign-in tickets bridge the password step and the code step. They are signed with the
  secret key under a salt of their own (one for the code step, one for forced enrolment),
  expire after `TICKET_MAX_AGE_S`, name the user, the workspace and the password mark (a
  password change voids them), and are spent once (`spend_ticket`, on the bus).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.auth import Principal, password_mark
from hub.bus import Bus
from hub.errors import Conflict, Unauthenticated
from hub.storage import tenancy
from hub.storage.inbox import Sessions
from hub.storage.models import Membership, RecoveryCode, User, Workspace
from hub.storage.vault import Vault
from schemas.message import utc_now
from schemas.rest.twofactor import LoginChallenge

ISSUER = "SosyoCRM"
STEP_S = 30
DIGITS = 6
TICKET_MAX_AGE_S = 5 * 60
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 letters: no 0/o, 1/l
_BUS_SPACE = "auth"  # as the lockout's: a ticket belongs to no workspace yet


class TwoFactorFailed(Unauthenticated):
    code = "two_factor_failed"
    default_message = "The code is wrong, expired or already used."


class TicketInvalid(Unauthenticated):
    code = "ticket_invalid"
    default_message = "This sign-in step has expired or was already used; sign in again."


class TwoFactorRequired(Conflict):
    code = "two_factor_off"
    default_message = "Two-factor sign-in is not on for this account."


class TwoFactorRequiredOfAdmins(Conflict):
    code = "two_factor_required"
    default_message = (
        "A workspace you are an admin of requires two-factor sign-in of its admins, so it "
        "stays on. An admin of that workspace can turn the requirement off first."
    )


class TwoFactorOn(Conflict):
    code = "two_factor_on"
    default_message = "Two-factor sign-in is already on; turn it off first to enrol again."


@dataclass(frozen=True, slots=True)
class Ticket:
    kind: str  # code | setup
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    password_mark: str
    nonce: str


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str
    svg: str


class Tickets:
    """The signed values between the password step and the second one."""

    def __init__(self, secret_key: str) -> None:
        self._kinds = {
            "code": URLSafeTimedSerializer(secret_key, salt="hub.two-factor-ticket"),
            "setup": URLSafeTimedSerializer(secret_key, salt="hub.two-factor-setup-ticket"),
        }

    def issue(self, kind: str, principal: Principal, password_hash: str) -> str:
        return self._kinds[kind].dumps(
            {
                "u": str(principal.user_id),
                "w": str(principal.workspace_id),
                "p": password_mark(password_hash),
                "n": secrets.token_hex(16),
            }
        )

    def read(self, kind: str, ticket: str) -> Ticket:
        try:
            data = self._kinds[kind].loads(ticket, max_age=TICKET_MAX_AGE_S)
            return Ticket(
                kind, uuid.UUID(data["u"]), uuid.UUID(data["w"]), str(data["p"]), str(data["n"])
            )
        except SignatureExpired:
            raise TicketInvalid() from None
        except (BadSignature, ValueError, KeyError, TypeError, UnicodeError):
            raise TicketInvalid("The sign-in ticket is not valid.") from None


async def spend_ticket(bus: Bus, ticket: Ticket) -> None:
    """Mark the ticket used; a second use (or a race with the first) is refused."""
    fresh = await bus.remember(
        _BUS_SPACE, f"ticket-used:{ticket.nonce}", "1", ttl_s=TICKET_MAX_AGE_S + 60, only_new=True
    )
    if not fresh:
        raise TicketInvalid()


async def ticket_spent(bus: Bus, ticket: Ticket) -> bool:
    return await bus.recall(_BUS_SPACE, f"ticket-used:{ticket.nonce}") is not None


def second_step(
    tickets: Tickets, user: User, workspace: Workspace | None, principal: Principal
) -> LoginChallenge | None:
    """What a right password leads to: None (a session now), the code step, or (an admin
    of a workspace that requires two-factor, without it) enrolment."""
    if user.two_factor_enabled_at is not None:
        kind = "code"
    elif principal.is_admin and workspace is not None and workspace.require_two_factor_for_admins:
        kind = "setup"
    else:
        return None
    return LoginChallenge(
        two_factor_required=kind == "code",
        two_factor_setup_required=kind == "setup",
        ticket=tickets.issue(kind, principal, user.password_hash),
        expires_in_s=TICKET_MAX_AGE_S,
    )


def recovery_hash(code: str) -> str:
    cleaned = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(("hub.recovery:" + cleaned).encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    """Sixteen letters from 32 (80 bits), shown in groups of four."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The step (current or previous) whose code `code` is, else None."""
    code = code.replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    for step in (current, current - 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class TwoFactor:
    """Each user's second factor, in the users and recovery_codes tables."""

    def __init__(self, sessions: Sessions, vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    async def status(self, user_id: uuid.UUID) -> tuple[datetime | None, int]:
        """When it was turned on (None: off), and how many recovery codes are left."""
        async with self.sessions() as s:
            user = await s.get(User, user_id)
            left = (
                await s.exec(
                    select(func.count())
                    .select_from(RecoveryCode)
                    .where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
                )
            ).one()
        return (user.two_factor_enabled_at if user else None), int(left)

    async def begin(self, user_id: uuid.UUID) -> Enrolment:
        """A new pending secret (replacing an earlier pending one), sealed on the user."""
        secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
        async with self.sessions() as s, s.begin():
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                raise Unauthenticated()
            if user.two_factor_enabled_at is not None:
                raise TwoFactorOn()
            user.totp_secret = self.vault.seal({"totp": secret})
            user.totp_last_step = None
            s.add(user)
            email = user.email
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
            name=email, issuer_name=ISSUER
        )
        svg = io.BytesIO()  # a standalone document (with its namespace), for an <img>
        segno.make(uri, error="m").save(svg, kind="svg", scale=4, xmldecl=False, nl=False)
        return Enrolment(secret, uri, svg.getvalue().decode())

    async def confirm(self, user_id: uuid.UUID, code: str) -> list[str] | None:
        """Turn the pending secret on if `code` is its; the new recovery codes, else None."""
        async with self.sessions() as s, s.begin():
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                raise Unauthenticated()
            if user.two_factor_enabled_at is not None:
                raise TwoFactorOn()
            secret = self.vault.open(user.totp_secret).get("totp")
            if secret is None:
                raise TwoFactorRequired("Start the set-up first: no secret is waiting.")
            step = matching_step(secret, code)
            if step is None:
                return None
            user.two_factor_enabled_at = utc_now()
            user.totp_last_step = step
            s.add(user)
            return await self._replace_codes(s, user_id)

    async def check_code(self, user_id: uuid.UUID, code: str) -> bool:
        """Whether `code` is the user's for now, and not used before; using it."""
        async with self.sessions() as s:
            user = await s.get(User, user_id)
        if user is None or user.two_factor_enabled_at is None:
            return False
        step = matching_step(self.vault.open(user.totp_secret).get("totp", ""), code)
        if step is None:
            return False
        async with self.sessions() as s, s.begin():
            conn = await s.connection()
            moved = await conn.execute(
                sa.update(User)
                .where(
                    col(User.id) == user_id,
                    col(User.two_factor_enabled_at).is_not(None),
                    sa.or_(col(User.totp_last_step).is_(None), col(User.totp_last_step) < step),
                )
                .values(totp_last_step=step)
            )
            return bool(moved.rowcount)

    async def use_recovery_code(self, user_id: uuid.UUID, code: str) -> bool:
        """Spend one unused recovery code of the user's; whether there was one."""
        async with self.sessions() as s, s.begin():
            conn = await s.connection()
            spent = await conn.execute(
                sa.update(RecoveryCode)
                .where(
                    col(RecoveryCode.user_id) == user_id,
                    col(RecoveryCode.code_hash) == recovery_hash(code),
                    col(RecoveryCode.used_at).is_(None),
                )
                .values(used_at=utc_now())
            )
            return bool(spent.rowcount)

    async def regenerate(self, user_id: uuid.UUID) -> list[str]:
        async with self.sessions() as s, s.begin():
            return await self._replace_codes(s, user_id)

    async def required_of(self, user_id: uuid.UUID) -> bool:
        """Whether a workspace where the user is an admin requires two-factor of admins: then
        they may not turn it off (one account, one second factor, in every workspace). Read
        in the connecting role: the user's other workspaces are past this one's row-level
        security, and only whether one requires it is learnt."""
        with tenancy.acting_for(None):
            async with self.sessions() as s:
                found = await s.exec(
                    select(Membership.id)
                    .join(Workspace, col(Workspace.id) == Membership.workspace_id)
                    .where(
                        Membership.user_id == user_id,
                        Membership.role == "admin",
                        col(Workspace.require_two_factor_for_admins).is_(True),
                    )
                    .limit(1)
                )
                return found.first() is not None

    async def disable(self, user_id: uuid.UUID) -> bool:
        """Turn it off and forget the secret and the codes; whether it was on."""
        async with self.sessions() as s, s.begin():
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                return False
            was_on = user.two_factor_enabled_at is not None
            user.totp_secret = None
            user.two_factor_enabled_at = None
            user.totp_last_step = None
            s.add(user)
            conn = await s.connection()
            await conn.execute(sa.delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
        return was_on

    @staticmethod
    async def _replace_codes(s: AsyncSession, user_id: uuid.UUID) -> list[str]:
        conn = await s.connection()
        await conn.execute(sa.delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
        codes = new_recovery_codes()
        for code in codes:
            s.add(RecoveryCode(user_id=user_id, code_hash=recovery_hash(code)))
        return codes
