//! Measures `jit_core` on one core: parse, decide (of a parsed message) and entry serialization
//! latency for a card with 5 velocity controls plus MCC, MCC group and country rules, then
//! recovery speed (journal entries applied per second). Percentiles come from hdrhistogram.
//!
//! Run: `cargo run --release -p engine_bench -- [decisions]` (default 200000).

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use jit_core::Engine;

/// The engine makes a few dozen small allocations per decision; glibc's malloc spends
/// about a fifth of the decision's instructions on them, mimalloc a fraction of that. The
/// Python extension installs the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW_MS: i64 = 1_710_331_200_000;
const CARDS: usize = 1_000;

fn program() -> String {
    let mut users = Vec::new();
    let mut cards = Vec::new();
    for index in 0..CARDS {
        users.push(format!(
            r#"{{"token":"user-{index}","parent_token":"biz","uses_parent_account":true}}"#
        ));
        cards.push(format!(
            r#"{{"token":"card-{index}","user_token":"user-{index}","card_product_token":"prod",
            "expiration":"1230","last_four":"4242"}}"#
        ));
    }
    format!(
        r#"{{"businesses":[{{"token":"biz"}}],
        "users":[{users}],
        "cardproducts":[{{"token":"prod","name":"Corporate"}}],
        "mccgroups":[{{"token":"gambling","name":"Gambling","mccs":["7800-7802","7995"]}},
                     {{"token":"hotels","name":"Hotels","mccs":["3501-3999","7011"],
                       "config":{{"authorization_controls":{{"hold_expiration_days":14}}}}}}],
        "cards":[{cards}],
        "velocitycontrols":[
          {{"token":"vc1","name":"Daily spend","amount_limit":"1000000.00",
            "velocity_window":"DAY"}},
          {{"token":"vc2","name":"Daily count","usage_limit":1000000,"velocity_window":"DAY"}},
          {{"token":"vc3","name":"Weekly","amount_limit":"5000000.00","velocity_window":"WEEK",
            "association":{{"card_product_token":"prod"}}}},
          {{"token":"vc4","name":"Monthly groceries","amount_limit":"9000000.00",
            "velocity_window":"MONTH","merchant_scope":{{"mcc":"5411"}}}},
          {{"token":"vc5","name":"Per purchase","amount_limit":"5000.00",
            "velocity_window":"TRANSACTION"}}],
        "authcontrols":[
          {{"token":"ac1","name":"No gambling","merchant_scope":{{"mcc_group":"gambling"}}}},
          {{"token":"ac2","name":"No vets","merchant_scope":{{"mcc":"0742"}}}},
          {{"token":"ac3","name":"Embargo","merchant_scope":{{"country":"PRK"}}}}],
        "gpaorders":[{{"token":"fund","business_token":"biz","amount":"900000000.00"}}]}}"#,
        users = users.join(","),
        cards = cards.join(",")
    )
}

