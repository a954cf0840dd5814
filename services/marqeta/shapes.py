"""Request and response shapes of the processor's REST API, as TypedDicts.

Field names are the processor's own. Requests are `total=False` with the fields the processor
requires marked `Required`; responses mark only what is always returned. Amounts are
`Decimal` (see `codec`); times are the processor's ISO 8601 text ("2024-05-01T12:00:00Z").
"""

from decimal import Decimal
from typing import Any, Generic, Required, TypedDict, TypeVar

Item = TypeVar("Item")


class Page(TypedDict, Generic[Item], total=False):
    """One page of a list endpoint."""

    count: Required[int]
    start_index: int
    end_index: int
    is_more: bool
    data: Required[list[Item]]


class Identification(TypedDict):
    type: str
    value: str


class Address(TypedDict, total=False):
    address1: str
    address2: str
    city: str
    state: str
    postal_code: str
    country: str


class UserRequest(TypedDict, total=False):
    token: str
    first_name: str
    last_name: str
    email: str
    phone: str
    address1: str
    address2: str
    city: str
    state: str
    postal_code: str
    country: str
    birth_date: str
    identifications: list[Identification]
    metadata: dict[str, str]
    parent_token: str
    uses_parent_account: bool


class User(UserRequest, total=False):
    status: Required[str]
    active: bool
    created_time: str
    last_modified_time: str


class UserTransitionRequest(TypedDict, total=False):
    token: str
    user_token: Required[str]
    status: Required[str]
    channel: Required[str]
    reason_code: Required[str]
    reason: str


class UserTransition(UserTransitionRequest, total=False):
    created_time: str
    last_modified_time: str


class BusinessRequest(TypedDict, total=False):
    token: str
    business_name_legal: str
    business_name_dba: str
    office_location: Address
    identifications: list[Identification]
    metadata: dict[str, str]


class Business(BusinessRequest, total=False):
    status: Required[str]
    active: bool
    created_time: str
    last_modified_time: str


class BusinessTransitionRequest(TypedDict, total=False):
    token: str
    business_token: Required[str]
    status: Required[str]
    channel: Required[str]
    reason_code: Required[str]
    reason: str


class BusinessTransition(BusinessTransitionRequest, total=False):
    created_time: str
    last_modified_time: str


class ProgramGatewayFunding(TypedDict, total=False):
    enabled: Required[bool]
    funding_source_token: Required[str]
    refunds_destination: str


class JitFundingConfig(TypedDict, total=False):
    programgateway_funding_source: ProgramGatewayFunding


class CardLifeCycle(TypedDict, total=False):
    activate_upon_issue: bool
    expiration_offset: dict[str, Any]


class CardProductConfig(TypedDict, total=False):
    jit_funding: JitFundingConfig
    card_life_cycle: CardLifeCycle


class CardProductRequest(TypedDict, total=False):
    token: str
    name: Required[str]
    start_date: Required[str]
    active: bool
    config: CardProductConfig


class CardProduct(CardProductRequest, total=False):
    created_time: str
    last_modified_time: str


class CardRequest(TypedDict, total=False):
    token: str
    user_token: str
    business_token: str
    card_product_token: Required[str]
    metadata: dict[str, str]


class Card(CardRequest, total=False):
    state: Required[str]
    state_reason: str
    last_four: str
    pan: str
    expiration: str
    expiration_time: str
    fulfillment_status: str
    instrument_type: str
    created_time: str
    last_modified_time: str


class CardTransitionRequest(TypedDict, total=False):
    token: str
    card_token: Required[str]
    state: Required[str]
    channel: Required[str]
    reason_code: Required[str]
    reason: str


class CardTransition(CardTransitionRequest, total=False):
    type: str
    user_token: str
    business_token: str
    card_product_token: str
    fulfillment_status: str
    created_time: str


class KycRequest(TypedDict, total=False):
    token: str
    user_token: str
    business_token: str
    manual_override: bool
    notes: str
    reference_id: str


class KycCode(TypedDict):
    code: str
    message: str


class KycResult(TypedDict, total=False):
    status: Required[str]
    codes: list[KycCode]


class Kyc(KycRequest, total=False):
    result: Required[KycResult]
    created_time: str
    last_modified_time: str


class Association(TypedDict, total=False):
    user_token: str
    card_product_token: str


class MerchantScope(TypedDict, total=False):
    mid: str
    mcc: str
    mcc_group: str


class VelocityControlRequest(TypedDict, total=False):
    token: str
    name: str
    association: Association
    merchant_scope: MerchantScope
    usage_limit: int
    amount_limit: Required[Decimal]
    currency_code: Required[str]
    velocity_window: Required[str]
    approvals_only: bool
    include_purchases: bool
    include_withdrawals: bool
    include_transfers: bool
    include_cashback: bool
    include_credits: bool
    active: bool


class VelocityControl(VelocityControlRequest, total=False):
    pass


class VelocityAvailable(TypedDict):
    uses: int
    amount: Decimal
    days_remaining: int


class VelocityControlBalance(VelocityControl, total=False):
    available: Required[VelocityAvailable]


class AuthControlRequest(TypedDict, total=False):
    token: str
    name: str
    association: Association
    merchant_scope: Required[MerchantScope]
    start_time: str
    end_time: str
    active: bool


class AuthControl(AuthControlRequest, total=False):
    pass


