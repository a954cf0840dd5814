"""Account holders: users, businesses, their status transitions, and KYC.

KYC follows the processor's rules: a holder may be verified at most twice, and only while
UNVERIFIED or LIMITED. The result is decided by a fixed rule on the holder's data, so a
test chooses its outcome by the data it sends (see `kyc_result`).
"""

import re
from typing import Any

from aiohttp import web

from services.simulator import validation as field
from services.simulator.errors import (
    INVALID_TRANSITION,
    KYC_ATTEMPTS_EXHAUSTED,
    KYC_NOT_ALLOWED,
    KYC_REQUIRED,
    found,
    invalid,
)
from services.simulator.state import Resource, SimulatorState
from services.simulator.webhooks import publish
from services.simulator.wire import V3, answer, body_of, created, page, state_of

routes = web.RouteTableDef()

HOLDER_STATUSES = frozenset({"UNVERIFIED", "LIMITED", "ACTIVE", "SUSPENDED", "CLOSED"})
CHANNELS = frozenset({"API", "IVR", "FRAUD", "ADMIN", "SYSTEM"})
KYC_ALLOWED_FROM = frozenset({"UNVERIFIED", "LIMITED"})
KYC_ATTEMPTS_MAX = 2
_REASON_CODE = re.compile(r"^(0[0-9]|[12][0-9]|3[0-2])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_USER_TEXT = ("first_name", "middle_name", "last_name", "email", "phone", "address1")
_USER_TEXT_MORE = ("address2", "city", "state", "postal_code", "country", "ssn")
_BUSINESS_TEXT = ("business_name_legal", "business_name_dba", "phone", "website")


def _identifications(body: field.Body) -> list[dict[str, str]]:
    items = body.get("identifications", [])
    if not isinstance(items, list):
        raise invalid("identifications must be a list")
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("type", "value")
        ):
            raise invalid("each identification needs a type and a value")
    return [{"type": item["type"], "value": item["value"]} for item in items]


def _metadata(body: field.Body) -> dict[str, str]:
    return {str(k): str(v) for k, v in field.nested(body, "metadata").items()}


