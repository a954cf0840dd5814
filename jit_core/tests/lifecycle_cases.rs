//! Proves the issue's named cases, each with its exact numbers: shared-account races,
//! count limits, idempotent reversals, clearings smaller and larger than the hold,
//! incremental hotel holds, full and partial reversals and the methods that must not crash.

mod common;

use common::*;

#[test]
fn two_cards_on_one_account_never_overdraw() {
    let mut engine = engine_with("100.00", "");
    let first = decide(
        &mut engine,
        &body("t1", "pgfs.authorization", "card_a", "\"80.00\"", ""),
    );
    let second = decide(
        &mut engine,
        &body("t2", "pgfs.authorization", "card_b", "\"30.00\"", ""),
    );
    assert_eq!(u8::from(first.approved) + u8::from(second.approved), 1);
    assert_eq!(second.decline_reason.as_deref(), Some("INSUFFICIENT_FUNDS"));
    assert_eq!(second.status, 402);
    assert!([2000, 7000].contains(&available(&engine)));
}

#[test]
fn daily_count_limit_of_five_approves_exactly_five_of_twelve() {
    let control = r#", "velocitycontrols": [{"token": "vc_count", "name": "Five a day",
        "usage_limit": 5, "velocity_window": "DAY"}]"#;
    let mut engine = engine_with("100.00", control);
    let outcomes: Vec<_> = (0..12)
        .map(|i| {
            decide(
                &mut engine,
                &body(&format!("c{i}"), "pgfs.authorization", "card_a", "1.00", ""),
            )
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.approved).count(), 5);
    let declined: Vec<_> = outcomes.iter().filter(|o| !o.approved).collect();
    assert_eq!(declined.len(), 7);
    for outcome in declined {
        assert_eq!(
            outcome.decline_reason.as_deref(),
            Some("TRANSACTION_COUNT_LIMIT_EXCEEDED")
        );
        assert_eq!(outcome.rule_id.as_deref(), Some("vc_count"));
        assert!(
            outcome.body.contains("limit 5 used 5 requested 1"),
            "{}",
            outcome.body
        );
    }
}

#[test]
fn the_same_reversal_twice_releases_once() {
    let mut engine = engine_with("100.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "50.00", ""),
    );
    assert_eq!(available(&engine), 5000);
    let reversal = body(
        "r1",
        "pgfs.authorization.reversal",
        "card_a",
        "50.00",
        r#","original_jit_funding_token":"a1""#,
    );
    let first = decide(&mut engine, &reversal);
    let second = decide(&mut engine, &reversal);
    assert!(first.approved && !first.replayed && first.entry.is_some());
    assert!(second.replayed && second.entry.is_none());
    assert_eq!(first.body, second.body);
    assert_eq!(available(&engine), 10000);
    assert_eq!(held(&engine), 0);
}

#[test]
fn clearing_smaller_than_the_hold_releases_all_of_it() {
    let mut engine = engine_with("200.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "100.00", ""),
    );
    let clearing = body(
        "k1",
        "pgfs.authorization.capture",
        "card_a",
        "60.00",
        r#","original_jit_funding_token":"a1""#,
    );
    let outcome = decide(&mut engine, &clearing);
    assert!(outcome.approved);
    assert_eq!(posted(&engine), 20000 - 6000);
    assert_eq!(held(&engine), 0);
    let entry = outcome.entry.expect("clearing changes state");
    assert_eq!(
        (entry.posted_delta_minor, entry.held_delta_minor),
        (-6000, -10000)
    );
}

#[test]
fn clearing_larger_than_the_hold_posts_the_larger_amount() {
    let mut engine = engine_with("200.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "50.00", ""),
    );
    let clearing = body(
        "k1",
        "pgfs.authorization.capture",
        "card_a",
        "57.50",
        r#","original_jit_funding_token":"a1""#,
    );
    decide(&mut engine, &clearing);
    assert_eq!(posted(&engine), 20000 - 5750);
    assert_eq!(held(&engine), 0);
}

