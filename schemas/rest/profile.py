"""The caller's own profile: what the account is called and signs in with."""

from __future__ import annotations

import uuid

from pydantic import Field

from schemas.rest.base import Out


class Profile(Out):
    user_id: uuid.UUID
    name: str = Field(description="How the team sees this person, in every workspace")
    email: str = Field(description="What they sign in with; not changeable here")
    two_factor: bool = Field(description="Whether two-factor sign-in is on")
