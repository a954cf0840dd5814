"""The simulator's error answers, in the processor's shape.

An error body is `{"error_code": "...", "error_message": "..."}`. The processor's error
codes are six digits whose first three are the HTTP status; its published list does not
cover every rule the simulator enforces, so the codes below are the simulator's own, stable
once written (never renumbered), in the processor's numbering scheme.
"""

from collections.abc import Mapping
from typing import TypeVar

Resource = TypeVar("Resource")

MALFORMED_BODY = "400100"
MISSING_FIELD = "400101"
INVALID_FIELD = "400102"
INVALID_AMOUNT = "400103"
UNKNOWN_REFERENCE = "400104"
INVALID_TRANSITION = "400110"
KYC_NOT_ALLOWED = "400120"
KYC_ATTEMPTS_EXHAUSTED = "400121"
KYC_REQUIRED = "400122"
CONTROL_LIMIT_REACHED = "400123"
WEBHOOK_UNREACHABLE = "400130"
BAD_CREDENTIALS = "401100"
NOT_FOUND = "404100"
DUPLICATE_TOKEN = "409100"  # noqa: S105 - an error code, not a credential
TRANSACTION_STATE = "422100"


class ApiError(Exception):
    """An answer other than success, raised from a handler and rendered by a middleware."""

    def __init__(self, status: int, error_code: str, error_message: str) -> None:
        super().__init__(f"{status} {error_code}: {error_message}")
        self.status = status
        self.error_code = error_code
        self.error_message = error_message


def invalid(message: str, error_code: str = INVALID_FIELD) -> ApiError:
    """A 400: the request breaks a validation rule."""
    return ApiError(400, error_code, message)


def not_found(kind: str, token: str) -> ApiError:
    """A 404: no resource of that kind has that token."""
    return ApiError(404, NOT_FOUND, f"{kind} not found: {token}")


def found(resources: Mapping[str, Resource], kind: str, token: str) -> Resource:
    """The resource with that token, or the 404 that names what was missing."""
    if token not in resources:
        raise not_found(kind, token)
    return resources[token]
