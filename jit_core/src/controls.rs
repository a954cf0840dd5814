//! Spend controls: velocity limits and authorization (merchant) controls, and their windows.
//!
//! Windows follow the processor: DAY starts at 00:00, WEEK on Sunday 00:00, MONTH on the 1st
//! at 00:00, in the program's time zone (UTC by default; in a zone with daylight saving a
//! day is 23 or 25 hours long). LIFETIME never resets; TRANSACTION limits one message.
//!
//! Counters are kept per control and per subject: the card for a card-scoped control, the
//! card's holder for every other association, because the processor's velocity controls
//! limit each cardholder, even when they are attached to a card product or the program.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A velocity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Window {
    /// One message at a time: only `amount_limit` applies.
    Transaction,
    /// From 00:00.
    Day,
    /// From Sunday 00:00.
    Week,
    /// From the 1st at 00:00.
    Month,
    /// Forever.
    Lifetime,
}

/// Who a control applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "token", rename_all = "snake_case")]
pub enum Association {
    /// The whole program.
    Program,
    /// One user or business and the users under it.
    User(String),
    /// Cards of one card product.
    CardProduct(String),
    /// One card (pyjit's own extension).
    Card(String),
}

/// Which merchants a control applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum MerchantScope {
    /// Every merchant.
    Any,
    /// One merchant id.
    Mid(String),
    /// One MCC.
    Mcc(u16),
    /// Every MCC of a group.
    MccGroup(String),
    /// One country, ISO 3166 alpha-3 (pyjit's own extension).
    Country(String),
}

/// The kind of spending a message is, matched against the `include_*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Card purchases (authorizations, PIN debit, bill payments).
    Purchase,
    /// ATM withdrawals.
    Withdrawal,
    /// Quasi cash and other transfers.
    Transfer,
    /// Cash back.
    Cashback,
    /// Credits to the card.
    Credit,
}

/// The `include_*` flags of a velocity control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Includes {
    /// `include_purchases`, default true.
    pub purchases: bool,
    /// `include_withdrawals`, default true.
    pub withdrawals: bool,
    /// `include_transfers`, default true.
    pub transfers: bool,
    /// `include_cashback`, default true.
    pub cashback: bool,
    /// `include_credits`, default false.
    pub credits: bool,
}

impl Includes {
    /// True when the control counts `category`.
    pub fn counts(&self, category: Category) -> bool {
        match category {
            Category::Purchase => self.purchases,
            Category::Withdrawal => self.withdrawals,
            Category::Transfer => self.transfers,
            Category::Cashback => self.cashback,
            Category::Credit => self.credits,
        }
    }
}

/// A velocity control: an amount and/or count limit per window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityControl {
    /// Control token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// Who it applies to.
    pub association: Association,
    /// Which merchants it applies to.
    pub scope: MerchantScope,
    /// Largest number of messages per window; None for no count limit (`usage_limit` -1).
    pub usage_limit: Option<i64>,
    /// Largest total per window, minor units.
    pub amount_limit_minor: Option<i64>,
    /// The window.
    pub window: Window,
    /// What it counts.
    pub includes: Includes,
    /// Only approved messages count when true; declines count too when false.
    pub approvals_only: bool,
    /// Inactive controls are kept but never checked.
    pub active: bool,
}

/// Whether an authorization control blocks what is in scope or allows only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthMode {
    /// Decline what is in scope (the processor's behaviour).
    Block,
    /// Decline what is out of scope (pyjit's own).
    Allow,
}

/// An authorization control over merchants, active between `start_ms` and `end_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthControl {
    /// Control token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// Who it applies to.
    pub association: Association,
    /// Which merchants it applies to.
    pub scope: MerchantScope,
    /// First instant it is in force, ms.
    pub start_ms: Option<i64>,
    /// Instant it stops being in force, ms.
    pub end_ms: Option<i64>,
    /// Inactive controls are kept but never checked.
    pub active: bool,
    /// Block or allow.
    pub mode: AuthMode,
}

/// A merchant exempted from every BLOCK control of its association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExemptMid {
    /// Exemption token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// Who it applies to.
    pub association: Association,
    /// The exempted merchant id.
    pub mid: String,
    /// First instant it is in force, ms.
    pub start_ms: Option<i64>,
    /// Instant it stops being in force, ms.
    pub end_ms: Option<i64>,
    /// Inactive exemptions are ignored.
    pub active: bool,
}

/// True when `at_ms` is inside `[start, end)`, an open bound meaning always.
pub fn in_force(active: bool, start_ms: Option<i64>, end_ms: Option<i64>, at_ms: i64) -> bool {
    active && start_ms.is_none_or(|start| at_ms >= start) && end_ms.is_none_or(|end| at_ms < end)
}