#[test]
fn hotel_incremental_grows_the_hold_and_clearing_releases_it() {
    let mut engine = engine_with("500.00", "");
    decide(
        &mut engine,
        &body("h1", "pgfs.authorization", "card_a", "200.00", ""),
    );
    let increment = body(
        "h2",
        "pgfs.authorization.incremental",
        "card_a",
        "50.00",
        r#","original_jit_funding_token":"h1""#,
    );
    assert!(decide(&mut engine, &increment).approved);
    assert_eq!(held(&engine), 25000);
    let clearing = body(
        "h3",
        "pgfs.authorization.capture",
        "card_a",
        "240.00",
        r#","original_jit_funding_token":"h1""#,
    );
    decide(&mut engine, &clearing);
    assert_eq!(posted(&engine), 50000 - 24000);
    assert_eq!(held(&engine), 0);
}

#[test]
fn full_reversal_gives_back_the_days_velocity_and_partial_leaves_the_rest() {
    let control = r#", "velocitycontrols": [{"token": "vc_day", "name": "Daily",
        "amount_limit": "100.00", "usage_limit": 10, "velocity_window": "DAY"}]"#;
    let mut engine = engine_with("100.00", control);
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "25.00", ""),
    );
    let usage = |engine: &jit_core::Engine| {
        let counters = &engine.state().usage["vc_day"]["alice"];
        (counters.amount_minor, counters.count)
    };
    assert_eq!(usage(&engine), (2500, 1));
    decide(
        &mut engine,
        &body(
            "r1",
            "pgfs.authorization.reversal",
            "card_a",
            "25.00",
            r#","original_jit_funding_token":"a1""#,
        ),
    );
    assert_eq!(held(&engine), 0);
    assert_eq!(usage(&engine), (0, 0));

    let mut engine = engine_with("100.00", control);
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "25.00", ""),
    );
    decide(
        &mut engine,
        &body(
            "r1",
            "pgfs.authorization.reversal",
            "card_a",
            "10.00",
            r#","original_jit_funding_token":"a1""#,
        ),
    );
    assert_eq!(held(&engine), 1500);
    assert_eq!(usage(&engine), (1500, 1));
}

#[test]
fn mcc_0742_is_blocked_and_the_number_742_cannot_slip_past() {
    let control = r#", "authcontrols": [{"token": "ac_vet", "name": "No vets",
        "merchant_scope": {"mcc": "0742"}}]"#;
    let mut engine = engine_with("100.00", control);
    let vet = String::from_utf8(body("v1", "pgfs.authorization", "card_a", "5.00", "")).unwrap();
    let blocked = decide(&mut engine, vet.replace("\"5411\"", "\"0742\"").as_bytes());
    assert_eq!(
        blocked.decline_reason.as_deref(),
        Some("TRANSACTION_NOT_PERMITTED")
    );
    assert_eq!(blocked.rule_id.as_deref(), Some("ac_vet"));
    let numeric = vet.replace("\"5411\"", "742").replace("\"v1\"", "\"v2\"");
    let error = engine.decide(numeric.as_bytes(), NOW_MS).unwrap_err();
    assert_eq!(error.field, "card_acceptor.mcc");
    assert_eq!(available(&engine), 10000);
}

