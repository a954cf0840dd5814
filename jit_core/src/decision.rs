//! The checks that decide a message that asks for money, in this fixed order:
//!
//! 1. card: unknown → INVALID_CARD (no entry); not ACTIVE → CARD_NOT_ACTIVE;
//!    expired → EXPIRED_CARD;
//! 2. holder: a `jit_funding.user_token` or `business_token` other than the card's holder
//!    or its parent → TRANSACTION_NOT_PERMITTED; then the card's holder and the parent
//!    whose account it draws on: CLOSED → CLOSED_ACCOUNT; not ACTIVE or LIMITED →
//!    CARDHOLDER_NOT_ACTIVE;
//! 3. account: `transaction.currency_code` other than the account's → INVALID_AMOUNT;
//!    an amount above the program's `max_amount` → AMOUNT_LIMIT_EXCEEDED;
//! 4. authorization controls, in token order: a BLOCK control in scope (and no exempt
//!    merchant), or an ALLOW control out of scope → TRANSACTION_NOT_PERMITTED;
//! 5. velocity controls, in token order, amount before count: AMOUNT_LIMIT_EXCEEDED,
//!    TRANSACTION_COUNT_LIMIT_EXCEEDED;
//! 6. funds: amount above available → INSUFFICIENT_FUNDS.
//!
//! A verification or a balance inquiry runs checks 1–4 only: it asks for no money, but a
//! card that may not spend may not read balances either.
//!
//! The first failing check declines. Partial approval is never given: a message is approved
//! in full or declined.

use std::sync::Arc;

use chrono_tz::Tz;

use crate::controls::{
    in_force, window_start_ms, Association, AuthMode, Category, MerchantScope, VelocityControl,
    Window, WindowUsage,
};
use crate::message::Merchant;
use crate::model::{Account, Card, CardState, Holder, HolderStatus};
use crate::state::State;

/// Why a message was declined, with the rule and its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// The processor's `decline_reason`.
    pub reason: &'static str,
    /// Id of the control or check.
    pub rule_id: String,
    /// Its name.
    pub rule_name: String,
    /// The limit hit (minor units, or a count for count limits).
    pub limit: Option<i64>,
    /// What was used of it before this message.
    pub used: Option<i64>,
    /// What this message asked for (minor units, or 1 for count limits).
    pub requested: i64,
    /// True when the numbers are counts, not money.
    pub counts: bool,
}

impl Decline {
    /// A decline by a built-in check with no numbers but the request.
    pub fn check(reason: &'static str, rule_id: &str, rule_name: &str, requested: i64) -> Decline {
        Decline {
            reason,
            rule_id: rule_id.to_owned(),
            rule_name: rule_name.to_owned(),
            limit: None,
            used: None,
            requested,
            counts: false,
        }
    }
}

/// A velocity counter an approval charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Control token, shared with the counter map.
    pub control: Arc<str>,
    /// Card or holder token, shared with the counter map.
    pub subject: Arc<str>,
    /// Window start, ms.
    pub window_start_ms: i64,
    /// True when the control also counts declines.
    pub counts_declines: bool,
}

/// Who is spending: the card, its holder, the parent it may draw on, and the account.
#[derive(Debug, Clone, Copy)]
pub struct Spender<'s> {
    /// The card.
    pub card: &'s Card,
    /// The card's holder.
    pub holder: &'s Holder,
    /// The holder's parent, if any.
    pub parent: Option<&'s Holder>,
    /// The account drawn on.
    pub account: &'s Account,
}

/// What the message is, for the checks.
#[derive(Debug, Clone, Copy)]
pub struct Request<'m> {
    /// Amount asked for, minor units.
    pub amount_minor: i64,
    /// Spending category.
    pub category: Category,
    /// Time of the message, ms.
    pub at_ms: i64,
    /// `transaction.currency_code`.
    pub currency: Option<&'m str>,
    /// `jit_funding.user_token`, when sent.
    pub user_token: Option<&'m str>,
    /// `jit_funding.business_token`, when sent.
    pub business_token: Option<&'m str>,
    /// The merchant.
    pub merchant: &'m Merchant<'m>,
    /// Check velocity controls.
    pub velocity: bool,
    /// Check the available balance.
    pub funds: bool,
}

