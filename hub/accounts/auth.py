"""Credentials: argon2id passwords, signed session cookies with CSRF tokens, bearer API
tokens, short-lived single-use agent socket tokens and visitor tokens. A session cookie names
a session kept on the server (`hub.accounts.sessions`) and carries its secret; a socket token
names the session it was minted from and carries a random id that its hello consumes.

Every signed value uses its own itsdangerous salt, so a token of one kind is never
accepted as another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from hub.errors import Unauthenticated
from hub.settings import Settings

SESSION_COOKIE = "hub_session"
API_TOKEN_PREFIX = "hubt_"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists, so timing does not reveal e-mails."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_api_token() -> tuple[str, str]:
    """A fresh bearer token and the hash stored for it (the token itself is shown once)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an agent (user in a workspace) with a role."""

    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: str
    via: str  # session | token | socket
    name: str = ""
    session_id: uuid.UUID | None = None  # the server-side session (cookie and socket tokens)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class VisitorClaims:
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    visitor_id: str


class Session(NamedTuple):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    nonce: str  # the CSRF token is derived from it
    password_mark: str  # see password_mark: a new password ends every older session
    session_id: uuid.UUID  # the row kept on the server (hub.accounts.sessions)
    secret: str  # the row holds only its hash (`token_hash`)


class SocketClaims(NamedTuple):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    session_id: uuid.UUID | None  # None: minted with an API token
    token_id: str  # random: a hello consumes it, so the token works once


def password_mark(password_hash: str) -> str:
    """A short digest of the stored password hash. Sessions carry it and are refused once it
    differs, so changing a password signs out every other session at once."""
    return hashlib.sha256(("hub.pw:" + password_hash).encode()).hexdigest()[:16]


class Signer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = settings.secret_key
        self._session = URLSafeTimedSerializer(key, salt="hub.session")
        self._socket = URLSafeTimedSerializer(key, salt="hub.agent-socket")
        self._visitor = URLSafeTimedSerializer(key, salt="hub.visitor")
        self._csrf_key = hashlib.sha256(("hub.csrf:" + key).encode()).digest()

    # Sessions (cookie) and their CSRF token

    def session_cookie(
        self,
        user_id: uuid.UUID,
        workspace_id: uuid.UUID,
        password_hash: str,
        session_id: uuid.UUID,
        secret: str,
    ) -> str:
        return self._session.dumps(
            {
                "u": str(user_id),
                "w": str(workspace_id),
                "n": secrets.token_hex(8),
                "p": password_mark(password_hash),
                "s": str(session_id),
                "k": secret,
            }
        )

    def read_session(self, cookie: str) -> Session:
        data = self._loads(self._session, cookie, self.settings.session_max_age_s)
        if "s" not in data or "k" not in data:  # a cookie from before sessions were kept
            raise Unauthenticated("The session has ended; sign in again.")
        return Session(
            uuid.UUID(data["u"]),
            uuid.UUID(data["w"]),
            str(data["n"]),
            str(data["p"]),
            uuid.UUID(data["s"]),
            str(data["k"]),
        )

    def csrf_token(self, session_nonce: str) -> str:
        return hmac.new(self._csrf_key, session_nonce.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session_nonce: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf_token(session_nonce), given)

    # Agent socket tokens (what the browser puts in hello)

    def socket_token(self, principal: Principal) -> str:
        data = {
            "u": str(principal.user_id),
            "w": str(principal.workspace_id),
            "r": principal.role,
            "j": secrets.token_urlsafe(16),
        }
        if principal.session_id is not None:
            data["s"] = str(principal.session_id)
        return self._socket.dumps(data)

    def read_socket_token(self, token: str) -> SocketClaims:
        data = self._loads(self._socket, token, self.settings.socket_token_max_age_s)
        if "j" not in data:
            raise Unauthenticated("The token is not valid.")
        session = uuid.UUID(data["s"]) if "s" in data else None
        return SocketClaims(uuid.UUID(data["u"]), uuid.UUID(data["w"]), session, str(data["j"]))

    # Visitor tokens

    def visitor_token(self, claims: VisitorClaims) -> str:
        return self._visitor.dumps(
            {"w": str(claims.workspace_id), "c": str(claims.channel_id), "v": claims.visitor_id}
        )

    def read_visitor_token(self, token: str) -> VisitorClaims:
        data = self._loads(self._visitor, token, self.settings.visitor_token_max_age_s)
        return VisitorClaims(uuid.UUID(data["w"]), uuid.UUID(data["c"]), str(data["v"]))

    @staticmethod
    def _loads(serializer: URLSafeTimedSerializer, token: str, max_age_s: int) -> dict[str, str]:
        try:
            data = serializer.loads(token, max_age=max_age_s)
        except SignatureExpired:
            raise Unauthenticated("The token has expired.") from None
        except (BadSignature, ValueError, UnicodeError):
            raise Unauthenticated("The token is not valid.") from None
        if not isinstance(data, dict):
            raise Unauthenticated("The token is not valid.")
        return data