#[test]
fn bad_amounts_are_refused_by_field_and_change_nothing() {
    let mut engine = engine_with("100.00", "");
    let digest = engine.state_digest();
    for amount in [
        "-10.00",
        "\"-10.00\"",
        "\"NaN\"",
        "\"Infinity\"",
        "1e400",
        "\"\"",
        "null",
    ] {
        let error = engine
            .decide(
                &body("bad", "pgfs.authorization", "card_a", amount, ""),
                NOW_MS,
            )
            .unwrap_err();
        assert_eq!(error.field, "gpa_order.jit_funding.amount", "{amount}");
        assert!(error.to_string().contains("amount"), "{error}");
    }
    let as_text = engine
        .decide(
            &body("bad", "pgfs.authorization", "card_a", "\"-10.00\"", ""),
            NOW_MS,
        )
        .unwrap_err();
    assert!(
        as_text
            .to_string()
            .ends_with(r#"amount "-10.00" is negative"#),
        "{as_text}"
    );
    assert_eq!(engine.state_digest(), digest);
}

#[test]
fn exotic_methods_are_handled_and_unknown_ones_do_not_crash() {
    let mut engine = engine_with("100.00", "");
    let reversal = decide(
        &mut engine,
        &body(
            "x1",
            "pgfs.refund.authorization.reversal",
            "card_a",
            "5.00",
            "",
        ),
    );
    assert!(reversal.approved);
    let bill = decide(
        &mut engine,
        &body("x2", "pgfs.billpayment", "card_a", "10.00", ""),
    );
    assert!(bill.approved);
    assert_eq!(posted(&engine), 9000);
    let force = decide(
        &mut engine,
        &body("x3", "pgfs.force_capture", "card_a", "20.00", ""),
    );
    assert!(force.approved);
    assert_eq!(posted(&engine), 7000);
    let unknown = decide(
        &mut engine,
        &body("x4", "pgfs.something.new", "card_a", "1.00", ""),
    );
    assert_eq!(
        unknown.decline_reason.as_deref(),
        Some("TRANSACTION_NOT_PERMITTED")
    );
    let moved = decide(
        &mut engine,
        &body("x5", "pgfs.something.capture", "card_a", "1.00", ""),
    );
    assert!(moved.approved);
    assert!(moved.entry.and_then(|e| e.flagged).is_some());
}

#[test]
fn same_token_with_another_amount_is_a_conflict() {
    let mut engine = engine_with("100.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "5.00", ""),
    );
    let error = engine
        .decide(
            &body("a1", "pgfs.authorization", "card_a", "6.00", ""),
            NOW_MS,
        )
        .unwrap_err();
    assert_eq!(error.kind, jit_core::ErrorKind::TokenConflict);
}

#[test]
fn unknown_card_is_invalid_card_without_an_entry() {
    let mut engine = engine_with("100.00", "");
    let outcome = decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "nope", "5.00", ""),
    );
    assert_eq!(outcome.decline_reason.as_deref(), Some("INVALID_CARD"));
    assert!(outcome.entry.is_none());
}

#[test]
fn void_undoes_the_hold_and_replays_as_a_decline() {
    let mut engine = engine_with("100.00", "");
    let mut journal: Vec<Vec<u8>> = Vec::new();
    let approved = decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "40.00", ""),
    );
    let lost_entry = approved.entry.expect("approval has an entry");
    let voided = engine.void("a1", NOW_MS).expect("a1 was decided");
    assert_eq!(
        voided.decline_reason.as_deref(),
        Some("TRANSACTION_NOT_PERMITTED")
    );
    assert!(voided.body.contains("not durable in time"));
    assert_eq!(available(&engine), 10000);
    let again = decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "40.00", ""),
    );
    assert!(again.replayed && again.status == 402);

    let mut fresh = engine_with("100.00", "");
    journal.push(voided.entry.expect("void has an entry").to_json());
    let _ = lost_entry;
    for data in &journal {
        fresh
            .apply(data)
            .expect("void applies without its decision");
    }
    let replay = fresh.decide(
        &body("a1", "pgfs.authorization", "card_a", "40.00", ""),
        NOW_MS,
    );
    assert_eq!(replay.expect("replays").body, again.body);
    assert_eq!(available(&fresh), 10000);
}

#[test]
fn balance_inquiry_answers_balances_as_decimal_text() {
    let mut engine = engine_with("100.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "40.00", ""),
    );
    let inquiry = decide(
        &mut engine,
        &body("b1", "pgfs.balanceinquiry", "card_a", "0", ""),
    );
    let expected = concat!(
        r#""balances":{"USD":{"currency_code":"USD","#,
        r#""available_balance":"60.00","ledger_balance":"100.00"}}"#
    );
    assert!(inquiry.body.contains(expected), "{}", inquiry.body);
}

#[test]
fn balances_are_not_shown_to_another_holder_or_a_suspended_card() {
    let mut engine = engine_with("100.00", "");
    let as_bob = String::from_utf8(body("b1", "pgfs.balanceinquiry", "card_a", "0", ""))
        .expect("fixture bodies are UTF-8")
        .replace(r#""user_token":"alice""#, r#""user_token":"bob""#);
    let foreign = decide(&mut engine, as_bob.as_bytes());
    engine
        .load(
            br#"{"cards": [{"token": "card_a", "user_token": "alice",
            "card_product_token": "prod", "state": "SUSPENDED"}]}"#,
            NOW_MS,
        )
        .expect("suspension loads");
    let suspended = decide(
        &mut engine,
        &body("b2", "pgfs.balanceinquiry", "card_a", "0", ""),
    );

    assert_eq!(foreign.status, 402);
    assert_eq!(foreign.rule_name.as_deref(), Some("card of another holder"));
    assert!(!foreign.body.contains("balances"), "{}", foreign.body);
    assert_eq!(suspended.decline_reason.as_deref(), Some("CARD_NOT_ACTIVE"));
    assert!(!suspended.body.contains("balances"), "{}", suspended.body);
}

