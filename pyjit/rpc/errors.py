"""gRPC errors with a machine-readable detail.

Every refusal is a status code plus a `google.rpc.Status` in the `grpc-status-details-bin`
trailer (grpcio-status) holding a `google.rpc.ErrorInfo` (reason, domain `pyjit.v1`) and,
for bad input, a `google.rpc.BadRequest` naming the field. Clients read it back with
`grpc_status.rpc_status.from_call` (see `detail_of`).
"""

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "pyjit.v1"


class RpcRefusal(Exception):
    """A request the service refuses; the servicer turns it into an aborted call."""

    def __init__(
        self, code: grpc.StatusCode, reason: str, message: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field


def invalid(field: str, message: str, reason: str = "INVALID_FIELD") -> RpcRefusal:
    return RpcRefusal(grpc.StatusCode.INVALID_ARGUMENT, reason, f"{field}: {message}", field)


def not_found(what: str, token: str) -> RpcRefusal:
    return RpcRefusal(grpc.StatusCode.NOT_FOUND, f"UNKNOWN_{what.upper()}", f"no {what} {token}")


def unavailable(message: str) -> RpcRefusal:
    return RpcRefusal(grpc.StatusCode.UNAVAILABLE, "NOT_READY", message)


def status_of(refusal: RpcRefusal) -> grpc.Status:
    """The call status to abort with, its detail packed in the trailing metadata."""
    info = error_details_pb2.ErrorInfo(reason=refusal.reason, domain=DOMAIN)
    if refusal.field is not None:
        info.metadata["field"] = refusal.field
    details = [_packed(info)]
    if refusal.field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=refusal.field, description=refusal.message
        )
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    code: int = refusal.code.value[0]
    message = status_pb2.Status(code=code, message=refusal.message, details=details)
    return rpc_status.to_status(message)


async def abort(context: grpc.aio.ServicerContext[object, object], refusal: RpcRefusal) -> None:
    status = status_of(refusal)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _packed(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


@dataclass(frozen=True)
class Detail:
    """What a client learns from a refused call."""

    code: grpc.StatusCode
    reason: str
    field: str | None
    message: str


def detail_of(error: grpc.aio.AioRpcError) -> Detail:
    """Read the machine-readable detail of a failed call (a client's helper)."""
    reason, field = "", None
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for packed in status.details if status is not None else []:
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            reason = info.reason
            field = info.metadata.get("field", field)
    return Detail(error.code(), reason, field, error.details() or "")


# The numeric codes agree with grpc.StatusCode (checked here so a mismatch fails at import).
assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT
