//! Turning one message into effects: the lifecycle of holds, postings and velocity usage.
//! The method table is in `lifecycle`; the checks and their order in `decision`.

use std::sync::Arc;

use crate::controls::Category;
use crate::decision::{check, Charge, Decline, Request, Spender};
use crate::engine::{Decided, Engine};
use crate::journal::Effect;
use crate::lifecycle::Flow;
use crate::model::{Card, Hold, HoldState, UsageRef};

/// Days a hold lasts when no MCC group says otherwise.
pub const HOLD_DAYS_DEFAULT: u32 = 7;

const DAY_MS: i64 = 86_400_000;

/// What a message will do, before it is applied.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub decline: Option<Decline>,
    pub effects: Vec<Effect>,
    pub flagged: Option<&'static str>,
    pub account: Option<String>,
    pub holder: Option<String>,
    pub balances: bool,
}

impl Plan {
    pub fn flagged(why: &'static str) -> Plan {
        Plan {
            flagged: Some(why),
            ..Plan::default()
        }
    }

    fn declined(decline: Decline) -> Plan {
        Plan {
            decline: Some(decline),
            ..Plan::default()
        }
    }
}

fn usage(charge: &Charge, amount_minor: i64, count: i64) -> Effect {
    Effect::Usage {
        control: Arc::clone(&charge.control),
        subject: Arc::clone(&charge.subject),
        window_start_ms: charge.window_start_ms,
        amount_minor,
        count,
    }
}

impl Engine {
    fn spender<'s>(&'s self, card: &'s Card) -> Option<Spender<'s>> {
        let holder = self.state.holders.get(&card.user_token)?;
        let parent = holder
            .parent_token
            .as_ref()
            .and_then(|token| self.state.holders.get(token));
        let account = self.state.accounts.get(&holder.account_token)?;
        Some(Spender {
            card,
            holder,
            parent,
            account,
        })
    }

    pub(crate) fn plan(&self, decided: &Decided<'_>, card: &Card) -> Plan {
        let spender = self.spender(card);
        let mut plan = match (decided.flow, spender) {
            (Flow::Refused, _) => Plan::declined(Decline::check(
                "TRANSACTION_NOT_PERMITTED",
                "method",
                "unknown method",
                decided.amount_minor,
            )),
            (Flow::Increment, _) if !self.has_open_chain(decided, card) => {
                Plan::declined(Decline::check(
                    "TRANSACTION_NOT_PERMITTED",
                    "chain",
                    "incremental without an open authorization",
                    decided.amount_minor,
                ))
            }
            (
                Flow::Authorize(_)
                | Flow::Increment
                | Flow::Verify
                | Flow::SingleMessage(_)
                | Flow::BalanceInquiry,
                _,
            ) => self.plan_spend(decided, card, spender),
            (_, None) if decided.flow.is_decided() => Plan::declined(Decline::check(
                "CARDHOLDER_NOT_ACTIVE",
                &card.user_token,
                "holder without account",
                decided.amount_minor,
            )),
            (_, None) => Plan::flagged("card without holder or account"),
            (_, Some(spender)) => self.plan_informative(decided, spender),
        };
        plan.holder = Some(card.user_token.clone());
        if plan.account.is_none() {
            plan.account = spender.map(|s| s.account.token.clone());
        }
        plan
    }

    fn plan_spend(&self, decided: &Decided<'_>, card: &Card, spender: Option<Spender<'_>>) -> Plan {
        let amount = decided.amount_minor;
        let asks_nothing = matches!(decided.flow, Flow::Verify | Flow::BalanceInquiry);
        let Some(spender) = spender else {
            let decline =
                Decline::check("CARDHOLDER_NOT_ACTIVE", &card.user_token, "holder", amount);
            return Plan::declined(decline);
        };
        let category = match decided.flow {
            Flow::Authorize(category) | Flow::SingleMessage(category) => category,
            _ => Category::Purchase,
        };
        let request = Request {
            amount_minor: amount,
            category,
            at_ms: decided.at_ms,
            currency: decided.message.currency_code.as_deref(),
            user_token: decided.message.user_token.as_deref(),
            business_token: decided.message.business_token.as_deref(),
            merchant: &decided.message.merchant,
            // A verification or a balance inquiry asks for no money, but the card, the
            // holder and the controls must still allow it: balances are not shown to a
            // terminated card or another holder's token.
            velocity: !asks_nothing,
            funds: !asks_nothing,
        };
        let mut charges = Vec::with_capacity(8);

        let verdict = check(&self.state, self.zone, spender, &request, &mut charges);

        let mut plan = Plan::default();
        if let Err(decline) = verdict {
            let counted = charges.iter().filter(|charge| charge.counts_declines);
            plan.effects = counted.map(|charge| usage(charge, amount, 1)).collect();
            plan.decline = Some(decline);
            return plan;
        }
        plan.effects = charges
            .iter()
            .map(|charge| usage(charge, amount, 1))
            .collect();
        let account = &spender.account.token;
        plan.balances = decided.flow == Flow::BalanceInquiry;
        match decided.flow {
            Flow::Authorize(_) | Flow::Increment => {
                let refs = charges.iter().map(usage_ref).collect();
                plan.effects
                    .push(self.grow_hold(decided, card, account, refs));
            }
            Flow::SingleMessage(_) => plan.effects.push(Effect::Posted {
                account: account.clone(),
                delta_minor: -amount,
            }),
            _ => {}
        }
        plan
    }

