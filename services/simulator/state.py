"""Everything the simulator knows, in memory: resources, accounts, holds and spending.

Resources are kept as the JSON objects the API returns, keyed by token; secrets the
processor never returns (gateway and webhook passwords, webhook secrets) are kept beside
them. Money is `Decimal` in major units, exact.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp

from services.simulator.clock import Clock, TokenSource, processor_time
from services.simulator.delivery import DeliveryPolicy, WebhookDispatcher

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """How one simulated program behaves.

    `kyc_required` makes new users and businesses start UNVERIFIED (they become ACTIVE by
    passing KYC); without it they start ACTIVE, which is what a demo usually wants.
    """

    application_token: str
    admin_access_token: str
    kyc_required: bool = False
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    hold_expiration_days: int = 7
    spend_controls_max: int = 90


@dataclass(slots=True)
class Account:
    """An account holder's general purpose account (GPA): `available = posted - held`."""

    currency_code: str
    posted: Decimal = Decimal("0.00")
    held: Decimal = Decimal("0.00")

    @property
    def available(self) -> Decimal:
        return self.posted - self.held


@dataclass(slots=True)
class Hold:
    """The money an approved authorization reserves until it clears, reverses or expires."""

    authorization_token: str
    card_token: str
    holder_token: str
    jit_token: str | None
    amount: Decimal
    authorized_at: datetime
    expires_at: datetime
    mcc: str
    mid: str
    increment_jit_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """One change to what a holder spent, as velocity controls count it."""

    at: datetime
    amount: Decimal
    uses: int
    mcc: str
    mid: str


@dataclass(slots=True)
class SimulatorState:
    config: SimulatorConfig
    clock: Clock
    tokens: TokenSource
    dispatcher: WebhookDispatcher
    users: dict[str, Resource] = field(default_factory=dict)
    businesses: dict[str, Resource] = field(default_factory=dict)
    user_transitions: dict[str, Resource] = field(default_factory=dict)
    business_transitions: dict[str, Resource] = field(default_factory=dict)
    card_products: dict[str, Resource] = field(default_factory=dict)
    cards: dict[str, Resource] = field(default_factory=dict)
    card_transitions: dict[str, Resource] = field(default_factory=dict)
    kyc: dict[str, Resource] = field(default_factory=dict)
    velocity_controls: dict[str, Resource] = field(default_factory=dict)
    auth_controls: dict[str, Resource] = field(default_factory=dict)
    exempt_mids: dict[str, Resource] = field(default_factory=dict)
    mcc_groups: dict[str, Resource] = field(default_factory=dict)
    gateway_sources: dict[str, Resource] = field(default_factory=dict)
    gateway_passwords: dict[str, str] = field(default_factory=dict)
    program_sources: dict[str, Resource] = field(default_factory=dict)
    gpa_orders: dict[str, Resource] = field(default_factory=dict)
    transactions: dict[str, Resource] = field(default_factory=dict)
    webhooks: dict[str, Resource] = field(default_factory=dict)
    webhook_secrets: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    events: dict[str, tuple[str, str, Resource]] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    spending: dict[str, list[SpendEntry]] = field(default_factory=dict)
    kyc_attempts: dict[str, int] = field(default_factory=dict)
    session: aiohttp.ClientSession | None = None
    card_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def now_text(self) -> str:
        return processor_time(self.clock.now())

    def http(self) -> aiohttp.ClientSession:
        """The session for outgoing JIT messages, opened on first use."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        return self.session

    def holder(self, token: str) -> Resource | None:
        """The user or business with that token."""
        return self.users.get(token) or self.businesses.get(token)

    def account(self, holder_token: str, currency_code: str = "USD") -> Account:
        if holder_token not in self.accounts:
            self.accounts[holder_token] = Account(currency_code)
        return self.accounts[holder_token]

    def card_lock(self, card_token: str | None) -> asyncio.Lock | contextlib.nullcontext[None]:
        """The lock that keeps one card's messages in order; none if the card is unknown."""
        if card_token is None or card_token not in self.cards:
            return contextlib.nullcontext()
        return self.card_locks.setdefault(card_token, asyncio.Lock())

    def spend_controls_count(self) -> int:
        return len(self.velocity_controls) + len(self.auth_controls)

    async def close(self) -> None:
        await self.dispatcher.close()
        if self.session is not None:
            await self.session.close()
            self.session = None
