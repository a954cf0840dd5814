"""The decider's read and command services: accounts, cards, controls, program."""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import asyncpg
import grpc
import orjson

from pyjit.decider import Decider
from pyjit.rpc import commands, model
from pyjit.rpc.errors import RpcRefusal, abort, invalid, not_found, unavailable
from pyjit.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    cards_pb2,
    cards_pb2_grpc,
    controls_pb2,
    controls_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
)

Context = grpc.aio.ServicerContext[Any, Any]
S = TypeVar("S")
Q = TypeVar("Q")
R = TypeVar("R")
TRANSACTIONS_DEFAULT, TRANSACTIONS_MAX = 50, 500


def refusing(
    method: Callable[[S, Q, Context], Awaitable[R]],
) -> Callable[[S, Q, Context], Awaitable[R]]:
    """Turn an `RpcRefusal` raised by the method into the call's status and detail."""

    @wraps(method)
    async def run(self: S, request: Q, context: Context) -> R:
        try:
            return await method(self, request, context)
        except RpcRefusal as refusal:
            await abort(context, refusal)
            raise

    return run


class Live:
    """Reaches the decider once recovery has made one."""

    def __init__(self, decider: Callable[[], Decider | None], pool: asyncpg.Pool) -> None:
        self._decider = decider
        self.pool = pool
        self._currency: str | None = None

    def decider(self) -> Decider:
        found = self._decider()
        if found is None:
            raise unavailable("recovering, not ready")
        return found

    def currency(self) -> str:
        """The program's currency: every account of one engine has it (one program)."""
        if self._currency is None:
            accounts = self.decider().engine.accounts()
            if not accounts:
                return "USD"
            self._currency = accounts[0].currency
        return self._currency


class AccountsService(accounts_pb2_grpc.AccountsServicer):
    def __init__(self, live: Live) -> None:
        self._live = live

    @refusing
    async def GetBalance(
        self, request: accounts_pb2.GetBalanceRequest, context: Context
    ) -> accounts_pb2.Balance:
        if not request.account_token:
            raise invalid("account_token", "required")
        account = self._live.decider().engine.account(request.account_token)
        if account is None:
            raise not_found("account", request.account_token)
        currency = account.currency
        return accounts_pb2.Balance(
            account_token=account.token,
            posted=model.amount(account.posted_minor, currency),
            held=model.amount(account.held_minor, currency),
            credit_line=model.amount(account.credit_line_minor, currency),
            available=model.amount(account.available_minor, currency),
        )

    @refusing
    async def ListHolds(
        self, request: accounts_pb2.ListHoldsRequest, context: Context
    ) -> accounts_pb2.ListHoldsResponse:
        if not request.account_token:
            raise invalid("account_token", "required")
        engine = self._live.decider().engine
        account = engine.account(request.account_token)
        if account is None:
            raise not_found("account", request.account_token)
        holds = orjson.loads(engine.holds(request.account_token))
        return accounts_pb2.ListHoldsResponse(
            holds=[model.hold(found, account.currency) for found in holds]
        )

    @refusing
    async def ListTransactions(
        self, request: accounts_pb2.ListTransactionsRequest, context: Context
    ) -> accounts_pb2.ListTransactionsResponse:
        if bool(request.account_token) == bool(request.card_token):
            raise invalid("account_token", "set exactly one of account_token and card_token")
        if not 0 <= request.limit <= TRANSACTIONS_MAX:
            raise invalid("limit", f"0 to {TRANSACTIONS_MAX}")
        column = "account_token" if request.account_token else "card_token"
        rows = await self._live.pool.fetch(
            f"SELECT * FROM transactions WHERE {column} = $1 ORDER BY seq DESC LIMIT $2",  # noqa: S608 (column is one of two constants)
            request.account_token or request.card_token,
            request.limit or TRANSACTIONS_DEFAULT,
        )
        return accounts_pb2.ListTransactionsResponse(transactions=[_transaction(r) for r in rows])


def _transaction(row: asyncpg.Record) -> accounts_pb2.Transaction:
    currency = row["currency"] or "USD"
    return accounts_pb2.Transaction(
        token=row["token"],
        seq=row["seq"],
        card_token=row["card_token"] or "",
        account_token=row["account_token"] or "",
        method=row["method"] or "",
        amount=model.amount(row["amount_minor"] or 0, currency),
        approved=row["approved"],
        decline_reason=row["decline_reason"] or "",
        rule_id=row["rule_id"] or "",
        rule_name=row["rule_name"] or "",
        at_ms=row["at_ms"],
        voided=row["voided_by_seq"] is not None,
        http_status=row["status"],
    )