#[test]
fn expired_holds_are_released_and_a_later_clearing_posts_without_one() {
    let mut engine = engine_with("100.00", "");
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "40.00", ""),
    );
    assert!(engine.expire_holds(NOW_MS + 6 * 86_400_000).is_empty());
    let entries = engine.expire_holds(NOW_MS + 7 * 86_400_000);
    assert_eq!(entries.len(), 1);
    assert_eq!(held(&engine), 0);
    decide(
        &mut engine,
        &body(
            "k1",
            "pgfs.authorization.capture",
            "card_a",
            "40.00",
            r#","original_jit_funding_token":"a1""#,
        ),
    );
    assert_eq!(posted(&engine), 6000);
    assert_eq!(held(&engine), 0);
}

#[test]
fn journal_replay_rebuilds_the_same_state() {
    let mut engine = Engine::new(10_000_000_000);
    let file = br#"{"users": [{"token": "u"}], "cards": [{"token": "c", "user_token": "u"}],
        "gpaorders": [{"token": "g", "user_token": "u", "amount": 30}]}"#;
    let mut journal: Vec<Vec<u8>> = engine
        .load(file, NOW_MS)
        .unwrap()
        .iter()
        .map(|e| e.to_json())
        .collect();
    for (i, amount) in ["10.00", "25.00", "5.00"].iter().enumerate() {
        let outcome = engine
            .decide(
                &body(&format!("t{i}"), "pgfs.authorization", "c", amount, ""),
                NOW_MS,
            )
            .unwrap();
        journal.extend(outcome.entry.map(|e| e.to_json()));
    }
    let fresh = replayed(&journal);
    assert_eq!(fresh.state_digest(), engine.state_digest());
    let restored = Engine::restore(&engine.snapshot()).unwrap();
    assert_eq!(restored.state_digest(), engine.state_digest());
}

use jit_core::Engine;

#[test]
fn incremental_without_an_open_authorization_is_declined_with_no_hold() {
    let mut engine = engine_with("100.00", "");
    let orphans = [
        body("i1", "pgfs.authorization.incremental", "card_a", "5.00", ""),
        body(
            "i2",
            "pgfs.authorization.incremental",
            "card_a",
            "5.00",
            r#","original_jit_funding_token":"never-seen""#,
        ),
    ];
    for orphan in &orphans {
        let outcome = decide(&mut engine, orphan);
        assert_eq!(outcome.status, 402);
        assert_eq!(
            outcome.decline_reason.as_deref(),
            Some("TRANSACTION_NOT_PERMITTED")
        );
        assert_eq!(outcome.rule_id.as_deref(), Some("chain"));
    }
    assert_eq!(held(&engine), 0);

    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "20.00", ""),
    );
    decide(
        &mut engine,
        &body(
            "a2",
            "pgfs.authorization.reversal",
            "card_a",
            "20.00",
            r#","original_jit_funding_token":"a1""#,
        ),
    );
    let after_reversal = body(
        "a3",
        "pgfs.authorization.incremental",
        "card_a",
        "5.00",
        r#","original_jit_funding_token":"a1""#,
    );
    assert!(!decide(&mut engine, &after_reversal).approved);
    assert_eq!((held(&engine), available(&engine)), (0, 10000));
}

