"""An async client for the processor's REST API (Marqeta Core API v3).

Every call is one HTTP request with HTTP Basic auth (application token : admin access
token) and a total timeout. A 5xx or a failed connection is retried with exponential
backoff (tenacity); a 4xx is raised at once as its typed `ProcessorError`, because sending
it again would fail the same way. Creates get a client-chosen `token` when the caller gave
none, so a create retried after a lost answer meets 409 instead of making a twin.
"""

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from services.marqeta import codec
from services.marqeta.auth import basic_authorization
from services.marqeta.errors import ProcessorUnavailableError, error_for_status, is_transient
from services.marqeta.shapes import (
    AuthControl,
    AuthControlExemptMid,
    AuthControlExemptMidRequest,
    AuthControlRequest,
    Balances,
    Business,
    BusinessRequest,
    BusinessTransition,
    BusinessTransitionRequest,
    Card,
    CardProduct,
    CardProductRequest,
    CardRequest,
    CardTransition,
    CardTransitionRequest,
    GpaOrder,
    GpaOrderRequest,
    Kyc,
    KycRequest,
    MccGroup,
    MccGroupRequest,
    Page,
    ProgramFundingSource,
    ProgramFundingSourceRequest,
    ProgramGatewayFundingSource,
    ProgramGatewayFundingSourceRequest,
    SimulationRequest,
    SimulationResponse,
    Transaction,
    User,
    UserRequest,
    UserTransition,
    UserTransitionRequest,
    VelocityControl,
    VelocityControlBalance,
    VelocityControlRequest,
    Webhook,
    WebhookRequest,
)

Query = Mapping[str, str | int]


