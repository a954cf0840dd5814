"""Personal identifiers sealed with AES-256-GCM: it proves a sealed value names its key,
opens only for its owner, still opens after the current key rotates, and that a bad key
setting is refused with a reason."""

import base64
import secrets

import pytest

from services.issuance.vault import Vault, VaultError


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_sealed_value_names_its_key_and_opens_for_its_owner_only() -> None:
    vault = Vault.from_setting(f"k1:{_key()}")
    sealed = vault.seal("123-45-6789", "user-1")
    assert vault.key_id_of(sealed) == "k1"
    assert "6789" not in sealed
    assert vault.open(sealed, "user-1") == "123-45-6789"
    with pytest.raises(VaultError):
        vault.open(sealed, "user-2")


def test_two_seals_of_one_value_differ() -> None:
    vault = Vault.from_setting(f"k1:{_key()}")
    assert vault.seal("1990-12-10", "u") != vault.seal("1990-12-10", "u")


def test_rotation_keeps_old_values_readable() -> None:
    old_key = _key()
    before = Vault.from_setting(f"k1:{old_key}")
    sealed = before.seal("A1234567", "u")
    after = Vault.from_setting(f"k2:{_key()},k1:{old_key}")
    assert after.open(sealed, "u") == "A1234567"
    assert after.key_id_of(after.seal("A1234567", "u")) == "k2"
    with pytest.raises(VaultError, match="no key 'k1'"):
        Vault.from_setting(f"k2:{_key()}").open(sealed, "u")


@pytest.mark.parametrize(
    "setting",
    ["", "k1:not-base64!", f"k1:{base64.b64encode(b'short').decode()}"],
)
def test_bad_key_settings_are_refused(setting: str) -> None:
    with pytest.raises(VaultError):
        Vault.from_setting(setting)
