"""The processor's REST API (Marqeta Core API v3): an async client, its errors and shapes."""

from services.marqeta.client import MarqetaClient, RetryPolicy
from services.marqeta.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProcessorClientError,
    ProcessorError,
    ProcessorServerError,
    ProcessorUnavailableError,
    UnprocessableError,
)

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "MarqetaClient",
    "NotFoundError",
    "ProcessorClientError",
    "ProcessorError",
    "ProcessorServerError",
    "ProcessorUnavailableError",
    "RetryPolicy",
    "UnprocessableError",
]
