//! Shared fixtures: a small program and JIT message bodies built the way the processor
//! sends them.
#![allow(dead_code)]

use jit_core::{Engine, Outcome};

/// 2024-03-13T12:00:00Z, a Wednesday.
pub const NOW_MS: i64 = 1_710_331_200_000;

/// An engine with one business account funded with `funds`, two cards on it
/// (`card_a`, `card_b`), and `extra` merged into the program file.
pub fn engine_with(funds: &str, extra: &str) -> Engine {
    let mut engine = Engine::new(10_000_000_000);
    let file = format!(
        r#"{{
        "businesses": [{{"token": "biz"}}],
        "users": [
            {{"token": "alice", "parent_token": "biz", "uses_parent_account": true}},
            {{"token": "bob", "parent_token": "biz", "uses_parent_account": true}}
        ],
        "cardproducts": [{{"token": "prod", "name": "Corporate"}}],
        "cards": [
            {{"token": "card_a", "user_token": "alice", "card_product_token": "prod"}},
            {{"token": "card_b", "user_token": "bob", "card_product_token": "prod"}}
        ],
        "gpaorders": [{{"token": "fund", "business_token": "biz", "amount": "{funds}"}}]
        {extra}
    }}"#
    );
    engine
        .load(file.as_bytes(), NOW_MS)
        .expect("fixture program loads");
    engine
}

/// A JIT body with the common fields; `more` is extra `jit_funding` fields and
/// `transaction` extra top-level fields (each with a leading comma or empty).
pub fn body(token: &str, method: &str, card: &str, amount: &str, more: &str) -> Vec<u8> {
    let user = holder_of(card);
    format!(
        r#"{{"token":"tx-{token}","type":"authorization","card_token":"{card}",
        "currency_code":"USD","card_acceptor":{{"mid":"m1","mcc":"5411","country_code":"USA"}},
        "gpa_order":{{"jit_funding":{{"token":"{token}","method":"{method}",
        "user_token":"{user}","amount":{amount}{more}}}}}}}"#
    )
    .into_bytes()
}

/// The holder the processor names for a fixture card, as it would.
pub fn holder_of(card: &str) -> &'static str {
    match card {
        "card_b" => "bob",
        "card_c" => "carol",
        "card_d" => "shop",
        _ => "alice",
    }
}

/// Decides and expects no error.
pub fn decide(engine: &mut Engine, body: &[u8]) -> Outcome {
    engine.decide(body, NOW_MS).expect("message is well formed")
}

/// Available balance of the fixture's business account.
pub fn available(engine: &Engine) -> i64 {
    engine
        .account("biz")
        .map(|a| a.available_minor())
        .unwrap_or(i64::MIN)
}

/// Held total of the fixture's business account.
pub fn held(engine: &Engine) -> i64 {
    engine
        .account("biz")
        .map(|a| a.held_minor)
        .unwrap_or(i64::MIN)
}

/// Posted balance of the fixture's business account.
pub fn posted(engine: &Engine) -> i64 {
    engine
        .account("biz")
        .map(|a| a.posted_minor)
        .unwrap_or(i64::MIN)
}

/// A fresh engine rebuilt from the journal `entries`.
pub fn replayed(entries: &[Vec<u8>]) -> Engine {
    let mut fresh = Engine::new(10_000_000_000);
    for data in entries {
        fresh.apply(data).expect("journal applies");
    }
    fresh
}