#[test]
fn a_card_charged_to_another_holder_is_declined_and_its_parent_is_accepted() {
    let mut engine = engine_with("100.00", "");
    let as_bob = String::from_utf8(body("h1", "pgfs.authorization", "card_a", "\"5.00\"", ""))
        .expect("fixture bodies are UTF-8")
        .replace(r#""user_token":"alice""#, r#""user_token":"bob""#);
    let as_parent = as_bob.replace(r#""user_token":"bob""#, r#""user_token":"biz""#);
    let as_parent = as_parent.replace(r#""token":"h1""#, r#""token":"h2""#);

    let foreign = decide(&mut engine, as_bob.as_bytes());
    let parent = decide(&mut engine, as_parent.as_bytes());

    assert_eq!(
        foreign.decline_reason.as_deref(),
        Some("TRANSACTION_NOT_PERMITTED")
    );
    assert_eq!(foreign.rule_name.as_deref(), Some("card of another holder"));
    assert!(parent.approved);
    assert_eq!(available(&engine), 9500);
}

#[test]
fn clearings_of_closed_or_declined_authorizations_post_and_are_flagged() {
    let mut engine = engine_with("100.00", "");
    let capture = |token: &str, original: &str| {
        let more = format!(r#","original_jit_funding_token":"{original}""#);
        body(
            token,
            "pgfs.authorization.capture",
            "card_a",
            "\"10.00\"",
            &more,
        )
    };
    let flag = |outcome: jit_core::Outcome| outcome.entry.and_then(|entry| entry.flagged);
    decide(
        &mut engine,
        &body("a1", "pgfs.authorization", "card_a", "\"10.00\"", ""),
    );
    decide(
        &mut engine,
        &body("a2", "pgfs.authorization", "card_a", "\"99.00\"", ""),
    );

    let first = flag(decide(&mut engine, &capture("c1", "a1")));
    let second = flag(decide(&mut engine, &capture("c2", "a1")));
    let declined = flag(decide(&mut engine, &capture("c3", "a2")));
    let orphan = flag(decide(&mut engine, &capture("c4", "nowhere")));

    assert_eq!(first, None);
    assert_eq!(second.as_deref(), Some("clearing after a final clearing"));
    assert_eq!(
        declined.as_deref(),
        Some("clearing of a declined authorization")
    );
    assert_eq!(
        orphan.as_deref(),
        Some("clearing without its authorization")
    );
    assert_eq!(posted(&engine), 10000 - 4 * 1000);
}

#[test]
fn a_spilled_void_is_adopted_once_whatever_the_journal_kept() {
    let mut live = engine_with("100.00", "");
    let decided = decide(
        &mut live,
        &body("s1", "pgfs.authorization", "card_a", "\"40.00\"", ""),
    );
    let decision = decided.entry.expect("an approval has an entry").to_json();
    let void = live.void("s1", NOW_MS).expect("decided token");
    let spilled = void.entry.expect("a void has an entry").to_json();

    // The journal kept neither: only the decline is recorded, no money moves.
    let mut neither = engine_with("100.00", "");
    let adopted = neither.adopt_void(&spilled).expect("void entry");
    assert!(adopted.is_some());
    let replay = decide(
        &mut neither,
        &body("s1", "pgfs.authorization", "card_a", "\"40.00\"", ""),
    );
    assert!(replay.replayed && !replay.approved);
    assert_eq!(replay.body, void.body);
    assert_eq!(available(&neither), 10000);

    // The journal kept the decision: it is voided now, the hold released.
    let mut decision_only = engine_with("100.00", "");
    decision_only.apply(&decision).expect("decision applies");
    assert_eq!(available(&decision_only), 6000);
    assert!(decision_only.adopt_void(&spilled).expect("void").is_some());
    assert_eq!(available(&decision_only), 10000);

    // The journal kept both: nothing to do.
    assert!(live.adopt_void(&spilled).expect("void").is_none());
    assert!(neither.adopt_void(&spilled).expect("void").is_none());
}

#[test]
fn loading_a_file_after_traffic_keeps_holds_answers_and_usage() {
    let control = r#", "velocitycontrols": [{"token": "vc_day", "name": "Day",
        "amount_limit": "50.00", "velocity_window": "DAY"}]"#;
    let mut engine = engine_with("100.00", control);
    let mut journal: Vec<Vec<u8>> = Vec::new();
    let auth = decide(
        &mut engine,
        &body("k1", "pgfs.authorization", "card_a", "\"30.00\"", ""),
    );
    journal.push(auth.entry.expect("approved").to_json());

    let file = br#"{"users": [{"token": "dora"}], "cards": [{"token": "card_e",
        "user_token": "dora"}]}"#;
    let loaded = engine.load(file, NOW_MS).expect("file loads");
    journal.extend(loaded.iter().map(|entry| entry.to_json()));
    let again = decide(
        &mut engine,
        &body("k1", "pgfs.authorization", "card_a", "\"30.00\"", ""),
    );
    let over = decide(
        &mut engine,
        &body("k2", "pgfs.authorization", "card_a", "\"25.00\"", ""),
    );

    assert!(again.replayed && again.approved);
    assert_eq!(held(&engine), 3000);
    assert_eq!(
        over.decline_reason.as_deref(),
        Some("AMOUNT_LIMIT_EXCEEDED")
    );
    let mut rebuilt = engine_with("100.00", control);
    for data in &journal {
        rebuilt.apply(data).expect("journal applies");
    }
    journal.push(over.entry.expect("a decline is journaled").to_json());
    rebuilt
        .apply(journal.last().expect("pushed"))
        .expect("applies");
    assert_eq!(rebuilt.state_digest(), engine.state_digest());
}

