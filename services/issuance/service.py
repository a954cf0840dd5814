"""Onboarding, KYC and cards: the processor first, then our tables, then the gateway.

Every change is made at the processor (the system of record for holders and cards), kept in
our tables with identifiers sealed, and mirrored into the JIT gateway as a program file
(`POST /admin/program`, docs/program-file.md), so the gateway decides on the processor's
view. A failed mirror is an error the caller sees, and the mirror is idempotent by token,
so the caller retries the same request.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Protocol, cast

import aiohttp
import asyncpg
import orjson

from services.issuance.vault import Vault
from services.marqeta import MarqetaClient, codec
from services.marqeta.errors import ProcessorClientError
from services.marqeta.shapes import BusinessRequest, UserRequest, VelocityControlRequest

KYC_ATTEMPTS_MAX = 2
CARD_STATES = ("ACTIVE", "SUSPENDED", "TERMINATED")
PERSON_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address1",
    "address2",
    "city",
    "state",
    "postal_code",
    "country",
)
COMPANY_FIELDS = ("business_name_legal", "business_name_dba", "office_location")

INSERT_HOLDER = """
INSERT INTO issuance_holders (token, kind, parent_token, display_name, status,
                              identifications_sealed, birth_date_sealed)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
HOLDER = "SELECT * FROM issuance_holders WHERE token = $1"
KYC_DONE = """
UPDATE issuance_holders SET kyc_status = $2, kyc_attempts = kyc_attempts + 1, status = $3
WHERE token = $1
"""
INSERT_CARD = """
INSERT INTO issuance_cards (token, holder_token, card_product_token, state, last_four)
VALUES ($1, $2, $3, $4, $5)
"""
CARD = "SELECT * FROM issuance_cards WHERE token = $1"
CARD_STATE = "UPDATE issuance_cards SET state = $2 WHERE token = $1"


class IssuanceError(Exception):
    """A request the service refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


class Mirror(Protocol):
    async def load(self, program: dict[str, Any]) -> None: ...


class GatewayMirror:
    """The gateway's `POST /admin/program`, with its admin credentials."""

    def __init__(self, session: aiohttp.ClientSession, url: str, authorization: str) -> None:
        self._session = session
        self._url = url.rstrip("/") + "/admin/program"
        self._headers = {"Authorization": authorization, "Content-Type": "application/json"}

    async def load(self, program: dict[str, Any]) -> None:
        body = codec.encode(program)
        async with self._session.post(self._url, data=body, headers=self._headers) as got:
            text = await got.text()
            if got.status != 200:
                raise IssuanceError(502, f"the gateway refused the change: {got.status} {text}")


@dataclass(frozen=True)
class Product:
    """The card product every card is issued on; it must fund through our gateway."""

    token: str
    name: str
    currency_code: str = "USD"


def _processor_refused(error: ProcessorClientError) -> IssuanceError:
    status = error.status if error.status in (400, 404, 409, 422) else 422
    return IssuanceError(status or 422, error.error_message, error.error_code)


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise IssuanceError(400, f"{name} is required text")
    return value


