"""Typed errors for the processor's answers, one class per HTTP status class.

Every error carries the processor's own `error_code` and `error_message` from the response
body (`{"error_code": "400057", "error_message": "..."}`), so callers branch on the code, not
on the text. Only `ProcessorServerError` and `ProcessorUnavailableError` are transient: the
client retries those and never a 4xx, because a 4xx would fail the same way again.
"""

from typing import Any


class ProcessorError(Exception):
    """The processor refused or could not answer a request."""

    def __init__(
        self,
        error_message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status or 'no status'} {error_code or '-'}: {error_message}")
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.body = body


class ProcessorClientError(ProcessorError):
    """A 4xx: the request itself is wrong; sending it again fails again."""


class InvalidRequestError(ProcessorClientError):
    """400: a field is missing or invalid, or a rule of the resource forbids the change."""


class AuthenticationError(ProcessorClientError):
    """401 or 403: the application token or admin access token is wrong or lacks rights."""


class NotFoundError(ProcessorClientError):
    """404: no resource has that token."""


class ConflictError(ProcessorClientError):
    """409: a resource with that token already exists."""


class UnprocessableError(ProcessorClientError):
    """412 or 422: the request is well formed but the resource's state refuses it."""


class ProcessorServerError(ProcessorError):
    """A 5xx: the processor failed; the same request may succeed later."""


class ProcessorUnavailableError(ProcessorError):
    """No HTTP answer at all: connection refused or reset, or the timeout ran out."""


_CLIENT_ERRORS: dict[int, type[ProcessorClientError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    412: UnprocessableError,
    422: UnprocessableError,
}


def error_for_status(status: int, body: Any) -> ProcessorError:
    """Build the typed error for a non-2xx answer from its status and decoded body."""
    fields = body if isinstance(body, dict) else {}
    error_code = fields.get("error_code")
    error_message = fields.get("error_message")
    code = None if error_code is None else str(error_code)
    message = str(error_message) if error_message is not None else f"HTTP {status}"
    if status >= 500:
        return ProcessorServerError(message, status=status, error_code=code, body=body)
    error_class = _CLIENT_ERRORS.get(status, ProcessorClientError)
    return error_class(message, status=status, error_code=code, body=body)


def is_transient(error: BaseException) -> bool:
    """Whether a retry may succeed: a 5xx or no answer, never a 4xx."""
    return isinstance(error, ProcessorServerError | ProcessorUnavailableError)