    /// An incremental grows an authorization the processor approved earlier; without the
    /// original token, or with one whose hold is not open on this card, it would otherwise
    /// hold new money under a chain nobody will ever clear or reverse.
    fn has_open_chain(&self, decided: &Decided<'_>, card: &Card) -> bool {
        let Some(original) = decided.message.original_token.as_deref() else {
            return false;
        };
        self.state
            .holds
            .get(original)
            .is_some_and(|hold| hold.state == HoldState::Open && hold.card == card.token)
    }

    /// The hold of the message's chain grown by its amount, or a new one.
    fn grow_hold(
        &self,
        decided: &Decided<'_>,
        card: &Card,
        account: &str,
        refs: Vec<UsageRef>,
    ) -> Effect {
        // An authorization starts its own chain whatever original it names; only an
        // incremental, or the processor's stand-in on this card's chain, grows a hold.
        let chain = match decided.flow {
            Flow::Increment => decided.message.chain_token(),
            Flow::StandinHold if self.own_chain(decided, card) => decided.message.chain_token(),
            _ => decided.message.token.as_ref(),
        };
        let before = self.state.holds.get(chain).cloned();
        let expires_at_ms = decided.at_ms + i64::from(self.hold_days(decided)) * DAY_MS;
        let after = match &before {
            Some(open) if open.state == HoldState::Open => {
                let mut grown = Hold::clone(open);
                grown.amount_minor += decided.amount_minor;
                grown.expires_at_ms = grown.expires_at_ms.max(expires_at_ms);
                for usage in refs {
                    if !grown.usage.contains(&usage) {
                        grown.usage.push(usage);
                    }
                }
                grown
            }
            _ => Hold {
                token: chain.to_owned(),
                account: account.to_owned(),
                card: card.token.clone(),
                amount_minor: decided.amount_minor,
                state: HoldState::Open,
                expires_at_ms,
                usage: refs,
            },
        };
        Effect::Hold {
            before,
            after: Some(Arc::new(after)),
        }
    }

    /// False when the chain the message names holds money of another card: a token it
    /// names never reaches another holder's money.
    fn own_chain(&self, decided: &Decided<'_>, card: &Card) -> bool {
        let chain = decided.message.chain_token();
        self.state
            .holds
            .get(chain)
            .is_none_or(|hold| hold.card == card.token)
    }

    fn hold_days(&self, decided: &Decided<'_>) -> u32 {
        let Some(mcc) = decided.message.merchant.mcc else {
            return HOLD_DAYS_DEFAULT;
        };
        self.state
            .mcc_groups
            .values()
            .filter(|group| group.contains(mcc))
            .find_map(|group| group.hold_expiration_days)
            .unwrap_or(HOLD_DAYS_DEFAULT)
    }

    fn plan_informative(&self, decided: &Decided<'_>, spender: Spender<'_>) -> Plan {
        let amount = decided.amount_minor;
        let account = spender.account.token.clone();
        let posted = |delta_minor| Plan {
            effects: vec![Effect::Posted {
                account: account.clone(),
                delta_minor,
            }],
            ..Plan::default()
        };
        match decided.flow {
            Flow::Credit => posted(amount),
            Flow::Debit | Flow::StandinPost => posted(-amount),
            Flow::Release { .. } | Flow::IssuerExpiration | Flow::Clear
                if !self.own_chain(decided, spender.card) =>
            {
                // Money moved on this card: post a clearing here, release nothing elsewhere.
                let mut plan = match decided.flow {
                    Flow::Clear => posted(-amount),
                    _ => Plan::default(),
                };
                plan.flagged = Some("chain of another card");
                plan
            }
            Flow::Release { give_back } => self.plan_release(decided, give_back, false),
            Flow::IssuerExpiration => self.plan_release(decided, false, true),
            Flow::Clear => self.plan_clear(decided, &account),
            Flow::StandinHold => Plan {
                effects: vec![self.grow_hold(decided, spender.card, &account, Vec::new())],
                ..Plan::default()
            },
            Flow::Flagged => Plan::flagged("unknown method reporting moved money"),
            _ => Plan::default(),
        }
    }

