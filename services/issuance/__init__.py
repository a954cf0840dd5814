"""Card issuance and KYC: onboard people and companies with their employees at the
processor, verify their identity, issue and manage virtual cards, and mirror every change
into the JIT gateway so its view of cards and holders is always the processor's."""

from services.issuance.app import create_app
from services.issuance.service import Issuance, IssuanceError
from services.issuance.vault import Vault, VaultError

__all__ = ["Issuance", "IssuanceError", "Vault", "VaultError", "create_app"]
