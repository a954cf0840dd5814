"""Roles, who is signed in, and what each role may reach.

Company data is always read through a `Viewer`: queries take the company and holder from
it, never from the URL, so no typed id can reach another company's rows.
"""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PROGRAM_ADMIN = "program_admin"
    COMPANY_ADMIN = "company_admin"
    EMPLOYEE = "employee"
    CARDHOLDER = "cardholder"
    SUPPORT = "support"
    AUDITOR = "auditor"


# Roles that see other people's money or change it sign in with a second factor.
SECOND_FACTOR_REQUIRED = frozenset(
    {Role.PROGRAM_ADMIN, Role.COMPANY_ADMIN, Role.SUPPORT, Role.AUDITOR}
)
COMPANY_ROLES = frozenset({Role.COMPANY_ADMIN, Role.EMPLOYEE})
HOLDER_ROLES = frozenset({Role.EMPLOYEE, Role.CARDHOLDER})
STAFF_ROLES = frozenset({Role.PROGRAM_ADMIN, Role.SUPPORT, Role.AUDITOR})


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, as the session and the database know them."""

    user_id: int
    email: str
    display_name: str
    role: Role
    company_id: int | None
    holder_token: str | None

    def home(self) -> str:
        """The first page this role sees after signing in."""
        if self.role is Role.COMPANY_ADMIN:
            return "/company"
        if self.role in HOLDER_ROLES:
            return "/me"
        return "/admin"
