//! The JIT funding message: the processor's transaction object, parsed without copying.
//!
//! Only the fields the engine decides on are read; unknown fields are ignored. Strings are
//! borrowed from the body unless they contain escapes. Amounts are kept as raw JSON text
//! and parsed exactly by `money`. An MCC must be a string of four digits: a JSON number
//! (`742`) is refused, because it would lose the leading zero that a block on "0742" needs.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::error::{as_sent, quoted, EngineError};
use crate::money::{parse_decimal, AmountProblem, Money};

/// Field path of the JIT amount, used in error messages.
pub const AMOUNT_FIELD: &str = "gpa_order.jit_funding.amount";

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    gpa_order: Option<Object<FundingOrder<'a>>>,
    #[serde(borrow)]
    gpa_order_unload: Option<Object<FundingOrder<'a>>>,
    #[serde(borrow)]
    card_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    currency_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    is_final_clearing: Option<&'a RawValue>,
    #[serde(borrow)]
    card_acceptor: Option<Object<CardAcceptor<'a>>>,
}

#[derive(Deserialize)]
struct FundingOrder<'a> {
    #[serde(borrow)]
    jit_funding: Option<Object<JitFunding<'a>>>,
}

#[derive(Deserialize)]
struct JitFunding<'a> {
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    acting_user_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    business_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
    #[serde(borrow)]
    original_jit_funding_token: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CardAcceptor<'a> {
    #[serde(borrow)]
    mid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mcc: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    city: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country: Option<Cow<'a, str>>,
}

/// A JSON object read into `T`. serde's derive would also read an array into a struct, field
/// by position, and let `["t1","pgfs.authorization",...]` pass for a `jit_funding`.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Object<T>, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// The merchant, as `card_acceptor` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merchant<'a> {
    /// Merchant id.
    pub mid: Option<Cow<'a, str>>,
    /// Merchant category code, 0..=9999, parsed from a four-digit string.
    pub mcc: Option<u16>,
    /// Merchant name.
    pub name: Option<Cow<'a, str>>,
    /// Merchant city.
    pub city: Option<Cow<'a, str>>,
    /// Country, ISO 3166 alpha-3 (`country_code`, or the older sandbox `country`).
    pub country: Option<Cow<'a, str>>,
}

/// One JIT message, ready to decide. The amount is still raw text: its exponent depends
/// on the program's currency.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// `jit_funding.token`.
    pub token: Cow<'a, str>,
    /// `jit_funding.method`.
    pub method: Cow<'a, str>,
    /// `jit_funding.user_token`.
    pub user_token: Option<Cow<'a, str>>,
    /// `jit_funding.acting_user_token`.
    pub acting_user_token: Option<Cow<'a, str>>,
    /// `jit_funding.business_token`.
    pub business_token: Option<Cow<'a, str>>,
    /// `jit_funding.original_jit_funding_token`.
    pub original_token: Option<Cow<'a, str>>,
    /// Raw JSON text of `jit_funding.amount`, None when absent or null.
    pub amount_raw: Option<&'a str>,
    /// Field path of the funding request (`gpa_order` or `gpa_order_unload`).
    pub amount_field: &'static str,
    /// `card_token`.
    pub card_token: Option<Cow<'a, str>>,
    /// `currency_code`.
    pub currency_code: Option<Cow<'a, str>>,
    /// `created_time` in ms, when present and valid.
    pub created_ms: Option<i64>,
    /// `is_final_clearing`, when present.
    pub is_final_clearing: Option<bool>,
    /// `card_acceptor`.
    pub merchant: Merchant<'a>,
}

impl<'a> Message<'a> {
    /// The chain's first token: the hold key.
    pub fn chain_token(&self) -> &str {
        self.original_token.as_deref().unwrap_or(&self.token)
    }

    /// The amount in minor units with the currency `exponent`.
    pub fn amount(&self, exponent: u8, max_minor: i64) -> Result<Money, EngineError> {
        let Some(raw) = self.amount_raw else {
            return Err(EngineError::message(
                self.amount_field,
                "amount is null or missing",
            ));
        };
        let text = match raw
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
        {
            Some(inner) if !inner.contains('\\') => inner,
            Some(_) => {
                return Err(amount_error(
                    self.amount_field,
                    raw,
                    AmountProblem::NotDecimal,
                ))
            }
            None if raw == "null" => {
                return Err(amount_error(self.amount_field, raw, AmountProblem::Null))
            }
            None => raw,
        };
        parse_decimal(text, exponent, max_minor)
            .map_err(|problem| amount_error(self.amount_field, raw, problem))
    }
}

fn amount_error(field: &str, raw: &str, problem: AmountProblem) -> EngineError {
    EngineError::message(field, format!("amount {} {problem}", as_sent(raw)))
}