/// Runs the checks in order. Fills `charges` with the counters the message touches.
pub fn check<'s>(
    state: &'s State,
    zone: Tz,
    spender: Spender<'s>,
    request: &Request<'_>,
    charges: &mut Vec<Charge>,
) -> Result<(), Decline> {
    check_card(spender.card, request)?;
    check_same_holder(spender, request)?;
    check_holder(spender.holder, request)?;
    if let Some(parent) = spender
        .parent
        .filter(|_| spender.holder.uses_parent_account)
    {
        check_holder(parent, request)?;
    }
    check_account(spender.account, request)?;
    check_program_limit(state, request)?;
    check_auth_controls(state, spender, request)?;
    if request.velocity {
        check_velocity(state, zone, spender, request, charges)?;
    }
    if request.funds && request.amount_minor > spender.account.available_minor() {
        let mut decline = Decline::check(
            "INSUFFICIENT_FUNDS",
            &spender.account.token,
            "available balance",
            request.amount_minor,
        );
        decline.limit = Some(spender.account.available_minor());
        return Err(decline);
    }
    Ok(())
}

fn check_card(card: &Card, request: &Request<'_>) -> Result<(), Decline> {
    if card.state != CardState::Active {
        return Err(Decline::check(
            "CARD_NOT_ACTIVE",
            &card.token,
            "card state",
            request.amount_minor,
        ));
    }
    if card
        .expires_at_ms
        .is_some_and(|expiry| request.at_ms >= expiry)
    {
        return Err(Decline::check(
            "EXPIRED_CARD",
            &card.token,
            "card expiry",
            request.amount_minor,
        ));
    }
    Ok(())
}

/// The processor names the holder whose money it spends: the card's holder, or the parent
/// or business whose account the card draws on. Another name means our copy of the program
/// disagrees with the processor's, and money must not move on a guess.
fn check_same_holder(spender: Spender<'_>, request: &Request<'_>) -> Result<(), Decline> {
    let ours = |sent: &str| {
        sent.is_empty()
            || sent == spender.card.user_token
            || spender.holder.parent_token.as_deref() == Some(sent)
    };
    let sent = [request.user_token, request.business_token];
    if sent.into_iter().flatten().all(ours) {
        return Ok(());
    }
    Err(Decline::check(
        "TRANSACTION_NOT_PERMITTED",
        &spender.card.token,
        "card of another holder",
        request.amount_minor,
    ))
}

fn check_holder(holder: &Holder, request: &Request<'_>) -> Result<(), Decline> {
    let reason = match holder.status {
        HolderStatus::Active | HolderStatus::Limited => return Ok(()),
        HolderStatus::Closed => "CLOSED_ACCOUNT",
        HolderStatus::Unverified | HolderStatus::Suspended => "CARDHOLDER_NOT_ACTIVE",
    };
    Err(Decline::check(
        reason,
        &holder.token,
        "holder status",
        request.amount_minor,
    ))
}

fn check_account(account: &Account, request: &Request<'_>) -> Result<(), Decline> {
    match request.currency {
        Some(currency) if currency != account.currency => Err(Decline::check(
            "INVALID_AMOUNT",
            &account.token,
            "account currency",
            request.amount_minor,
        )),
        _ => Ok(()),
    }
}

/// The program's `max_amount` is a business limit: a swipe above it is an ordinary decline
/// that names the limit, not a malformed message.
fn check_program_limit(state: &State, request: &Request<'_>) -> Result<(), Decline> {
    match state.program.max_amount_minor {
        Some(limit) if request.funds && request.amount_minor > limit => {
            let mut decline = Decline::check(
                "AMOUNT_LIMIT_EXCEEDED",
                &state.program.token,
                "program max_amount",
                request.amount_minor,
            );
            decline.limit = Some(limit);
            Err(decline)
        }
        _ => Ok(()),
    }
}

/// True when a control attached to `association` applies to this spender.
pub fn associated(association: &Association, spender: Spender<'_>) -> bool {
    match association {
        Association::Program => true,
        Association::User(token) => {
            spender.card.user_token == *token
                || spender.holder.parent_token.as_deref() == Some(token.as_str())
        }
        Association::CardProduct(token) => spender.card.card_product_token == *token,
        Association::Card(token) => spender.card.token == *token,
    }
}