class CardsService(cards_pb2_grpc.CardsServicer):
    def __init__(self, live: Live) -> None:
        self._live = live

    @refusing
    async def IssueCard(
        self, request: cards_pb2.IssueCardRequest, context: Context
    ) -> cards_pb2.Card:
        for name in ("token", "user_token", "card_product_token"):
            if not getattr(request, name):
                raise invalid(name, "required")
        decider = self._live.decider()
        if decider.engine.card(request.token) is not None:
            raise RpcRefusal(
                grpc.StatusCode.ALREADY_EXISTS,
                "CARD_EXISTS",
                f"card {request.token} exists",
                "token",
            )
        card: dict[str, Any] = {
            "token": request.token,
            "user_token": request.user_token,
            "card_product_token": request.card_product_token,
            "state": "ACTIVE" if request.active else "UNACTIVATED",
        }
        if request.expiration:
            card["expiration"] = request.expiration
        if request.last_four:
            card["last_four"] = request.last_four
        await commands.load(decider, {"cards": [card]}, field_prefix="cards.")
        return model.card(commands.card_of(decider, request.token))

    @refusing
    async def GetCard(self, request: cards_pb2.GetCardRequest, context: Context) -> cards_pb2.Card:
        return model.card(commands.card_of(self._live.decider(), request.token))

    async def _move(self, command: str, request: cards_pb2.CardTransitionRequest) -> cards_pb2.Card:
        decider = self._live.decider()
        document = commands.transition(
            decider,
            command,
            request.card_token,
            request.token,
            request.reason_code,
            request.channel,
        )
        await commands.load(decider, document)
        return model.card(commands.card_of(decider, request.card_token))

    @refusing
    async def ActivateCard(
        self, request: cards_pb2.CardTransitionRequest, context: Context
    ) -> cards_pb2.Card:
        return await self._move("activate", request)

    @refusing
    async def SuspendCard(
        self, request: cards_pb2.CardTransitionRequest, context: Context
    ) -> cards_pb2.Card:
        return await self._move("suspend", request)

    @refusing
    async def ReinstateCard(
        self, request: cards_pb2.CardTransitionRequest, context: Context
    ) -> cards_pb2.Card:
        return await self._move("reinstate", request)

    @refusing
    async def TerminateCard(
        self, request: cards_pb2.CardTransitionRequest, context: Context
    ) -> cards_pb2.Card:
        return await self._move("terminate", request)


class ControlsService(controls_pb2_grpc.ControlsServicer):
    def __init__(self, live: Live) -> None:
        self._live = live

    def _controls(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = orjson.loads(
            self._live.decider().engine.controls()
        )
        return found

    @refusing
    async def PutVelocityControl(
        self, request: controls_pb2.VelocityControl, context: Context
    ) -> controls_pb2.VelocityControl:
        document = commands.velocity_document(request)
        await commands.load(self._live.decider(), document, field_prefix="")
        return self._find("velocitycontrols", request.token)

    @refusing
    async def PutAuthControl(
        self, request: controls_pb2.AuthControl, context: Context
    ) -> controls_pb2.AuthControl:
        await commands.load(self._live.decider(), commands.auth_document(request))
        found = self._model("authcontrols", request.token)
        return model.auth_control(found)

    @refusing
    async def PutMccGroup(
        self, request: controls_pb2.MccGroup, context: Context
    ) -> controls_pb2.MccGroup:
        await commands.load(self._live.decider(), commands.mcc_group_document(request))
        return model.mcc_group(self._model("mccgroups", request.token))

    def _model(self, kind: str, token: str) -> dict[str, Any]:
        for found in self._controls().get(kind, []):
            if found["token"] == token:
                return found
        raise not_found(kind.rstrip("s"), token)

    def _find(self, kind: str, token: str) -> controls_pb2.VelocityControl:
        return model.velocity_control(self._model(kind, token), self._live.currency())

    @refusing
    async def ListControls(
        self, request: controls_pb2.ListControlsRequest, context: Context
    ) -> controls_pb2.ListControlsResponse:
        controls, currency = self._controls(), self._live.currency()
        return controls_pb2.ListControlsResponse(
            velocity_controls=[
                model.velocity_control(found, currency) for found in controls["velocitycontrols"]
            ],
            auth_controls=[model.auth_control(found) for found in controls["authcontrols"]],
            mcc_groups=[model.mcc_group(found) for found in controls["mccgroups"]],
        )

    @refusing
    async def DeactivateControl(
        self, request: controls_pb2.DeactivateControlRequest, context: Context
    ) -> controls_pb2.DeactivateControlResponse:
        if not request.token:
            raise invalid("token", "required")
        controls, currency = self._controls(), self._live.currency()
        for found in controls["velocitycontrols"]:
            if found["token"] == request.token:
                document = {**model.program_velocity(found, currency), "active": False}
                await commands.load(self._live.decider(), {"velocitycontrols": [document]})
                return controls_pb2.DeactivateControlResponse(kind="velocitycontrol")
        for found in controls["authcontrols"]:
            if found["token"] == request.token:
                document = {**model.program_auth(found), "active": False}
                await commands.load(self._live.decider(), {"authcontrols": [document]})
                return controls_pb2.DeactivateControlResponse(kind="authcontrol")
        raise not_found("control", request.token)

    @refusing
    async def GetAvailable(
        self, request: controls_pb2.GetAvailableRequest, context: Context
    ) -> controls_pb2.GetAvailableResponse:
        if not request.user_token:
            raise invalid("user_token", "required")
        decider = self._live.decider()
        if decider.engine.holder(request.user_token) is None:
            raise not_found("holder", request.user_token)
        at_ms = request.at_ms or decider.clock.now_ms()
        found = orjson.loads(decider.engine.velocity_available(request.user_token, at_ms))
        currency = self._live.currency()
        return controls_pb2.GetAvailableResponse(
            available=[model.available(item, currency) for item in found]
        )


class ProgramService(program_pb2_grpc.ProgramServicer):
    def __init__(self, live: Live) -> None:
        self._live = live

    @refusing
    async def LoadProgram(
        self, request: program_pb2.LoadProgramRequest, context: Context
    ) -> program_pb2.LoadProgramResponse:
        if not request.document:
            raise invalid("document", "empty")
        decider = self._live.decider()
        entries = await commands.load(decider, request.document)
        return program_pb2.LoadProgramResponse(entries=entries, last_seq=decider.engine.last_seq)