#[test]
fn a_token_never_reaches_another_cards_money() {
    let mut engine = engine_with("100.00", "");
    let on = |card: &str, token: &str, method: &str, amount: &str, original: &str| {
        let more = format!(r#","original_jit_funding_token":"{original}""#);
        body(token, method, card, amount, &more)
    };
    decide(
        &mut engine,
        &body("x1", "pgfs.authorization", "card_a", "\"50.00\"", ""),
    );

    let borrowed = decide(
        &mut engine,
        &on("card_b", "x2", "pgfs.authorization", "\"40.00\"", "x1"),
    );
    let over = decide(
        &mut engine,
        &on("card_b", "x3", "pgfs.authorization", "\"20.00\"", "x1"),
    );
    let reversal = decide(
        &mut engine,
        &on(
            "card_b",
            "x4",
            "pgfs.authorization.reversal",
            "\"50.00\"",
            "x1",
        ),
    );

    // x2 holds its own 40.00; x1's 50.00 stays where it was; x3 finds 10.00 left.
    assert!(borrowed.approved);
    assert_eq!(over.decline_reason.as_deref(), Some("INSUFFICIENT_FUNDS"));
    assert_eq!(held(&engine), 9000);
    let flagged = reversal.entry.and_then(|entry| entry.flagged);
    assert_eq!(flagged.as_deref(), Some("chain of another card"));
    let own = decide(
        &mut engine,
        &on(
            "card_a",
            "x5",
            "pgfs.authorization.reversal",
            "\"50.00\"",
            "x1",
        ),
    );
    assert!(own.approved);
    assert_eq!(held(&engine), 4000);
}

#[test]
fn a_swipe_above_the_programs_maximum_is_declined_by_that_limit() {
    let program = r#", "program": {"token": "prog", "max_amount": "50.00"}"#;
    let mut engine = engine_with("100.00", program);

    let above = decide(
        &mut engine,
        &body("big", "pgfs.authorization", "card_a", "\"50.01\"", ""),
    );
    let at = decide(
        &mut engine,
        &body("fits", "pgfs.authorization", "card_a", "\"50.00\"", ""),
    );

    assert_eq!(above.status, 402);
    assert_eq!(
        above.decline_reason.as_deref(),
        Some("AMOUNT_LIMIT_EXCEEDED")
    );
    assert_eq!(above.rule_id.as_deref(), Some("prog"));
    assert!(above.body.contains("limit 50.00"), "{}", above.body);
    assert!(at.approved);
    assert_eq!(available(&engine), 5000);
}

#[test]
fn the_same_file_loaded_twice_writes_nothing_the_second_time() {
    let mut engine = engine_with("100.00", "");
    let file = br#"{"program": {"token": "prog", "max_amount": "500.00"},
        "users": [{"token": "dora"}], "cards": [{"token": "card_e", "user_token": "dora"}],
        "gpaorders": [{"token": "fund_dora", "user_token": "dora", "amount": "20.00"}]}"#;

    let first = engine.load(file, NOW_MS).expect("file loads");
    let second = engine.load(file, NOW_MS).expect("file loads again");
    let currency_only = engine
        .load(br#"{"program": {"currency_code": "USD"}}"#, NOW_MS)
        .expect("settings load");

    assert!(first.len() >= 4, "{}", first.len());
    assert!(second.is_empty(), "{second:?}");
    assert!(currency_only.is_empty(), "{currency_only:?}");
    assert_eq!(engine.state().program.max_amount_minor, Some(50_000));
    assert_eq!(engine.state().program.token, "prog");
}

#[test]
fn a_file_with_one_bad_object_changes_nothing_it_touched_before_it() {
    let extra = r#", "velocitycontrols": [{"token": "vc_day", "name": "Day",
        "amount_limit": "50.00", "velocity_window": "DAY"}],
        "mccgroups": [{"token": "bars", "name": "Bars", "mccs": ["5813"]}]"#;
    let mut engine = engine_with("100.00", extra);
    decide(
        &mut engine,
        &body("r1", "pgfs.authorization", "card_a", "\"30.00\"", ""),
    );
    let digest = engine.state_digest();
    let seq = engine.last_seq();

    // Every kind of change a file can make, each replacing or adding, then one problem.
    let file = br#"{"program": {"token": "p2", "time_zone": "Asia/Tokyo", "max_amount": "9"},
        "businesses": [{"token": "biz", "status": "LIMITED"}],
        "users": [{"token": "dora"}, {"token": "alice", "status": "SUSPENDED",
                   "parent_token": "biz", "uses_parent_account": true}],
        "cardproducts": [{"token": "prod2", "name": "Second"}],
        "cards": [{"token": "card_e", "user_token": "dora", "card_product_token": "prod2"},
                  {"token": "card_a", "user_token": "alice", "card_product_token": "prod2",
                   "state": "SUSPENDED"}],
        "mccgroups": [{"token": "bars", "name": "Bars", "mccs": ["5813", "5921"]}],
        "velocitycontrols": [{"token": "vc_day", "name": "Day", "amount_limit": "1",
                              "velocity_window": "DAY"}],
        "authcontrols": [{"token": "ac_new", "name": "No bars",
                          "merchant_scope": {"mcc_group": "bars"}}],
        "gpaorders": [{"token": "fund_dora", "user_token": "dora", "amount": "20"},
                      {"token": "more", "business_token": "biz", "amount": "5"},
                      {"token": "bad", "user_token": "nobody", "amount": "1"}]}"#;
    let refused = engine.load(file, NOW_MS);
    // Without the bad order the same file loads and changes every object it names.
    let good = String::from_utf8_lossy(file).replace(
        r#",
                      {"token": "bad", "user_token": "nobody", "amount": "1"}"#,
        "",
    );
    let mut control = engine_with("100.00", extra);
    decide(
        &mut control,
        &body("r1", "pgfs.authorization", "card_a", "\"30.00\"", ""),
    );
    let loaded = control
        .load(good.as_bytes(), NOW_MS)
        .expect("the good part loads");

    assert_eq!(loaded.len(), 12, "{loaded:?}");
    assert_ne!(control.state_digest(), digest);
    let problems = refused
        .expect_err("the unknown holder is refused")
        .to_string();
    assert!(problems.contains("gpaorders[2]"), "{problems}");
    assert_eq!(engine.state_digest(), digest);
    assert_eq!(engine.last_seq(), seq);
    // The program's limit is the old one again: ten dollars is not above "9".
    let after = decide(
        &mut engine,
        &body("r2", "pgfs.authorization", "card_a", "\"10.00\"", ""),
    );
    assert!(after.approved, "{}", after.body);
    assert_eq!(available(&engine), 6000);
}