/// True when the merchant is inside `scope`.
pub fn in_scope(state: &State, scope: &MerchantScope, merchant: &Merchant<'_>) -> bool {
    match scope {
        MerchantScope::Any => true,
        MerchantScope::Mid(mid) => merchant.mid.as_deref() == Some(mid.as_str()),
        MerchantScope::Mcc(mcc) => merchant.mcc == Some(*mcc),
        MerchantScope::MccGroup(group) => match (state.mcc_groups.get(group), merchant.mcc) {
            (Some(group), Some(mcc)) => group.contains(mcc),
            _ => false,
        },
        MerchantScope::Country(country) => merchant
            .country
            .as_deref()
            .is_some_and(|sent| sent.eq_ignore_ascii_case(country)),
    }
}

fn check_auth_controls(
    state: &State,
    spender: Spender<'_>,
    request: &Request<'_>,
) -> Result<(), Decline> {
    for control in state.auth_controls.values() {
        let live = in_force(
            control.active,
            control.start_ms,
            control.end_ms,
            request.at_ms,
        );
        if !live || !associated(&control.association, spender) {
            continue;
        }
        let inside = in_scope(state, &control.scope, request.merchant);
        let blocked = match control.mode {
            AuthMode::Block => inside && !exempt(state, spender, request, &control.association),
            AuthMode::Allow => !inside,
        };
        if blocked {
            let reason = "TRANSACTION_NOT_PERMITTED";
            return Err(Decline::check(
                reason,
                &control.token,
                &control.name,
                request.amount_minor,
            ));
        }
    }
    Ok(())
}

fn exempt(
    state: &State,
    spender: Spender<'_>,
    request: &Request<'_>,
    association: &Association,
) -> bool {
    let Some(mid) = request.merchant.mid.as_deref() else {
        return false;
    };
    state.exempt_mids.values().any(|exemption| {
        exemption.mid == mid
            && in_force(
                exemption.active,
                exemption.start_ms,
                exemption.end_ms,
                request.at_ms,
            )
            && (exemption.association == *association
                || associated(&exemption.association, spender))
    })
}

fn check_velocity<'s>(
    state: &'s State,
    zone: Tz,
    spender: Spender<'s>,
    request: &Request<'_>,
    charges: &mut Vec<Charge>,
) -> Result<(), Decline> {
    let mut first_decline = None;
    for control in state.velocity_controls.values() {
        if !applies(state, control, spender, request) {
            continue;
        }
        let subject = match control.association {
            Association::Card(_) => spender.card.token.as_str(),
            _ => spender.card.user_token.as_str(),
        };
        let start = window_start_ms(control.window, request.at_ms, zone);
        let mut used = WindowUsage::default();
        if control.window != Window::Transaction {
            let (control_token, subject, usage) = state.counter(&control.token, subject, start);
            used = usage;
            charges.push(Charge {
                control: control_token,
                subject,
                window_start_ms: start,
                counts_declines: !control.approvals_only,
            });
        }
        if first_decline.is_none() {
            first_decline = over_limit(control, used, request.amount_minor);
        }
    }
    first_decline.map_or(Ok(()), Err)
}

fn applies(
    state: &State,
    control: &VelocityControl,
    spender: Spender<'_>,
    request: &Request<'_>,
) -> bool {
    control.active
        && control.includes.counts(request.category)
        && associated(&control.association, spender)
        && in_scope(state, &control.scope, request.merchant)
}

/// The decline a control gives when `amount` on top of `used` (zero for TRANSACTION
/// windows) goes over one of its limits.
fn over_limit(control: &VelocityControl, used: WindowUsage, amount: i64) -> Option<Decline> {
    let decline = |reason, limit, used, requested, counts| Decline {
        reason,
        rule_id: control.token.clone(),
        rule_name: control.name.clone(),
        limit: Some(limit),
        used: Some(used),
        requested,
        counts,
    };
    if let Some(limit) = control.amount_limit_minor {
        if used.amount_minor + amount > limit {
            return Some(decline(
                "AMOUNT_LIMIT_EXCEEDED",
                limit,
                used.amount_minor,
                amount,
                false,
            ));
        }
    }
    match control.usage_limit {
        Some(limit) if control.window != Window::Transaction && used.count + 1 > limit => {
            Some(decline(
                "TRANSACTION_COUNT_LIMIT_EXCEEDED",
                limit,
                used.count,
                1,
                true,
            ))
        }
        _ => None,
    }
}
