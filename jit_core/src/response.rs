//! The response body: `{"jit_funding": {...}}`, written by hand in a fixed field order so
//! every replay is byte-identical.
//!
//! Fields: `token`, `method`, `user_token`, `acting_user_token` (if sent),
//! `business_token` (if sent), `amount` (decimal text with the currency's exponent),
//! `original_jit_funding_token` (if sent), `memo` (declines: reason, rule and numbers,
//! at most 99 characters), `decline_reason` (declines), and for balance inquiries
//! `balances: {CUR: {currency_code, available_balance, ledger_balance}}` as decimal text,
//! where the ledger balance is the posted balance.

use std::fmt::Write;

use crate::decision::Decline;
use crate::money::write_decimal;

/// Longest memo the processor accepts.
pub const MEMO_MAX_CHARS: usize = 99;

/// Balances for a balance inquiry.
#[derive(Debug, Clone, Copy)]
pub struct Balances<'a> {
    /// ISO 4217 alpha code.
    pub currency: &'a str,
    /// posted - held + credit line.
    pub available_minor: i64,
    /// Posted balance.
    pub ledger_minor: i64,
}

/// What the body echoes and adds.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// `jit_funding.token`.
    pub token: &'a str,
    /// `jit_funding.method`.
    pub method: &'a str,
    /// `jit_funding.user_token`.
    pub user_token: &'a str,
    /// `jit_funding.acting_user_token`.
    pub acting_user_token: Option<&'a str>,
    /// `jit_funding.business_token`.
    pub business_token: Option<&'a str>,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency exponent.
    pub exponent: u8,
    /// `jit_funding.original_jit_funding_token`.
    pub original_token: Option<&'a str>,
    /// Memo.
    pub memo: Option<&'a str>,
    /// Decline reason.
    pub decline_reason: Option<&'a str>,
    /// Balances for an inquiry.
    pub balances: Option<Balances<'a>>,
}

/// Writes the body.
pub fn write(response: &Response<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"jit_funding\":{");
    field(&mut out, "token", response.token, true);
    field(&mut out, "method", response.method, false);
    field(&mut out, "user_token", response.user_token, false);
    if let Some(acting) = response.acting_user_token {
        field(&mut out, "acting_user_token", acting, false);
    }
    if let Some(business) = response.business_token {
        field(&mut out, "business_token", business, false);
    }
    out.push_str(",\"amount\":\"");
    write_decimal(&mut out, response.amount_minor, response.exponent);
    out.push('"');
    if let Some(original) = response.original_token {
        field(&mut out, "original_jit_funding_token", original, false);
    }
    if let Some(memo) = response.memo {
        field(&mut out, "memo", memo, false);
    }
    if let Some(reason) = response.decline_reason {
        field(&mut out, "decline_reason", reason, false);
    }
    if let Some(balances) = response.balances {
        write_balances(&mut out, &balances, response.exponent);
    }
    out.push_str("}}");
    out
}

fn write_balances(out: &mut String, balances: &Balances<'_>, exponent: u8) {
    out.push_str(",\"balances\":{");
    string(out, balances.currency);
    out.push_str(":{");
    field(out, "currency_code", balances.currency, true);
    out.push_str(",\"available_balance\":\"");
    write_decimal(out, balances.available_minor, exponent);
    out.push_str("\",\"ledger_balance\":\"");
    write_decimal(out, balances.ledger_minor, exponent);
    out.push_str("\"}}");
}

fn field(out: &mut String, name: &str, value: &str, first: bool) {
    if !first {
        out.push(',');
    }
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    string(out, value);
}

/// Writes `value` as a JSON string.
pub fn string(out: &mut String, value: &str) {
    out.push('"');
    let plain = |byte: &u8| *byte >= 0x20 && *byte != b'"' && *byte != b'\\';
    if value.as_bytes().iter().all(plain) {
        // Tokens and memos almost never need escaping: copy them whole.
        out.push_str(value);
        out.push('"');
        return;
    }
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch if (ch as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", ch as u32);
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

/// The memo of a decline: reason, rule and numbers, cut to 99 characters.
pub fn decline_memo(decline: &Decline, exponent: u8) -> String {
    let mut memo = String::with_capacity(128);
    let _ = write!(
        memo,
        "{} by {} ({})",
        decline.reason, decline.rule_id, decline.rule_name
    );
    let number = |memo: &mut String, value: i64| {
        if decline.counts {
            let _ = write!(memo, "{value}");
        } else {
            write_decimal(memo, value, exponent);
        }
    };
    if let Some(limit) = decline.limit {
        memo.push_str(": limit ");
        number(&mut memo, limit);
    }
    if let Some(used) = decline.used {
        memo.push_str(" used ");
        number(&mut memo, used);
    }
    memo.push_str(" requested ");
    number(&mut memo, decline.requested);
    if memo.chars().count() > MEMO_MAX_CHARS {
        memo = memo.chars().take(MEMO_MAX_CHARS).collect();
    }
    memo
}