def _random_token() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: `attempts` in all, waits doubling from the first."""

    attempts: int = 4
    wait_first_s: float = 0.25
    wait_max_s: float = 8.0


class MarqetaClient:
    """One program's connection to the processor's REST API."""

    def __init__(
        self,
        base_url: str,
        application_token: str,
        admin_access_token: str,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        new_token: Callable[[], str] = _random_token,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._authorization = basic_authorization(application_token, admin_access_token)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry = retry or RetryPolicy()
        self._new_token = new_token
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _send_once(
        self, method: str, path: str, body: Mapping[str, Any] | None, query: Query | None
    ) -> Any:
        data = None if body is None else codec.encode(body)
        headers = {"Accept": "application/json", "Authorization": self._authorization}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(
                method,
                self._base_url + path,
                data=data,
                params=query,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise ProcessorUnavailableError(f"{method} {path}: {error!r}") from error

        try:
            document = codec.decode(raw) if raw else None
        except codec.CodecError:
            document = None
        if status >= 400:
            raise error_for_status(status, document)
        return document

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        query: Query | None = None,
    ) -> Any:
        """Send one request under the retry policy and return the decoded body."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait_exponential(multiplier=self._retry.wait_first_s, max=self._retry.wait_max_s),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        return await retrying(self._send_once, method, path, body, query)

    async def _create(self, path: str, body: Mapping[str, Any]) -> Any:
        with_token = dict(body)
        with_token.setdefault("token", self._new_token())
        return await self.request("POST", path, with_token)

    # Users and their transitions.

    async def create_user(self, user: UserRequest) -> User:
        return cast(User, await self._create("/users", user))

    async def get_user(self, token: str) -> User:
        return cast(User, await self.request("GET", f"/users/{token}"))

    async def update_user(self, token: str, changes: UserRequest) -> User:
        return cast(User, await self.request("PUT", f"/users/{token}", changes))

    async def transition_user(self, transition: UserTransitionRequest) -> UserTransition:
        return cast(UserTransition, await self._create("/usertransitions", transition))

    async def list_user_transitions(self, user_token: str) -> Page[UserTransition]:
        path = f"/usertransitions/user/{user_token}"
        return cast(Page[UserTransition], await self.request("GET", path, query={"count": 100}))

    # Businesses and their transitions.

    async def create_business(self, business: BusinessRequest) -> Business:
        return cast(Business, await self._create("/businesses", business))

    async def get_business(self, token: str) -> Business:
        return cast(Business, await self.request("GET", f"/businesses/{token}"))

    async def update_business(self, token: str, changes: BusinessRequest) -> Business:
        return cast(Business, await self.request("PUT", f"/businesses/{token}", changes))

    async def transition_business(
        self, transition: BusinessTransitionRequest
    ) -> BusinessTransition:
        document = await self._create("/businesstransitions", transition)
        return cast(BusinessTransition, document)

    # Card products, cards and card transitions.

    async def create_card_product(self, card_product: CardProductRequest) -> CardProduct:
        return cast(CardProduct, await self._create("/cardproducts", card_product))

    async def get_card_product(self, token: str) -> CardProduct:
        return cast(CardProduct, await self.request("GET", f"/cardproducts/{token}"))

    async def create_card(self, card: CardRequest) -> Card:
        return cast(Card, await self._create("/cards", card))

    async def get_card(self, token: str) -> Card:
        return cast(Card, await self.request("GET", f"/cards/{token}"))

    async def list_cards_for_user(self, user_token: str, count: int = 100) -> Page[Card]:
        path = f"/cards/user/{user_token}"
        return cast(Page[Card], await self.request("GET", path, query={"count": count}))

    async def transition_card(self, transition: CardTransitionRequest) -> CardTransition:
        return cast(CardTransition, await self._create("/cardtransitions", transition))

    # Identity verification (KYC).

    async def verify_identity(self, request: KycRequest) -> Kyc:
        return cast(Kyc, await self._create("/kyc", request))

    async def get_kyc(self, token: str) -> Kyc:
        return cast(Kyc, await self.request("GET", f"/kyc/{token}"))

    async def list_kyc_for_user(self, user_token: str) -> Page[Kyc]:
        return cast(Page[Kyc], await self.request("GET", f"/kyc/user/{user_token}"))

    async def list_kyc_for_business(self, business_token: str) -> Page[Kyc]:
        document = await self.request("GET", f"/kyc/business/{business_token}")
        return cast(Page[Kyc], document)

    # Spend controls: velocity, authorization, exempt merchants, MCC groups.

    async def create_velocity_control(self, control: VelocityControlRequest) -> VelocityControl:
        return cast(VelocityControl, await self._create("/velocitycontrols", control))

    async def get_velocity_control(self, token: str) -> VelocityControl:
        return cast(VelocityControl, await self.request("GET", f"/velocitycontrols/{token}"))

    async def update_velocity_control(
        self, token: str, changes: VelocityControlRequest
    ) -> VelocityControl:
        document = await self.request("PUT", f"/velocitycontrols/{token}", changes)
        return cast(VelocityControl, document)

    async def list_velocity_available(self, user_token: str) -> Page[VelocityControlBalance]:
        path = f"/velocitycontrols/user/{user_token}/available"
        document = await self.request("GET", path, query={"count": 100})
        return cast(Page[VelocityControlBalance], document)

    async def create_auth_control(self, control: AuthControlRequest) -> AuthControl:
        return cast(AuthControl, await self._create("/authcontrols", control))

    async def get_auth_control(self, token: str) -> AuthControl:
        return cast(AuthControl, await self.request("GET", f"/authcontrols/{token}"))

    async def create_exempt_mid(
        self, exemption: AuthControlExemptMidRequest
    ) -> AuthControlExemptMid:
        document = await self._create("/authcontrols/exemptmids", exemption)
        return cast(AuthControlExemptMid, document)

    async def create_mcc_group(self, group: MccGroupRequest) -> MccGroup:
        return cast(MccGroup, await self._create("/mccgroups", group))

    async def get_mcc_group(self, token: str) -> MccGroup:
        return cast(MccGroup, await self.request("GET", f"/mccgroups/{token}"))

    # Funding: sources, GPA orders, balances.

    async def create_program_gateway_funding_source(
        self, source: ProgramGatewayFundingSourceRequest
    ) -> ProgramGatewayFundingSource:
        document = await self._create("/fundingsources/programgateway", source)
        return cast(ProgramGatewayFundingSource, document)

    async def get_program_gateway_funding_source(self, token: str) -> ProgramGatewayFundingSource:
        document = await self.request("GET", f"/fundingsources/programgateway/{token}")
        return cast(ProgramGatewayFundingSource, document)

    async def create_program_funding_source(
        self, source: ProgramFundingSourceRequest
    ) -> ProgramFundingSource:
        document = await self._create("/fundingsources/program", source)
        return cast(ProgramFundingSource, document)

    async def create_gpa_order(self, order: GpaOrderRequest) -> GpaOrder:
        return cast(GpaOrder, await self._create("/gpaorders", order))

    async def get_gpa_order(self, token: str) -> GpaOrder:
        return cast(GpaOrder, await self.request("GET", f"/gpaorders/{token}"))

    async def get_balances(self, holder_token: str) -> Balances:
        return cast(Balances, await self.request("GET", f"/balances/{holder_token}"))

    # Transactions.

    async def get_transaction(self, token: str) -> Transaction:
        return cast(Transaction, await self.request("GET", f"/transactions/{token}"))

    async def list_transactions(
        self, *, user_token: str | None = None, card_token: str | None = None, count: int = 100
    ) -> Page[Transaction]:
        query: dict[str, str | int] = {"count": count}
        if user_token is not None:
            query["user_token"] = user_token
        if card_token is not None:
            query["card_token"] = card_token
        return cast(Page[Transaction], await self.request("GET", "/transactions", query=query))

    async def list_related_transactions(self, token: str) -> Page[Transaction]:
        document = await self.request("GET", f"/transactions/{token}/related")
        return cast(Page[Transaction], document)

    # Webhooks.

    async def create_webhook(self, webhook: WebhookRequest) -> Webhook:
        return cast(Webhook, await self._create("/webhooks", webhook))

    async def get_webhook(self, token: str) -> Webhook:
        return cast(Webhook, await self.request("GET", f"/webhooks/{token}"))

    async def ping_webhook(self, token: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self.request("POST", f"/webhooks/{token}/ping", {}))

    async def resend_webhook_event(
        self, token: str, event_type: str, event_token: str
    ) -> dict[str, Any]:
        """Ask the processor to deliver one past event again (`event_type` is its base)."""
        path = f"/webhooks/{token}/{event_type}/{event_token}"
        return cast(dict[str, Any], await self.request("POST", path, {}))

    # Sandbox simulations of card transactions.

    async def simulate(self, kind: str, request: SimulationRequest) -> SimulationResponse:
        """Run one sandbox card transaction, e.g. `kind="authorization.clearing"`."""
        path = f"/simulations/cardtransactions/{kind}"
        return cast(SimulationResponse, await self.request("POST", path, request))

    async def simulate_authorization(self, request: SimulationRequest) -> Transaction:
        return (await self.simulate("authorization", request))["transaction"]

    async def simulate_clearing(self, request: SimulationRequest) -> Transaction:
        return (await self.simulate("authorization.clearing", request))["transaction"]

    async def simulate_reversal(self, request: SimulationRequest) -> Transaction:
        return (await self.simulate("authorization.reversal", request))["transaction"]
