"""Identity checks (KYC) of personal cardholders through a provider interface.

The sandbox provider approves any applicant whose family name is not "Reject", and
rejects those with the reasons a real provider would give, so the retry path is testable.
At most `KYC_ATTEMPTS_MAX` attempts per holder, as the processor allows.
"""

from dataclasses import dataclass
from typing import Protocol

KYC_ATTEMPTS_MAX = 2


@dataclass(frozen=True)
class Applicant:
    first_name: str
    last_name: str
    birth_date: str
    address: str
    country: str


@dataclass(frozen=True)
class KycResult:
    status: str  # approved, rejected or pending
    reasons: tuple[str, ...]


class KycProvider(Protocol):
    async def check(self, holder_token: str, applicant: Applicant, reference: str) -> KycResult: ...


class SandboxKyc:
    async def check(self, holder_token: str, applicant: Applicant, reference: str) -> KycResult:
        if applicant.last_name.strip().lower() == "reject":
            return KycResult("rejected", ("The name does not match the identity document.",))
        return KycResult("approved", ())


def applicant_problems(applicant: Applicant) -> list[str]:
    problems = []
    for label, value in (
        ("First name", applicant.first_name),
        ("Last name", applicant.last_name),
        ("Address", applicant.address),
    ):
        if not value.strip() or len(value) > 200:
            problems.append(f"{label} is needed (at most 200 characters).")
    parts = applicant.birth_date.split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        problems.append("Birth date must look like 1990-04-30.")
    if len(applicant.country) != 3 or not applicant.country.isalpha():
        problems.append("Country must be a three-letter code such as USA.")
    return problems
