//! Drives random lifecycles (authorizations, increments, reversals, clearings, refunds,
//! force posts, expiries, voids, replays) across cards that share accounts, and checks after
//! every step that held totals equal the open holds, no hold is resolved twice, money is
//! conserved against the journal's deltas, and that replaying the journal on a fresh engine
//! and restoring a snapshot both give the same state digest and the same answers.

mod common;

use common::{body, NOW_MS};
use jit_core::journal::Effect;
use jit_core::model::HoldState;
use jit_core::{Engine, Entry};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Authorize {
        card: usize,
        cents: u32,
    },
    Increment {
        chain: usize,
        cents: u32,
    },
    Reverse {
        chain: usize,
        cents: u32,
    },
    Clear {
        chain: usize,
        cents: u32,
        last: bool,
    },
    Refund {
        card: usize,
        cents: u32,
    },
    ForcePost {
        card: usize,
        cents: u32,
    },
    Expire {
        days: u8,
    },
    Void,
    Replay {
        index: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 1..6_000u32).prop_map(|(card, cents)| Step::Authorize { card, cents }),
        1 => (0..8usize, 1..3_000u32).prop_map(|(chain, cents)| Step::Increment { chain, cents }),
        2 => (0..8usize, 1..6_000u32).prop_map(|(chain, cents)| Step::Reverse { chain, cents }),
        2 => (0..8usize, 1..8_000u32, any::<bool>())
            .prop_map(|(chain, cents, last)| Step::Clear { chain, cents, last }),
        1 => (0..4usize, 1..3_000u32).prop_map(|(card, cents)| Step::Refund { card, cents }),
        1 => (0..4usize, 1..3_000u32).prop_map(|(card, cents)| Step::ForcePost { card, cents }),
        1 => (0..10u8).prop_map(|days| Step::Expire { days }),
        1 => Just(Step::Void),
        1 => (0..64usize).prop_map(|index| Step::Replay { index }),
    ]
}

const CARDS: [&str; 4] = ["card_a", "card_b", "card_c", "card_d"];

fn fixture() -> (Engine, Vec<Entry>) {
    let mut engine = Engine::new(10_000_000_000);
    let file = br#"{
        "businesses": [{"token": "biz"}, {"token": "shop", "credit_line": "20.00"}],
        "users": [
            {"token": "alice", "parent_token": "biz", "uses_parent_account": true},
            {"token": "bob", "parent_token": "biz", "uses_parent_account": true},
            {"token": "carol", "parent_token": "shop", "uses_parent_account": true}
        ],
        "cards": [
            {"token": "card_a", "user_token": "alice"}, {"token": "card_b", "user_token": "bob"},
            {"token": "card_c", "user_token": "carol"}, {"token": "card_d", "user_token": "shop"}
        ],
        "velocitycontrols": [{"token": "vc", "name": "Daily", "amount_limit": "150.00",
            "usage_limit": 20, "velocity_window": "DAY"}],
        "gpaorders": [{"token": "g1", "business_token": "biz", "amount": "120.00"},
                      {"token": "g2", "business_token": "shop", "amount": "40.00"}]
    }"#;
    let entries = engine.load(file, NOW_MS).expect("fixture loads");
    (engine, entries)
}

fn amount(cents: u32) -> String {
    format!("\"{}.{:02}\"", cents / 100, cents % 100)
}

