"""Channel secrets at rest: a JSON object encrypted with MultiFernet (HUB_ENCRYPTION_KEYS,
newest first). Decrypting tries every key, so a secret written under an old key keeps
working until `hub rotate-keys` re-encrypts it under the newest."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.errors import HubError


class SecretUnreadable(HubError):
    code = "secret_unreadable"
    default_message = "A stored secret cannot be decrypted with the configured keys."


class Vault:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self._newest = Fernet(keys[0])
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            value: Any = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretUnreadable() from None
        return {str(k): str(v) for k, v in value.items()}

    def is_current(self, sealed: str) -> bool:
        """Whether `sealed` is already under the newest key."""
        try:
            self._newest.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, sealed: str) -> str:
        """`sealed` re-encrypted under the newest key."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable() from None