/// A realistic JIT body of about 2 KB, as the processor sends it.
fn jit_body(token: &str, card: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"authorization","state":"PENDING","token":"tx-{token}","user_token":"u",
"acting_user_token":"u","card_token":"{card}","identifier":"1234","amount":12.34,
"request_amount":12.34,"currency_code":"USD","approval_code":"123456",
"response":{{"code":"0000","memo":"Approved or completed successfully"}},
"created_time":"2024-03-13T12:00:00Z","user_transaction_time":"2024-03-13T12:00:00Z",
"settlement_date":"2024-03-14T00:00:00Z","is_preauthorization":false,
"network":"VISA","subnetwork":"VISANET","acquirer_fee_amount":0,
"acquirer":{{"institution_country":"840","institution_id_code":"123456",
"system_trace_audit_number":"654321","retrieval_reference_number":"123456789012"}},
"pos":{{"pan_entry_mode":"CHIP","pin_entry_mode":"TRUE","terminal_id":"TR100000",
"terminal_attendance":"ATTENDED","terminal_location":"ON_PREMISE","card_holder_presence":true,
"card_presence":true,"partial_approval_capable":false,"purchase_amount_only":false,
"is_recurring":false}},
"card_acceptor":{{"mid":"000000012345","mcc":"5411","name":"Corner Grocery",
"street_address":"1 Main Street","city":"Oakland","state":"CA","zip":"94612",
"postal_code":"94612","country_code":"USA","country":"USA"}},
"gpa":{{"currency_code":"USD","ledger_balance":100.00,"available_balance":100.00,
"credit_balance":0,"pending_credits":0,"impacted_amount":-12.34,
"balances":{{"USD":{{"currency_code":"USD","ledger_balance":100.00,"available_balance":100.00,
"credit_balance":0,"pending_credits":0,"impacted_amount":-12.34}}}}}},
"card":{{"last_four":"4242","metadata":{{}}}},
"transaction_metadata":{{"payment_channel":"OTHER","is_recurring":false}},
"fraud":{{"network":{{"transaction_risk_score":12,"account_risk_score":3}}}},
"currency_conversion":{{"network":{{"original_amount":12.34,"conversion_rate":1.0,
"original_currency_code":"840"}}}},
"gpa_order":{{"token":"go-{token}","amount":12.34,"created_time":"2024-03-13T12:00:00Z",
"transaction_token":"tx-{token}","state":"PENDING","response":{{"code":"0000",
"memo":"Approved"}},"funding":{{"amount":12.34,"source":{{"type":"programgateway","token":"pgfs",
"active":true,"is_default_account":false}},"gateway_log":{{"order_number":"tx-{token}",
"transaction_id":"x","message":"Approved","duration":12,"timed_out":false,
"response":{{"code":"200"}}}}}},"funding_source_token":"pgfs","jit_funding":{{"token":"{token}",
"method":"pgfs.authorization","user_token":"{user}","acting_user_token":"{user}","amount":12.34,
"tags":"bench","memo":"bench"}},"user_token":"u","currency_code":"USD"}},
"padding":"{pad}"}}"#,
        user = card.replace("card", "user"),
        pad = "x".repeat(200)
    )
    .into_bytes()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn report(name: &str, histogram: &Histogram<u64>, total_ns: u64) {
    let per_second = histogram.len() as f64 / (total_ns as f64 / 1e9);
    println!(
        "{name:<28} n={:<8} p50={:>7.2}us p99={:>7.2}us p99.9={:>7.2}us max={:>8.2}us  {:>10.0}/s",
        histogram.len(),
        histogram.value_at_quantile(0.50) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.value_at_quantile(0.999) as f64 / 1e3,
        histogram.max() as f64 / 1e3,
        per_second
    );
}

fn main() {
    let decisions: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let mut engine = Engine::new(10_000_000_000);
    let mut journal: Vec<Vec<u8>> = engine
        .load(program().as_bytes(), NOW_MS)
        .expect("bench program loads")
        .iter()
        .map(|e| e.to_json())
        .collect();
    let bodies: Vec<Vec<u8>> = (0..decisions)
        .map(|index| {
            jit_body(
                &format!("jit-{index:09}"),
                &format!("card-{}", index % CARDS),
            )
        })
        .collect();
    println!(
        "jit_core bench: {decisions} decisions, {CARDS} cards on one account, body {} bytes",
        bodies[0].len()
    );

    let mut parse = histogram();
    let mut parse_total = 0;
    for body in &bodies {
        let start = Instant::now();
        black_box(
            jit_core::message::parse(black_box(body))
                .map(|m| m.token.len())
                .ok(),
        );
        let elapsed = start.elapsed().as_nanos() as u64;
        parse_total += elapsed;
        parse.record(elapsed.max(1)).ok();
    }

    let mut decide = histogram();
    let mut serialize = histogram();
    let (mut decide_total, mut serialize_total, mut approved) = (0, 0, 0);
    for body in &bodies {
        let message = jit_core::message::parse(body).expect("bench body parses");
        let start = Instant::now();
        let outcome = engine
            .decide_message(black_box(message), NOW_MS)
            .expect("bench body is valid");
        let elapsed = start.elapsed().as_nanos() as u64;
        decide_total += elapsed;
        decide.record(elapsed.max(1)).ok();
        approved += usize::from(outcome.approved);
        if let Some(entry) = outcome.entry {
            let start = Instant::now();
            let data = entry.to_json();
            let elapsed = start.elapsed().as_nanos() as u64;
            serialize_total += elapsed;
            serialize.record(elapsed.max(1)).ok();
            journal.push(data);
        }
    }
    assert_eq!(approved, decisions, "every bench decision is an approval");

    report("parse (2 KB body)", &parse, parse_total);
    report("decide (parsed message)", &decide, decide_total);
    report("entry to JSON", &serialize, serialize_total);

    let start = Instant::now();
    let mut fresh = Engine::new(10_000_000_000);
    for data in &journal {
        fresh.apply(data).expect("journal applies");
    }
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(
        fresh.state_digest(),
        engine.state_digest(),
        "replay equals the live engine"
    );
    println!(
        "recovery: {} entries in {:.3}s = {:.0} entries/s (digest equal)",
        journal.len(),
        seconds,
        journal.len() as f64 / seconds
    );
}