def _holder_fields(body: field.Body, names: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in names:
        value = field.text(body, name)
        if value is not None:
            fields[name] = value
    if "identifications" in body:
        fields["identifications"] = _identifications(body)
    if "metadata" in body:
        fields["metadata"] = _metadata(body)
    return fields


def _user_fields(state: SimulatorState, body: field.Body) -> dict[str, Any]:
    fields = _holder_fields(body, _USER_TEXT + _USER_TEXT_MORE)
    birth_date = field.text(body, "birth_date")
    if birth_date is not None:
        if not _DATE.match(birth_date):
            raise invalid("birth_date must be yyyy-MM-dd")
        fields["birth_date"] = birth_date
    # A parent is a user or, for an employee spending a company's money, a business.
    parents = state.users.keys() | state.businesses.keys()
    parent_token = field.optional_reference(body, "parent_token", parents)
    if parent_token is not None:
        fields["parent_token"] = parent_token
    fields["uses_parent_account"] = field.flag(body, "uses_parent_account", False)
    if fields["uses_parent_account"] and parent_token is None:
        raise invalid("uses_parent_account needs a parent_token")
    return fields


def _initial_status(state: SimulatorState) -> str:
    return "UNVERIFIED" if state.config.kyc_required else "ACTIVE"


@routes.post(V3 + "/users")
async def create_user(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.users, state.tokens.token())
    user = {"token": token, **_user_fields(state, body)}
    user["status"] = _initial_status(state)
    user["active"] = user["status"] == "ACTIVE"
    user["created_time"] = user["last_modified_time"] = state.now_text()
    state.users[token] = user
    return created(user)


@routes.get(V3 + "/users")
async def list_users(request: web.Request) -> web.Response:
    return page(request, [*state_of(request).users.values()])


@routes.get(V3 + "/users/{token}")
async def get_user(request: web.Request) -> web.Response:
    return answer(found(state_of(request).users, "user", request.match_info["token"]))


@routes.put(V3 + "/users/{token}")
async def update_user(request: web.Request) -> web.Response:
    state = state_of(request)
    user = found(state.users, "user", request.match_info["token"])
    body = await body_of(request)
    user.update(_user_fields(state, {**user, **body}))
    user["last_modified_time"] = state.now_text()
    return answer(user)


@routes.post(V3 + "/businesses")
async def create_business(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    token = field.new_token(body, state.businesses, state.tokens.token())
    business = {"token": token, **_holder_fields(body, _BUSINESS_TEXT)}
    if "office_location" in body:
        business["office_location"] = field.nested(body, "office_location")
    business["status"] = _initial_status(state)
    business["active"] = business["status"] == "ACTIVE"
    business["created_time"] = business["last_modified_time"] = state.now_text()
    state.businesses[token] = business
    return created(business)


@routes.get(V3 + "/businesses/{token}")
async def get_business(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    return answer(found(state_of(request).businesses, "business", token))


@routes.put(V3 + "/businesses/{token}")
async def update_business(request: web.Request) -> web.Response:
    state = state_of(request)
    business = found(state.businesses, "business", request.match_info["token"])
    body = await body_of(request)
    business.update(_holder_fields(body, _BUSINESS_TEXT))
    if "office_location" in body:
        business["office_location"] = field.nested(body, "office_location")
    business["last_modified_time"] = state.now_text()
    return answer(business)


def _kyc_passed(state: SimulatorState, holder_token: str) -> bool:
    return any(
        kyc["result"]["status"] == "SUCCESS"
        and holder_token in (kyc.get("user_token"), kyc.get("business_token"))
        for kyc in state.kyc.values()
    )


def change_status(state: SimulatorState, holder: Resource, kind: str, body: field.Body) -> Resource:
    """Move a holder to a new status, record the transition and publish its event."""
    status = field.choice(body, "status", HOLDER_STATUSES)
    channel = field.choice(body, "channel", CHANNELS)
    reason_code = field.required_text(body, "reason_code", max_length=2)
    if not _REASON_CODE.match(reason_code):
        raise invalid("reason_code must be 00-32")
    if holder["status"] == "CLOSED" and status != "CLOSED":
        raise invalid(f"{kind} is CLOSED, which is final", INVALID_TRANSITION)
    needs_kyc = state.config.kyc_required and channel not in ("ADMIN", "SYSTEM")
    if status == "ACTIVE" and needs_kyc and not _kyc_passed(state, holder["token"]):
        raise invalid(f"{kind} must pass KYC before it can be ACTIVE", KYC_REQUIRED)

    holder["status"] = status
    holder["active"] = status == "ACTIVE"
    holder["last_modified_time"] = state.now_text()
    transitions = state.user_transitions if kind == "user" else state.business_transitions
    token = field.new_token(body, transitions, state.tokens.token())
    transition = {
        "token": token,
        f"{kind}_token": holder["token"],
        "status": status,
        "channel": channel,
        "reason_code": reason_code,
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    reason = field.text(body, "reason")
    if reason is not None:
        transition["reason"] = reason
    transitions[token] = transition
    publish(state, f"{kind}transition.{status.lower()}", token, transition)
    return transition


@routes.post(V3 + "/usertransitions")
async def transition_user(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    user = state.users[field.reference(body, "user_token", state.users)]
    return created(change_status(state, user, "user", body))


@routes.get(V3 + "/usertransitions/user/{token}")
async def list_user_transitions(request: web.Request) -> web.Response:
    state = state_of(request)
    token = found(state.users, "user", request.match_info["token"])["token"]
    items = [t for t in state.user_transitions.values() if t["user_token"] == token]
    return page(request, items)


@routes.post(V3 + "/businesstransitions")
async def transition_business(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    business = state.businesses[field.reference(body, "business_token", state.businesses)]
    return created(change_status(state, business, "business", body))


def kyc_result(holder: Resource, kind: str) -> dict[str, Any]:
    """The simulator's deterministic KYC rule.

    A last name (for a business, its legal name) of "Fail" fails and "Pending" stays
    pending; a user without address, birth date or SSN fails with the matching codes, as
    the processor's verifier would; everything else succeeds.
    """
    name = holder.get("last_name" if kind == "user" else "business_name_legal", "")
    if name.strip().lower() == "fail":
        return {"status": "FAILURE", "codes": [{"code": "NameIssue", "message": "no match"}]}
    if name.strip().lower() == "pending":
        return {"status": "PENDING", "codes": []}
    codes = []
    if kind == "user":
        if not holder.get("address1") or not holder.get("postal_code"):
            codes.append({"code": "AddressIssue", "message": "address missing"})
        if not holder.get("birth_date"):
            codes.append({"code": "DateOfBirthIssue", "message": "birth date missing"})
        has_ssn = any(i["type"] == "SSN" for i in holder.get("identifications", []))
        if not has_ssn and not holder.get("ssn"):
            codes.append({"code": "SSNFail", "message": "SSN missing"})
    return {"status": "FAILURE" if codes else "SUCCESS", "codes": codes}


def _kyc_subject(state: SimulatorState, body: field.Body) -> tuple[Resource, str]:
    user_token = field.optional_reference(body, "user_token", state.users)
    business_token = field.optional_reference(body, "business_token", state.businesses)
    if (user_token is None) == (business_token is None):
        raise invalid("give exactly one of user_token and business_token")
    if user_token is not None:
        return state.users[user_token], "user"
    assert business_token is not None
    return state.businesses[business_token], "business"


@routes.post(V3 + "/kyc")
async def verify_identity(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await body_of(request)
    holder, kind = _kyc_subject(state, body)
    token = field.new_token(body, state.kyc, state.tokens.token())
    if holder["status"] not in KYC_ALLOWED_FROM:
        raise invalid(f"KYC is not allowed for a {holder['status']} {kind}", KYC_NOT_ALLOWED)
    if state.kyc_attempts.get(holder["token"], 0) >= KYC_ATTEMPTS_MAX:
        raise invalid(
            f"{kind} has used its {KYC_ATTEMPTS_MAX} KYC attempts", KYC_ATTEMPTS_EXHAUSTED
        )

    manual_override = field.flag(body, "manual_override", False)
    result = {"status": "SUCCESS", "codes": []} if manual_override else kyc_result(holder, kind)
    state.kyc_attempts[holder["token"]] = state.kyc_attempts.get(holder["token"], 0) + 1
    kyc = {
        "token": token,
        f"{kind}_token": holder["token"],
        "result": result,
        "manual_override": manual_override,
        "created_time": state.now_text(),
        "last_modified_time": state.now_text(),
    }
    for name in ("notes", "reference_id"):
        value = field.text(body, name)
        if value is not None:
            kyc[name] = value
    state.kyc[token] = kyc
    if result["status"] == "SUCCESS":
        promotion = {"status": "ACTIVE", "channel": "SYSTEM", "reason_code": "00"}
        change_status(state, holder, kind, promotion)
    return created(kyc)


@routes.get(V3 + "/kyc/{token}")
async def get_kyc(request: web.Request) -> web.Response:
    return answer(found(state_of(request).kyc, "kyc", request.match_info["token"]))


@routes.get(V3 + "/kyc/{kind:user|business}/{token}")
async def list_kyc(request: web.Request) -> web.Response:
    state = state_of(request)
    kind, token = request.match_info["kind"], request.match_info["token"]
    found(state.users if kind == "user" else state.businesses, kind, token)
    items = [kyc for kyc in state.kyc.values() if kyc.get(f"{kind}_token") == token]
    return page(request, items)