/// A velocity counter's state for the window that starts at `window_start_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowUsage {
    /// Start of the window, ms; usage from an earlier window is forgotten.
    pub window_start_ms: i64,
    /// Amount counted, minor units.
    pub amount_minor: i64,
    /// Messages counted.
    pub count: i64,
}

const DAY_MS: i64 = 86_400_000;

/// Start of the window containing `at_ms`, ms; TRANSACTION and LIFETIME windows start at 0.
pub fn window_start_ms(window: Window, at_ms: i64, zone: Tz) -> i64 {
    match (window, zone) {
        (Window::Transaction | Window::Lifetime, _) => 0,
        (Window::Day, Tz::UTC) => at_ms.div_euclid(DAY_MS) * DAY_MS,
        (Window::Week, Tz::UTC) => {
            let days = at_ms.div_euclid(DAY_MS);
            let since_sunday = (days + 4).rem_euclid(7);
            (days - since_sunday) * DAY_MS
        }
        (Window::Month, Tz::UTC) => utc_month_start_ms(at_ms),
        _ => zoned_window_start_ms(window, at_ms, zone),
    }
}

/// The first of the month in UTC, from the day number alone: a date conversion through
/// chrono-tz costs more than the rest of a velocity check.
fn utc_month_start_ms(at_ms: i64) -> i64 {
    let days = at_ms.div_euclid(DAY_MS);
    let day_of_month = chrono::DateTime::from_timestamp_millis(at_ms).map_or(1, |t| t.day());
    (days - i64::from(day_of_month) + 1) * DAY_MS
}

fn zoned_window_start_ms(window: Window, at_ms: i64, zone: Tz) -> i64 {
    let Some(utc) = chrono::DateTime::from_timestamp_millis(at_ms) else {
        return 0;
    };
    let local = utc.with_timezone(&zone).date_naive();
    let first = match window {
        Window::Week => {
            let back = i64::from(local.weekday().num_days_from_sunday());
            local - chrono::Duration::days(back)
        }
        Window::Month => local.with_day(1).unwrap_or(local),
        _ => local,
    };
    local_midnight_ms(first, zone)
}

/// The first instant of `date` in `zone`; where midnight does not exist (a DST gap at
/// 00:00) the day starts at the first valid minute after it.
fn local_midnight_ms(date: NaiveDate, zone: Tz) -> i64 {
    let mut time = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..180 {
        if let Some(instant) = zone.from_local_datetime(&time).earliest() {
            return instant.timestamp_millis();
        }
        time += chrono::Duration::minutes(1);
    }
    debug_assert!(
        time.minute() == 0,
        "no valid local time within three hours of midnight"
    );
    time.and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    }

    #[test]
    fn utc_windows_start_at_midnight_sunday_and_the_first() {
        let at = ms("2024-03-13T15:30:00Z");
        assert_eq!(
            window_start_ms(Window::Day, at, Tz::UTC),
            ms("2024-03-13T00:00:00Z")
        );
        assert_eq!(
            window_start_ms(Window::Week, at, Tz::UTC),
            ms("2024-03-10T00:00:00Z")
        );
        assert_eq!(
            window_start_ms(Window::Month, at, Tz::UTC),
            ms("2024-03-01T00:00:00Z")
        );
        let sunday = ms("2024-03-10T00:00:00Z");
        assert_eq!(window_start_ms(Window::Week, sunday, Tz::UTC), sunday);
    }

    #[test]
    fn utc_month_start_agrees_with_the_zoned_computation() {
        let first = ms("1999-12-31T23:59:59Z");
        for step in 0..5_000 {
            let at = first + step * 7 * 3_600_000 + step;
            assert_eq!(
                utc_month_start_ms(at),
                zoned_window_start_ms(Window::Month, at, Tz::UTC),
                "at {at}"
            );
        }
    }

    #[test]
    fn zoned_days_are_23_or_25_hours_across_dst() {
        let zone = Tz::America__New_York;
        let spring = window_start_ms(Window::Day, ms("2024-03-10T12:00:00Z"), zone);
        let next = window_start_ms(Window::Day, ms("2024-03-11T12:00:00Z"), zone);
        assert_eq!(next - spring, 23 * 3_600_000);
        let fall = window_start_ms(Window::Day, ms("2024-11-03T12:00:00Z"), zone);
        let after = window_start_ms(Window::Day, ms("2024-11-04T12:00:00Z"), zone);
        assert_eq!(after - fall, 25 * 3_600_000);
        assert_eq!(spring, ms("2024-03-10T05:00:00Z"));
    }
}
