"""Top-ups of personal accounts through a funding provider.

A provider takes the money in (a bank transfer, later a crypto rail) and says when it has
settled; only then does the portal load a GPA order that credits the holder's account.
The sandbox provider settles bank transfers at once and refuses amounts ending in .13, so
both outcomes can be seen without a real bank.
"""

from dataclasses import dataclass
from typing import Protocol

RAILS = {"bank_transfer": "Bank transfer", "crypto": "Crypto"}
SANDBOX_FAILING_CENTS = 13


@dataclass(frozen=True)
class FundingResult:
    reference: str
    status: str  # settled, pending or failed
    message: str


class FundingProvider(Protocol):
    async def collect(
        self, holder_token: str, rail: str, amount_minor: int, currency: str, reference: str
    ) -> FundingResult:
        """Ask the provider for the money; `reference` makes a retry the same request."""
        ...


class SandboxFunding:
    async def collect(
        self, holder_token: str, rail: str, amount_minor: int, currency: str, reference: str
    ) -> FundingResult:
        if rail == "crypto":
            return FundingResult(reference, "pending", "Waiting for the crypto rail (sandbox).")
        if amount_minor % 100 == SANDBOX_FAILING_CENTS:
            return FundingResult(reference, "failed", "The bank refused the transfer (sandbox).")
        return FundingResult(reference, "settled", "Transfer received (sandbox).")