class Issuance:
    def __init__(
        self, pool: asyncpg.Pool, processor: MarqetaClient, mirror: Mirror, vault: Vault
    ) -> None:
        self._pool = pool
        self._processor = processor
        self._mirror = mirror
        self._vault = vault
        self.product: Product | None = None

    async def prepare(self, card_product_token: str, program_token: str) -> None:
        """Create our tables, check the card product uses a gateway, mirror program and
        product."""
        schema = resources.files("services.issuance").joinpath("schema.sql").read_text()
        async with self._pool.acquire() as connection:
            await connection.execute(schema)
        product = await self._processor.get_card_product(card_product_token)
        config = cast(dict[str, Any], product.get("config", {}))
        funding = config.get("jit_funding", {}).get("programgateway_funding_source", {})
        if not funding.get("enabled"):
            raise IssuanceError(400, f"card product {card_product_token} is not JIT funded")
        self.product = Product(product["token"], str(product.get("name", "cards")))
        jit = {"programgateway_funding_source": {"enabled": True}}
        await self._mirror.load(
            {
                "program": {"token": program_token, "currency_code": "USD"},
                "cardproducts": [
                    {
                        "token": self.product.token,
                        "name": self.product.name,
                        "config": {"jit_funding": jit},
                    }
                ],
            }
        )

    async def onboard_person(
        self, person: dict[str, Any], parent_token: str | None = None
    ) -> dict[str, Any]:
        request = cast(UserRequest, {k: person[k] for k in PERSON_FIELDS if k in person})
        first, last = _text(person, "first_name"), _text(person, "last_name")
        identifications = person.get("identifications", [])
        birth_date = _text(person, "birth_date", required=False)
        if identifications:
            request["identifications"] = identifications
        if birth_date is not None:
            request["birth_date"] = birth_date
        if parent_token is not None:
            request["parent_token"] = parent_token
            request["uses_parent_account"] = True
        try:
            user = await self._processor.create_user(request)
        except ProcessorClientError as error:
            raise _processor_refused(error) from error

        token = user["token"]
        sealed_ids = self._vault.seal(orjson.dumps(identifications).decode(), token)
        sealed_birth = None if birth_date is None else self._vault.seal(birth_date, token)
        await self._pool.execute(
            INSERT_HOLDER,
            token,
            "user",
            parent_token,
            f"{first} {last}",
            user["status"],
            sealed_ids,
            sealed_birth,
        )

        mirrored: dict[str, Any] = {
            "token": token,
            "status": user["status"],
            "first_name": first,
            "last_name": last,
        }
        if parent_token is not None:
            mirrored |= {"parent_token": parent_token, "uses_parent_account": True}
        await self._mirror.load({"users": [mirrored]})
        return {"token": token, "kind": "user", "status": user["status"]}

    async def onboard_company(
        self, company: dict[str, Any], employees: list[dict[str, Any]]
    ) -> dict[str, Any]:
        name = _text(company, "business_name_legal")
        request = cast(BusinessRequest, {k: company[k] for k in COMPANY_FIELDS if k in company})
        identifications = company.get("identifications", [])
        if identifications:
            request["identifications"] = identifications
        try:
            business = await self._processor.create_business(request)
        except ProcessorClientError as error:
            raise _processor_refused(error) from error

        token = business["token"]
        sealed_ids = self._vault.seal(orjson.dumps(identifications).decode(), token)
        await self._pool.execute(
            INSERT_HOLDER, token, "business", None, name, business["status"], sealed_ids, None
        )
        dba = company.get("business_name_dba") or name
        await self._mirror.load(
            {
                "businesses": [
                    {"token": token, "status": business["status"], "business_name_dba": dba}
                ]
            }
        )

        staff = [await self.onboard_person(person, parent_token=token) for person in employees]
        return {
            "token": token,
            "kind": "business",
            "status": business["status"],
            "employees": staff,
        }

    async def _holder(self, token: str) -> asyncpg.Record:
        row = await self._pool.fetchrow(HOLDER, token)
        if row is None:
            raise IssuanceError(404, f"no account holder {token}")
        return row

    async def verify(self, token: str) -> dict[str, Any]:
        """One KYC attempt at the processor; the holder's status follows its result."""
        holder = await self._holder(token)
        if holder["kyc_status"] == "SUCCESS":
            raise IssuanceError(409, f"{token} already passed KYC")
        if holder["kyc_attempts"] >= KYC_ATTEMPTS_MAX:
            raise IssuanceError(409, f"{token} has used its {KYC_ATTEMPTS_MAX} KYC attempts")
        field = "user_token" if holder["kind"] == "user" else "business_token"
        try:
            kyc = await self._processor.verify_identity({field: token})  # type: ignore[misc]
        except ProcessorClientError as error:
            raise _processor_refused(error) from error
        result = kyc["result"]["status"]

        if holder["kind"] == "user":
            status = (await self._processor.get_user(token))["status"]
        else:
            status = (await self._processor.get_business(token))["status"]
        await self._pool.execute(KYC_DONE, token, result, status)
        collection = "users" if holder["kind"] == "user" else "businesses"
        await self._mirror.load({collection: [await self._mirrored_holder(holder, status)]})
        return {
            "token": token,
            "kyc_status": result,
            "kyc_attempts": holder["kyc_attempts"] + 1,
            "status": status,
            "codes": [code["code"] for code in kyc["result"].get("codes", [])],
        }

    async def _mirrored_holder(self, holder: asyncpg.Record, status: str) -> dict[str, Any]:
        mirrored: dict[str, Any] = {"token": holder["token"], "status": status}
        if holder["kind"] == "user":
            first, _, last = holder["display_name"].partition(" ")
            mirrored |= {"first_name": first, "last_name": last}
            if holder["parent_token"] is not None:
                mirrored |= {"parent_token": holder["parent_token"], "uses_parent_account": True}
        else:
            mirrored["business_name_dba"] = holder["display_name"]
        return mirrored

    async def issue_card(self, holder_token: str) -> dict[str, Any]:
        """A virtual card on the gateway-funded product, for an ACTIVE person."""
        assert self.product is not None, "prepare() first"
        holder = await self._holder(holder_token)
        if holder["kind"] != "user":
            raise IssuanceError(409, "cards are issued to people; a company's go to employees")
        if holder["status"] != "ACTIVE":
            raise IssuanceError(409, f"{holder_token} is {holder['status']}, not ACTIVE")
        try:
            card = await self._processor.create_card(
                {"user_token": holder_token, "card_product_token": self.product.token}
            )
        except ProcessorClientError as error:
            raise _processor_refused(error) from error

        # Only the last four digits are kept; the processor's `pan` is never read.
        last_four = str(card["last_four"])
        await self._pool.execute(
            INSERT_CARD, card["token"], holder_token, self.product.token, card["state"], last_four
        )
        mirrored = {
            "token": card["token"],
            "user_token": holder_token,
            "card_product_token": self.product.token,
            "state": card["state"],
            "last_four": last_four,
        }
        if card.get("expiration"):
            mirrored["expiration"] = card["expiration"]
        await self._mirror.load({"cards": [mirrored]})
        return {"token": card["token"], "last_four": last_four, "state": card["state"]}

    async def transition_card(self, card_token: str, state: str) -> dict[str, Any]:
        """Activate, suspend or terminate a card (TERMINATED is final)."""
        if state not in CARD_STATES:
            raise IssuanceError(400, f"state must be one of {', '.join(CARD_STATES)}")
        card = await self._pool.fetchrow(CARD, card_token)
        if card is None:
            raise IssuanceError(404, f"no card {card_token}")
        try:
            transition = await self._processor.transition_card(
                {"card_token": card_token, "state": state, "channel": "API", "reason_code": "00"}
            )
        except ProcessorClientError as error:
            raise _processor_refused(error) from error
        await self._pool.execute(CARD_STATE, card_token, state)
        mirrored = {"token": transition["token"], "card_token": card_token, "state": state}
        await self._mirror.load({"cardtransitions": [mirrored]})
        return {"token": card_token, "state": state, "last_four": card["last_four"]}

    async def fund(self, holder_token: str, order_token: str, amount: str) -> dict[str, Any]:
        """Money into a holder's account at the gateway (the JIT funding source)."""
        holder = await self._holder(holder_token)
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise IssuanceError(400, "amount must be decimal text") from None
        if not value.is_finite() or value <= 0:
            raise IssuanceError(400, "amount must be positive")
        field = "user_token" if holder["kind"] == "user" else "business_token"
        order = {
            "token": order_token,
            field: holder_token,
            "amount": amount,
            "currency_code": "USD",
        }
        await self._mirror.load({"gpaorders": [order]})
        return {"token": order_token, "holder_token": holder_token, "amount": amount}

    async def set_velocity_control(self, control: dict[str, Any]) -> dict[str, Any]:
        """A spend limit at the processor, and the same limit in the gateway."""
        try:
            created = await self._processor.create_velocity_control(
                cast(VelocityControlRequest, control)
            )
        except ProcessorClientError as error:
            raise _processor_refused(error) from error
        await self._mirror.load({"velocitycontrols": [dict(created)]})
        return dict(created)

    async def holder_view(self, token: str) -> dict[str, Any]:
        """What the service shows of a holder: identifiers masked to their last four."""
        holder = await self._holder(token)
        shown: dict[str, Any] = {
            "token": token,
            "kind": holder["kind"],
            "status": holder["status"],
            "kyc_status": holder["kyc_status"],
            "kyc_attempts": holder["kyc_attempts"],
            "parent_token": holder["parent_token"],
        }
        if holder["identifications_sealed"]:
            opened = orjson.loads(self._vault.open(holder["identifications_sealed"], token))
            shown["identifications"] = [
                {"type": item["type"], "last_four": str(item["value"])[-4:]} for item in opened
            ]
        return shown