fn chained(token: &str, method: &str, card: &str, cents: u32, chain: &str, last: bool) -> Vec<u8> {
    let text = String::from_utf8(body(token, method, card, &amount(cents), "")).unwrap_or_default();
    let more = format!(r#","original_jit_funding_token":"{chain}"}}"#);
    let text = text.replacen(
        &format!(r#""amount":{}}}"#, amount(cents)),
        &format!(r#""amount":{}{more}"#, amount(cents)),
        1,
    );
    text.replacen(
        "\"card_token\"",
        &format!("\"is_final_clearing\":{last},\"card_token\""),
        1,
    )
    .into_bytes()
}

fn check_invariants(engine: &Engine, journal: &[Entry]) {
    let state = engine.state();
    for account in engine.accounts() {
        let open: i64 = state
            .holds
            .values()
            .filter(|hold| hold.account == account.token)
            .map(|hold| hold.open_minor())
            .sum();
        assert_eq!(account.held_minor, open, "held total of {}", account.token);
        assert!(account.held_minor >= 0);
        let posted: i64 = journal
            .iter()
            .flat_map(|entry| entry.effects.iter())
            .map(|effect| match effect {
                Effect::Posted {
                    account: token,
                    delta_minor,
                } if *token == account.token => *delta_minor,
                _ => 0,
            })
            .sum();
        assert_eq!(
            account.posted_minor, posted,
            "posted of {} against the journal",
            account.token
        );
    }
    for entry in journal {
        for effect in &entry.effects {
            if let Effect::Hold {
                before: Some(before),
                after: Some(after),
            } = effect
            {
                let resolved_again =
                    before.state != HoldState::Open && after.state != HoldState::Open;
                assert!(
                    !resolved_again || before == after,
                    "hold {} resolved twice",
                    after.token
                );
            }
        }
    }
}

fn run(steps: &[Step]) {
    let (mut engine, mut journal) = fixture();
    let mut chains: Vec<(String, &str)> = Vec::new();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut last_decided: Option<String> = None;
    for (index, step) in steps.iter().enumerate() {
        let token = format!("t{index}");
        let chain = |n: usize| chains.get(n % chains.len().max(1)).cloned();
        let message = match step {
            Step::Authorize { card, cents } => {
                chains.push((token.clone(), CARDS[*card]));
                Some(body(
                    &token,
                    "pgfs.authorization",
                    CARDS[*card],
                    &amount(*cents),
                    "",
                ))
            }
            Step::Increment { chain: n, cents } => chain(*n).map(|(c, card)| {
                chained(
                    &token,
                    "pgfs.authorization.incremental",
                    card,
                    *cents,
                    &c,
                    true,
                )
            }),
            Step::Reverse { chain: n, cents } => chain(*n).map(|(c, card)| {
                chained(
                    &token,
                    "pgfs.authorization.reversal",
                    card,
                    *cents,
                    &c,
                    true,
                )
            }),
            Step::Clear {
                chain: n,
                cents,
                last,
            } => chain(*n).map(|(c, card)| {
                chained(
                    &token,
                    "pgfs.authorization.capture",
                    card,
                    *cents,
                    &c,
                    *last,
                )
            }),
            Step::Refund { card, cents } => Some(body(
                &token,
                "pgfs.refund",
                CARDS[*card],
                &amount(*cents),
                "",
            )),
            Step::ForcePost { card, cents } => Some(body(
                &token,
                "pgfs.force_capture",
                CARDS[*card],
                &amount(*cents),
                "",
            )),
            Step::Expire { days } => {
                journal.extend(engine.expire_holds(NOW_MS + i64::from(*days) * 86_400_000));
                None
            }
            Step::Void => {
                if let Some(voided) = last_decided
                    .take()
                    .and_then(|t| engine.void(&t, NOW_MS).ok())
                {
                    journal.extend(voided.entry);
                }
                None
            }
            Step::Replay { index } => sent.get(*index % sent.len().max(1)).cloned(),
        };
        if let Some(message) = message {
            let outcome = engine
                .decide(&message, NOW_MS)
                .expect("generated messages are valid");
            if let Some(entry) = outcome.entry {
                last_decided = Some(entry.token.clone());
                journal.push(entry);
            }
            sent.push(message);
        }
        check_invariants(&engine, &journal);
    }

    let mut fresh = Engine::new(10_000_000_000);
    for entry in &journal {
        fresh
            .apply(&entry.to_json())
            .expect("journal applies in order");
    }
    assert_eq!(fresh.state_digest(), engine.state_digest());
    let mut restored = Engine::restore(&engine.snapshot()).expect("snapshot restores");
    assert_eq!(restored.state_digest(), engine.state_digest());
    for message in &sent {
        let live = engine.decide(message, NOW_MS).map(|o| (o.status, o.body));
        let rebuilt = fresh.decide(message, NOW_MS).map(|o| (o.status, o.body));
        let from_snapshot = restored.decide(message, NOW_MS).map(|o| (o.status, o.body));
        assert_eq!(live, rebuilt);
        assert_eq!(live, from_snapshot);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_lifecycles_keep_the_books(steps in proptest::collection::vec(step(), 1..60)) {
        run(&steps);
    }
}
