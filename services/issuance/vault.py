"""Personal identifiers encrypted at rest: AES-256-GCM under a key chosen by its id.

A sealed value is `<key id>:<base64 of nonce + ciphertext + tag>`. New values are sealed
under the current key; every listed key still opens the values sealed under it, so keys
rotate by adding a new current key and re-sealing at leisure. The holder's token is the
associated data, so a ciphertext copied onto another holder's row does not open.
"""

import base64
import binascii
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class VaultError(ValueError):
    """A key list that cannot be used, or a sealed value that does not open."""


class Vault:
    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise VaultError(f"the current key id {current!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES or ":" in key_id or not key_id:
                raise VaultError(f"key {key_id!r} must be {KEY_BYTES} bytes with a plain id")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def from_setting(cls, text: str) -> "Vault":
        """`kid:base64key[,kid:base64key...]`; the first key is the current one."""
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key_id, _, encoded = item.partition(":")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise VaultError(f"key {key_id!r} is not base64") from None
        if not keys:
            raise VaultError("no encryption key configured")
        return cls(keys, next(iter(keys)))

    def seal(self, plaintext: str, owner: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext.encode(), owner.encode())
        return f"{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, owner: str) -> str:
        key_id, _, encoded = sealed.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise VaultError(f"no key {key_id!r} to open this value")
        raw = base64.b64decode(encoded)
        try:
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.encode())
        except InvalidTag:
            raise VaultError("the value does not open under its key and owner") from None
        return plain.decode()

    def key_id_of(self, sealed: str) -> str:
        return sealed.partition(":")[0]
