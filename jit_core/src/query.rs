//! Read-only views of the engine's state for internal callers (gRPC services, the portal):
//! cards, holders, open holds, controls, and what a holder has left under each velocity
//! control, the way the processor's `velocitycontrols/user/{token}/available` reports it.
//!
//! Views are JSON of the engine's own model types, so a field added to the model shows up
//! here without a second schema to keep in step.

use serde::Serialize;

use crate::controls::{window_start_ms, Association, VelocityControl, Window};
use crate::engine::Engine;
use crate::model::{Card, Hold, HoldState};
use crate::money::Money;

const DAY_MS: i64 = 86_400_000;

/// What a holder has left under one velocity control in the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Available {
    /// Velocity control token.
    pub token: String,
    /// Its name.
    pub name: String,
    /// Its window.
    pub window: Window,
    /// The card the counter belongs to, for card-scoped controls.
    pub card_token: Option<String>,
    /// Messages left, or None when the control has no count limit.
    pub uses: Option<i64>,
    /// Amount left as decimal text in the program's currency, or None without an amount
    /// limit.
    pub amount: Option<String>,
    /// Whole days until the window resets, or None for windows that never reset.
    pub days_remaining: Option<i64>,
}

#[derive(Serialize)]
struct Controls<'s> {
    velocitycontrols: Vec<&'s VelocityControl>,
    authcontrols: Vec<&'s crate::controls::AuthControl>,
    mccgroups: Vec<&'s crate::model::MccGroup>,
}

fn json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // The model serializes plain data (strings, integers, enums): this cannot fail.
    serde_json::to_vec(value).expect("model types serialize to JSON")
}

impl Engine {
    /// A card as JSON, or None when unknown.
    pub fn card_json(&self, token: &str) -> Option<Vec<u8>> {
        self.state.cards.get(token).map(json)
    }

    /// A user or business as JSON, or None when unknown.
    pub fn holder_json(&self, token: &str) -> Option<Vec<u8>> {
        self.state.holders.get(token).map(json)
    }

    /// The open holds on an account, oldest expiry first, as a JSON list.
    pub fn holds_json(&self, account: &str) -> Vec<u8> {
        let mut holds: Vec<&Hold> = self
            .state
            .holds
            .values()
            .map(|hold| hold.as_ref())
            .filter(|hold| hold.account == account && hold.state == HoldState::Open)
            .collect();
        holds.sort_by(|a, b| (a.expires_at_ms, &a.token).cmp(&(b.expires_at_ms, &b.token)));
        json(&holds)
    }

    /// Every velocity control, authorization control and MCC group, in token order.
    pub fn controls_json(&self) -> Vec<u8> {
        json(&Controls {
            velocitycontrols: self.state.velocity_controls.values().collect(),
            authcontrols: self.state.auth_controls.values().collect(),
            mccgroups: self.state.mcc_groups.values().collect(),
        })
    }

    /// What `holder` has left under every active velocity control that applies to it or to
    /// one of its cards, at `now_ms`, as a JSON list of `Available`.
    pub fn velocity_available_json(&self, holder: &str, now_ms: i64) -> Vec<u8> {
        json(&self.velocity_available(holder, now_ms))
    }

    /// `velocity_available_json` as values.
    pub fn velocity_available(&self, holder: &str, now_ms: i64) -> Vec<Available> {
        let parent = self
            .state
            .holders
            .get(holder)
            .and_then(|found| found.parent_token.as_deref());
        let mut cards: Vec<&Card> = self
            .state
            .cards
            .values()
            .filter(|card| card.user_token == holder)
            .collect();
        cards.sort_by(|a, b| a.token.cmp(&b.token));
        let mut found = Vec::new();
        for control in self.state.velocity_controls.values() {
            if !control.active {
                continue;
            }
            match &control.association {
                Association::Card(card) => {
                    if cards.iter().any(|own| own.token == *card) {
                        found.push(self.available(control, card, Some(card), now_ms));
                    }
                }
                Association::CardProduct(product) => {
                    if cards.iter().any(|own| own.card_product_token == *product) {
                        found.push(self.available(control, holder, None, now_ms));
                    }
                }
                Association::User(token) if token != holder && Some(token.as_str()) != parent => {}
                Association::User(_) | Association::Program => {
                    found.push(self.available(control, holder, None, now_ms));
                }
            }
        }
        found
    }

    fn available(
        &self,
        control: &VelocityControl,
        subject: &str,
        card: Option<&String>,
        now_ms: i64,
    ) -> Available {
        let start = window_start_ms(control.window, now_ms, self.zone);
        let used = match control.window {
            Window::Transaction => Default::default(),
            _ => self.state.usage_in(&control.token, subject, start),
        };
        let uses = control
            .usage_limit
            .filter(|_| control.window != Window::Transaction)
            .map(|limit| (limit - used.count).max(0));
        let amount = control.amount_limit_minor.map(|limit| {
            Money::from_minor((limit - used.amount_minor).max(0)).to_decimal(self.exponent)
        });
        Available {
            token: control.token.clone(),
            name: control.name.clone(),
            window: control.window,
            card_token: card.cloned(),
            uses,
            amount,
            days_remaining: self.days_remaining(control.window, now_ms),
        }
    }

    /// Whole days from `now_ms` to the next reset of `window`, counting a part day as one.
    fn days_remaining(&self, window: Window, now_ms: i64) -> Option<i64> {
        let step_days = match window {
            Window::Transaction | Window::Lifetime => return None,
            Window::Day => 1,
            Window::Week => 7,
            Window::Month => 31,
        };
        let start = window_start_ms(window, now_ms, self.zone);
        // The next window starts at the first instant whose window start moves past ours;
        // stepping by days finds it across month lengths and daylight saving alike.
        let mut next_day = start.div_euclid(DAY_MS) * DAY_MS;
        for _ in 0..=step_days + 1 {
            next_day += DAY_MS;
            let probe = next_day + DAY_MS / 2;
            if window_start_ms(window, probe, self.zone) != start {
                let reset = window_start_ms(window, probe, self.zone);
                return Some((reset - now_ms + DAY_MS - 1).div_euclid(DAY_MS));
            }
        }
        None
    }
}
