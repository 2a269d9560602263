"""Secret values at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key the
operator holds outside the database.

The key is `secrets_key` (KINGPOST_SECRETS_KEY) when set, else the file `secrets_key_file` (default
`$KINGPOST_HOME/state/secrets.key`), made (mode 0600) on first use. A database copied without the
key holds only ciphertext; a key that does not open a stored value says so instead of answering.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from kingpost.errors import Conflict


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    @classmethod
    def from_settings(cls, key: str, key_file: Path) -> SecretBox:
        if key:
            return cls(key.encode())
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(key_file.read_bytes().strip())

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, name: str, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise Conflict(
                f"secret {name!r} cannot be decrypted with this scheduler's secrets key: was the key "
                "(KINGPOST_SECRETS_KEY or secrets_key_file) changed? Set the secret again") from None