#[test]
fn a_refused_file_leaves_the_currency_it_found() {
    let mut engine = Engine::new(10_000_000_000);
    let refused = engine.load(
        br#"{"program": {"currency_code": "JPY"}, "users": [{"token": "u"}],
        "gpaorders": [{"token": "bad", "user_token": "nobody", "amount": "1"}]}"#,
        NOW_MS,
    );
    // Cents are valid again: under JPY "10.50" would be refused.
    let funded = engine.load(
        br#"{"users": [{"token": "u"}],
        "gpaorders": [{"token": "g", "user_token": "u", "amount": "10.50"}]}"#,
        NOW_MS,
    );

    assert!(refused.is_err());
    assert!(funded.is_ok(), "{funded:?}");
    assert_eq!(engine.account("u").map(|a| a.posted_minor), Some(1050));
}

#[test]
fn the_currency_stays_once_accounts_exist() {
    let mut engine = engine_with("100.00", "");
    let refused = engine
        .load(br#"{"program": {"currency_code": "JPY"}}"#, NOW_MS)
        .expect_err("balances are cents of USD");

    assert_eq!(refused.problems[0].0, "program.currency_code");
    assert!(
        refused.problems[0].1.contains("from USD to JPY"),
        "{refused:?}"
    );
    assert_eq!(engine.state().program.currency, "USD");
}

#[test]
fn re_running_a_file_keeps_what_transitions_did() {
    let mut engine = engine_with("100.00", "");
    let transitions = br#"{"cardtransitions": [{"token": "t1", "card_token": "card_a",
        "state": "TERMINATED"}], "usertransitions": [{"token": "t2", "user_token": "bob",
        "status": "CLOSED"}]}"#;
    engine.load(transitions, NOW_MS).expect("transitions load");
    let rerun = br#"{"users": [{"token": "bob", "parent_token": "biz",
        "uses_parent_account": true}], "cards": [{"token": "card_a", "user_token": "alice",
        "card_product_token": "prod"}]}"#;

    let again = engine
        .load(rerun, NOW_MS)
        .expect("the same objects load again");
    let revive = engine.load(
        br#"{"cards": [{"token": "card_a", "user_token": "alice", "state": "ACTIVE"}]}"#,
        NOW_MS,
    );
    let transition = engine.load(
        br#"{"cardtransitions": [{"token": "t3", "card_token": "card_a", "state": "ACTIVE"}]}"#,
        NOW_MS,
    );
    let on_a = decide(
        &mut engine,
        &body("tr1", "pgfs.authorization", "card_a", "\"1.00\"", ""),
    );
    let on_b = decide(
        &mut engine,
        &body("tr2", "pgfs.authorization", "card_b", "\"1.00\"", ""),
    );

    assert!(again.is_empty(), "nothing changed: {again:?}");
    let problems = revive.expect_err("TERMINATED is final").problems;
    assert_eq!(problems[0].0, "cards[0].state");
    let problems = transition.expect_err("nor by a transition").problems;
    assert_eq!(problems[0].0, "cardtransitions[0].state");
    assert_eq!(on_a.decline_reason.as_deref(), Some("CARD_NOT_ACTIVE"));
    assert_eq!(on_b.decline_reason.as_deref(), Some("CLOSED_ACCOUNT"));
}