    /// Releases `amount` (or the whole hold) from the chain's open hold, once per token.
    fn plan_release(&self, decided: &Decided<'_>, give_back: bool, expire: bool) -> Plan {
        let chain = decided.message.chain_token();
        let Some(hold) = self
            .state
            .holds
            .get(chain)
            .filter(|h| h.state == HoldState::Open)
        else {
            return Plan::flagged("no open hold for the chain");
        };
        let released = if expire {
            hold.amount_minor
        } else {
            decided.amount_minor.min(hold.amount_minor)
        };
        let mut after = Hold::clone(hold);
        after.amount_minor -= released;
        if after.amount_minor == 0 {
            after.state = if expire {
                HoldState::Expired
            } else {
                HoldState::Reversed
            };
        }
        let mut plan = Plan {
            account: Some(hold.account.clone()),
            ..Plan::default()
        };
        if give_back {
            let whole = i64::from(after.amount_minor == 0);
            for usage in &hold.usage {
                plan.effects.push(Effect::Usage {
                    control: Arc::clone(&usage.control),
                    subject: Arc::clone(&usage.subject),
                    window_start_ms: usage.window_start_ms,
                    amount_minor: -released,
                    count: -whole,
                });
            }
        }
        plan.effects.push(Effect::Hold {
            before: Some(Arc::clone(hold)),
            after: Some(Arc::new(after)),
        });
        plan
    }

    /// Posts a clearing and releases the chain's hold: all of it when final, else at most
    /// the amount cleared.
    fn plan_clear(&self, decided: &Decided<'_>, card_account: &str) -> Plan {
        let chain = decided.message.chain_token();
        let open = self
            .state
            .holds
            .get(chain)
            .filter(|h| h.state == HoldState::Open);
        let account = open
            .map_or(card_account, |hold| hold.account.as_str())
            .to_owned();
        let mut plan = Plan {
            account: Some(account.clone()),
            flagged: open.map_or_else(|| self.unmatched_clearing(decided), |_| None),
            ..Plan::default()
        };
        if let Some(hold) = open {
            let last = decided.message.is_final_clearing != Some(false);
            let released = if last {
                hold.amount_minor
            } else {
                decided.amount_minor.min(hold.amount_minor)
            };
            let mut after = Hold::clone(hold);
            after.amount_minor -= released;
            if last || after.amount_minor == 0 {
                after.state = HoldState::Cleared;
            }
            plan.effects.push(Effect::Hold {
                before: Some(Arc::clone(hold)),
                after: Some(Arc::new(after)),
            });
        }
        plan.effects.push(Effect::Posted {
            account,
            delta_minor: -decided.amount_minor,
        });
        plan
    }
}

impl Engine {
    /// Why a clearing that found no open hold needs a person to look at it, if it does. A
    /// clearing after the hold expired is normal (it posts without a hold); after a final
    /// clearing, a reversal or a decline, the processor reports money we never promised.
    fn unmatched_clearing(&self, decided: &Decided<'_>) -> Option<&'static str> {
        let original = decided.message.original_token.as_deref()?;
        if let Some(hold) = self.state.holds.get(original) {
            return match hold.state {
                HoldState::Cleared => Some("clearing after a final clearing"),
                HoldState::Reversed => Some("clearing of a reversed authorization"),
                HoldState::Open | HoldState::Expired => None,
            };
        }
        match self.state.answers.get(original) {
            Some(record) if record.answer.status != 200 => {
                Some("clearing of a declined authorization")
            }
            Some(_) => None,
            None => Some("clearing without its authorization"),
        }
    }
}

fn usage_ref(charge: &Charge) -> UsageRef {
    UsageRef {
        control: Arc::clone(&charge.control),
        subject: Arc::clone(&charge.subject),
        window_start_ms: charge.window_start_ms,
    }
}