/// Parses a JIT body. Errors name the offending field.
pub fn parse(body: &[u8]) -> Result<Message<'_>, EngineError> {
    if let Some(problem) = nul_text(body) {
        return Err(EngineError::message("body", problem));
    }
    // One UTF-8 check of the whole body costs less than serde_json's check of every string
    // it reads or skips in a byte slice.
    let text = std::str::from_utf8(body).map_err(|error| {
        EngineError::message("$", format!("malformed JSON body: not UTF-8 ({error})"))
    })?;
    let Object::<Body<'_>>(parsed) = serde_json::from_str(text)
        .map_err(|error| EngineError::message("$", format!("malformed JSON body: {error}")))?;

    let (funding, prefix) = match (parsed.gpa_order, parsed.gpa_order_unload) {
        (
            Some(Object(FundingOrder {
                jit_funding: Some(Object(funding)),
            })),
            _,
        ) => (funding, "gpa_order"),
        (
            _,
            Some(Object(FundingOrder {
                jit_funding: Some(Object(funding)),
            })),
        ) => (funding, "gpa_order_unload"),
        _ => {
            return Err(EngineError::message(
                "gpa_order.jit_funding",
                "no jit_funding object",
            ))
        }
    };
    let amount_field = if prefix == "gpa_order" {
        AMOUNT_FIELD
    } else {
        "gpa_order_unload.jit_funding.amount"
    };

    let token = required(funding.token, prefix, "token")?;
    let method = required(funding.method, prefix, "method")?;
    let merchant = parse_merchant(parsed.card_acceptor.map(|Object(acceptor)| acceptor))?;
    let is_final_clearing = parsed.is_final_clearing.map(parse_flag).transpose()?;

    Ok(Message {
        token,
        method,
        user_token: funding.user_token,
        acting_user_token: funding.acting_user_token,
        business_token: funding.business_token,
        original_token: funding.original_jit_funding_token.filter(|t| !t.is_empty()),
        amount_raw: funding.amount.map(RawValue::get),
        amount_field,
        card_token: parsed.card_token,
        currency_code: parsed.currency_code,
        created_ms: parsed.created_time.as_deref().and_then(parse_time_ms),
        is_final_clearing,
        merchant,
    })
}

fn required<'a>(
    value: Option<Cow<'a, str>>,
    prefix: &str,
    name: &str,
) -> Result<Cow<'a, str>, EngineError> {
    match value {
        Some(text) if !text.is_empty() && text.len() <= 64 => Ok(text),
        Some(_) => Err(EngineError::message(
            &format!("{prefix}.jit_funding.{name}"),
            format!("{name} must be 1 to 64 bytes"),
        )),
        None => Err(EngineError::message(
            &format!("{prefix}.jit_funding.{name}"),
            format!("{name} is missing"),
        )),
    }
}

fn parse_merchant(acceptor: Option<CardAcceptor<'_>>) -> Result<Merchant<'_>, EngineError> {
    let Some(acceptor) = acceptor else {
        return Ok(Merchant::default());
    };
    let mcc = acceptor
        .mcc
        .map(|raw| parse_mcc(raw.get()))
        .transpose()?
        .flatten();
    Ok(Merchant {
        mid: acceptor.mid,
        mcc,
        name: acceptor.name,
        city: acceptor.city,
        country: acceptor.country_code.or(acceptor.country),
    })
}

/// An MCC string of exactly four digits, or null; anything else is refused by name.
fn parse_mcc(raw: &str) -> Result<Option<u16>, EngineError> {
    if raw == "null" {
        return Ok(None);
    }
    let digits = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'));
    match digits {
        Some(code) if code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(code.parse().ok())
        }
        Some(_) => Err(EngineError::message(
            "card_acceptor.mcc",
            format!("mcc {} must be a string of four digits", quoted(raw)),
        )),
        None => Err(EngineError::message(
            "card_acceptor.mcc",
            format!(
                "mcc {} must be a string of four digits, not a number",
                quoted(raw)
            ),
        )),
    }
}

fn parse_flag(raw: &RawValue) -> Result<bool, EngineError> {
    match raw.get() {
        "true" | "\"true\"" => Ok(true),
        "false" | "\"false\"" | "null" => Ok(false),
        other => Err(EngineError::message(
            "is_final_clearing",
            format!("is_final_clearing {} is not a boolean", quoted(other)),
        )),
    }
}

/// Why `body` must be refused for carrying the NUL character in its text, if it does.
///
/// JSON allows `\u0000` in a string, but the journal's read models are PostgreSQL text,
/// which cannot hold it: an entry carrying one would never leave the writer's queue.
pub fn nul_text(body: &[u8]) -> Option<&'static str> {
    // `\\u0000` in JSON text is an escaped backslash followed by "u0000", not NUL: the
    // escape is real only when an odd number of backslashes leads up to the "u".
    let escaped = |at: usize| {
        body[..=at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count()
            % 2
    };
    memchr::memmem::find_iter(body, b"\\u0000")
        .any(|at| escaped(at) == 1)
        .then_some("text must not contain the NUL character (\\u0000)")
}

/// Parses ISO 8601 time: RFC 3339 with an offset, or without one as UTC.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(instant.timestamp_millis());
    }
    let text = text.trim_end_matches('Z');
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc().timestamp_millis());
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, format) {
            return date
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis());
        }
    }
    None
}