class AuthControlExemptMidRequest(TypedDict, total=False):
    token: str
    name: str
    association: Association
    mid: Required[str]
    start_time: str
    end_time: str
    active: bool


class AuthControlExemptMid(AuthControlExemptMidRequest, total=False):
    created: str
    last_updated: str


class HoldIncrease(TypedDict, total=False):
    type: str
    value: Decimal


class MccGroupAuthorizationControls(TypedDict, total=False):
    hold_increase: HoldIncrease
    hold_expiration_days: int


class MccGroupConfig(TypedDict, total=False):
    authorization_controls: MccGroupAuthorizationControls


class MccGroupRequest(TypedDict, total=False):
    token: str
    name: Required[str]
    mccs: Required[list[str]]
    config: MccGroupConfig
    active: bool


class MccGroup(MccGroupRequest, total=False):
    pass


class ProgramGatewayFundingSourceRequest(TypedDict, total=False):
    token: str
    name: Required[str]
    url: Required[str]
    basic_auth_username: Required[str]
    basic_auth_password: Required[str]
    timeout_millis: int
    custom_header: dict[str, str]
    use_mtls: bool
    active: bool


class ProgramGatewayFundingSource(TypedDict, total=False):
    """The processor never returns the password it was given."""

    token: Required[str]
    name: str
    url: str
    basic_auth_username: str
    timeout_millis: int
    custom_header: dict[str, str]
    use_mtls: bool
    active: bool
    created_time: str
    last_modified_time: str


class ProgramFundingSourceRequest(TypedDict, total=False):
    token: str
    name: Required[str]
    active: bool


class ProgramFundingSource(ProgramFundingSourceRequest, total=False):
    created_time: str
    last_modified_time: str


class ResponseCode(TypedDict, total=False):
    code: Required[str]
    memo: str


class GpaOrderRequest(TypedDict, total=False):
    token: str
    user_token: str
    business_token: str
    amount: Required[Decimal]
    currency_code: Required[str]
    funding_source_token: Required[str]
    memo: str
    tags: str


class GpaOrder(GpaOrderRequest, total=False):
    state: Required[str]
    response: ResponseCode
    funding: dict[str, Any]
    transaction_token: str
    created_time: str
    last_modified_time: str


class BalanceDetail(TypedDict, total=False):
    currency_code: Required[str]
    ledger_balance: Required[Decimal]
    available_balance: Required[Decimal]
    credit_balance: Decimal
    pending_credits: Decimal
    impacted_amount: Decimal


class Gpa(BalanceDetail, total=False):
    balances: dict[str, BalanceDetail]


class Balances(TypedDict, total=False):
    gpa: Required[Gpa]
    links: list[dict[str, Any]]


class CardAcceptor(TypedDict, total=False):
    mid: Required[str]
    mcc: str
    name: str
    city: str
    state: str
    postal_code: str
    country_code: str


class JitFunding(TypedDict, total=False):
    """One JIT funding message: `gpa_order.jit_funding` of a transaction."""

    token: Required[str]
    method: Required[str]
    user_token: str
    acting_user_token: str
    business_token: str
    amount: Required[Decimal]
    memo: str
    tags: str
    original_jit_funding_token: str
    incremental_authorization_jit_funding_tokens: list[str]
    decline_reason: str


class GatewayLog(TypedDict, total=False):
    order_number: str
    transaction_id: str
    message: str
    duration: int
    timed_out: Required[bool]
    response: dict[str, Any]


class TransactionGpaOrder(TypedDict, total=False):
    token: str
    amount: Decimal
    state: str
    currency_code: str
    user_token: str
    business_token: str
    funding_source_token: str
    jit_funding: JitFunding
    funding: dict[str, Any]
    response: ResponseCode
    created_time: str


class Transaction(TypedDict, total=False):
    token: Required[str]
    type: Required[str]
    state: Required[str]
    amount: Required[Decimal]
    request_amount: Decimal
    currency_code: str
    user_token: str
    acting_user_token: str
    business_token: str
    card_token: str
    card_product_token: str
    preceding_related_transaction_token: str
    is_preauthorization: bool
    network: str
    subnetwork: str
    card_acceptor: CardAcceptor
    pos: dict[str, Any]
    gpa: Gpa
    gpa_order: TransactionGpaOrder
    response: ResponseCode
    approval_code: str
    duration: int
    created_time: str
    user_transaction_time: str


class SimulationRequest(TypedDict, total=False):
    """A sandbox card transaction: `POST /simulations/cardtransactions/{kind}`."""

    card_token: str
    amount: Decimal
    card_acceptor: CardAcceptor
    network: str
    preceding_related_transaction_token: str
    currency_code: str
    is_preauthorization: bool
    force_post: bool


class SimulationResponse(TypedDict):
    transaction: Transaction


class WebhookConfig(TypedDict, total=False):
    url: Required[str]
    basic_auth_username: str
    basic_auth_password: str
    secret: str
    signature_algorithm: str
    custom_header: dict[str, str]


class WebhookRequest(TypedDict, total=False):
    token: str
    name: Required[str]
    events: Required[list[str]]
    config: Required[WebhookConfig]
    active: bool


class Webhook(TypedDict, total=False):
    """The processor never returns the password or the secret it was given."""

    token: Required[str]
    name: str
    events: list[str]
    config: dict[str, Any]
    active: bool
    created_time: str
    last_modified_time: str
