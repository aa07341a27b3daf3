"""Answers of two-factor sign-in: enrolment, recovery codes and the sign-in step that asks
for a code."""

from __future__ import annotations

from pydantic import Field, RootModel

from schemas.rest.accounts import LoginResult, User
from schemas.rest.base import Out, Timestamp


class LoginChallenge(Out):
    """The password was right; the session comes after a second step with `ticket`."""

    two_factor_required: bool = Field(
        default=False,
        description="true: send the ticket with a code (or a recovery code) to "
        "POST /api/auth/login/two-factor",
    )
    two_factor_setup_required: bool = Field(
        default=False,
        description="true: the workspace requires two-factor for admins and this admin has "
        "none; the ticket may only enrol (setup, then confirm, which signs in)",
    )
    ticket: str = Field(description="Signed, single-use, for this user only")
    expires_in_s: int = Field(description="The ticket is refused after this many seconds")


class LoginAnswer(RootModel[LoginResult | LoginChallenge]):
    """A session (with its cookie), or the second step it needs."""


class TwoFactorStatus(Out):
    enabled: bool
    enabled_at: Timestamp | None = Field(description="When it was confirmed; null when off")
    recovery_codes_left: int = Field(description="Unused recovery codes")
    required: bool = Field(description="The workspace requires two-factor for this user (an admin)")


class TwoFactorSetup(Out):
    otpauth_uri: str = Field(description="otpauth://totp/... for an authenticator app")
    secret: str = Field(description="The same secret in base32, for typing it in by hand")
    qr_svg: str = Field(description="The URI as a QR code, an SVG document")
    digits: int = 6
    period_s: int = 30


class RecoveryCodes(Out):
    recovery_codes: list[str] = Field(
        description="Each works once in place of a code; shown this once (stored hashed)"
    )


class TwoFactorConfirmed(RecoveryCodes):
    user: User | None = Field(
        default=None, description="When confirmed with a sign-in ticket: the new session's user"
    )
    csrf_token: str | None = Field(
        default=None, description="When confirmed with a sign-in ticket: its CSRF token"
    )