#[test]
fn a_holder_cannot_become_its_own_ancestor_and_each_problem_is_told_once() {
    let mut engine = engine_with("100.00", "");
    let own = engine
        .load(
            br#"{"users": [{"token": "alice", "parent_token": "alice"}]}"#,
            NOW_MS,
        )
        .expect_err("alice under alice");
    engine
        .load(
            br#"{"users": [{"token": "w2"}, {"token": "w1", "parent_token": "w2"}]}"#,
            NOW_MS,
        )
        .expect("a chain loads");
    let cycle = engine
        .load(
            br#"{"users": [{"token": "w2", "parent_token": "w1"}]}"#,
            NOW_MS,
        )
        .expect_err("w2 under w1 under w2");
    let missing = engine
        .load(br#"{"users": [{"first_name": "No token"}]}"#, NOW_MS)
        .expect_err("no token");

    assert_eq!(own.problems[0].0, "users[0].parent_token");
    assert_eq!(cycle.problems[0].0, "users[0].parent_token");
    assert!(cycle.problems[0].1.contains("ancestor"), "{cycle:?}");
    assert_eq!(missing.problems.len(), 1, "{missing:?}");
    assert_eq!(engine.state().holders["w2"].parent_token, None);
}

#[test]
fn controls_in_another_currency_and_reversed_mcc_ranges_are_refused_by_name() {
    let mut engine = engine_with("100.00", "");
    let refused = engine
        .load(
            br#"{"mccgroups": [{"token": "g", "name": "G", "mccs": ["5999-5000", "59x9"]}],
            "velocitycontrols": [{"token": "v", "amount_limit": "10.00", "currency_code": "EUR",
                                  "velocity_window": "DAY"}]}"#,
            NOW_MS,
        )
        .expect_err("three problems");

    assert_eq!(
        refused.problems,
        vec![
            (
                "mccgroups[0].mccs[0]".to_owned(),
                "range ends before it starts".to_owned()
            ),
            (
                "mccgroups[0].mccs[1]".to_owned(),
                "must be \"NNNN\" or \"NNNN-NNNN\"".to_owned()
            ),
            (
                "velocitycontrols[0].currency_code".to_owned(),
                "EUR is not the program currency".to_owned()
            ),
        ]
    );
}
