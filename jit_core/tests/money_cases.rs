//! Proves exact money parsing through the public API: "19.99" is 1999, "8.20" is 820,
//! every cent from 0.01 to 100.00 round-trips, JPY has no minor unit, KWD has three.

use jit_core::currency::by_alpha;
use jit_core::money::parse_decimal;

fn minor(text: &str, currency: &str) -> i64 {
    let exponent = by_alpha(currency).map(|c| c.exponent).unwrap_or(99);
    parse_decimal(text, exponent, i64::MAX)
        .map(|m| m.minor())
        .unwrap_or(-1)
}

#[test]
fn named_values_parse_exactly() {
    assert_eq!(minor("19.99", "USD"), 1999);
    assert_eq!(minor("8.20", "USD"), 820);
    assert_eq!(minor("80", "JPY"), 80);
    assert_eq!(minor("1.234", "KWD"), 1234);
    assert_eq!(minor("8.200", "USD"), 820);
    assert_eq!(minor("8.201", "USD"), -1);
}

#[test]
fn every_cent_to_one_hundred_round_trips() {
    for cents in 1..=10_000_i64 {
        let text = format!("{}.{:02}", cents / 100, cents % 100);
        assert_eq!(minor(&text, "USD"), cents, "{text}");
        assert_eq!(jit_core::Money::from_minor(cents).to_decimal(2), text);
    }
}
