//! The engine's state and the one function that changes it: `State::apply_effect`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::controls::{AuthControl, ExemptMid, VelocityControl, WindowUsage};
use crate::error::EngineError;
use crate::journal::{Answer, Effect, ProgramObject};
use crate::model::{Account, Card, CardProduct, Hold, Holder, MccGroup, Program};
use crate::shards::ShardedMap;

/// An answered token: its answer and the effects a `void` would undo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The answer a replay returns, shared with the entry that recorded it.
    pub answer: Arc<Answer>,
    /// The decision's effects other than the answer.
    pub effects: Vec<Effect>,
}

/// Everything the engine knows. Maps are hashed with FxHash (no random seed) and written
/// sorted, so equal states serialize to equal bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Seq of the last entry made or applied.
    pub last_seq: u64,
    /// The program.
    pub program: Program,
    /// Users and businesses.
    #[serde(serialize_with = "sorted_map")]
    pub holders: FxHashMap<String, Holder>,
    /// Accounts.
    #[serde(serialize_with = "sorted_map")]
    pub accounts: FxHashMap<String, Account>,
    /// Cards.
    #[serde(serialize_with = "sorted_map")]
    pub cards: FxHashMap<String, Card>,
    /// Card products.
    #[serde(serialize_with = "sorted_map")]
    pub card_products: FxHashMap<String, CardProduct>,
    /// MCC groups, ordered so the first group with a hold expiry wins.
    pub mcc_groups: BTreeMap<String, MccGroup>,
    /// Velocity controls, ordered: they are checked in token order.
    pub velocity_controls: BTreeMap<String, VelocityControl>,
    /// Authorization controls, ordered: they are checked in token order.
    pub auth_controls: BTreeMap<String, AuthControl>,
    /// Merchant exemptions.
    pub exempt_mids: BTreeMap<String, ExemptMid>,
    /// Holds by chain token, open or resolved.
    pub holds: ShardedMap<Arc<Hold>>,
    /// Velocity counters: control token, then subject token. The keys are shared with the
    /// effects and holds that charge them.
    #[serde(serialize_with = "sorted_usage")]
    pub usage: FxHashMap<Arc<str>, FxHashMap<Arc<str>, WindowUsage>>,
    /// Answered tokens.
    pub answers: ShardedMap<Record>,
    /// Applied GPA order tokens, with the account and amount each funded.
    #[serde(serialize_with = "sorted_map")]
    pub gpa_orders: FxHashMap<String, (String, i64)>,
}

fn sorted_map<K: Serialize + Ord, V: Serialize, S: Serializer>(
    map: &FxHashMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    map.iter().collect::<BTreeMap<_, _>>().serialize(serializer)
}

fn sorted_usage<S: Serializer>(
    usage: &FxHashMap<Arc<str>, FxHashMap<Arc<str>, WindowUsage>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let sorted: BTreeMap<_, BTreeMap<_, _>> = usage
        .iter()
        .map(|(control, subjects)| (control, subjects.iter().collect()))
        .collect();
    sorted.serialize(serializer)
}

impl State {
    /// Checks that `effect` fits the state, so an entry is applied whole or not at all.
    pub fn check_effect(&self, effect: &Effect) -> Result<(), EngineError> {
        let known = |account: &str| {
            if self.accounts.contains_key(account) {
                Ok(())
            } else {
                Err(EngineError::journal(
                    "effects",
                    format!("unknown account {account:?}"),
                ))
            }
        };
        match effect {
            Effect::Posted { account, .. } => known(account),
            Effect::Hold {
                after: Some(hold), ..
            } => known(&hold.account),
            Effect::Hold {
                before: Some(hold),
                after: None,
            } => known(&hold.account),
            _ => Ok(()),
        }
    }

    /// Applies one state change. Assumes `check_effect` passed.
    ///
    /// An `Answer` takes `effects_for_void` (the decision's other effects) for its record.
    pub fn apply_effect(&mut self, effect: &Effect, effects_for_void: &mut Option<Vec<Effect>>) {
        match effect {
            Effect::Posted {
                account,
                delta_minor,
            } => {
                if let Some(account) = self.accounts.get_mut(account) {
                    account.posted_minor += delta_minor;
                }
            }
            Effect::Hold { before, after } => self.replace_hold(before.as_ref(), after.as_ref()),
            Effect::Usage {
                control,
                subject,
                window_start_ms,
                amount_minor,
                count,
            } => {
                self.add_usage(control, subject, *window_start_ms, *amount_minor, *count);
            }
            Effect::Answer(answer) => {
                let record = Record {
                    answer: Arc::clone(answer),
                    effects: effects_for_void.take().unwrap_or_default(),
                };
                self.answers.insert(answer.token.clone(), record);
            }
            Effect::Put(object) => self.put(object),
            Effect::GpaOrder {
                token,
                account,
                amount_minor,
            } => {
                self.gpa_orders
                    .insert(token.clone(), (account.clone(), *amount_minor));
            }
        }
    }

    fn replace_hold(&mut self, before: Option<&Arc<Hold>>, after: Option<&Arc<Hold>>) {
        let old = before.map_or(0, |hold| hold.open_minor());
        let new = after.map_or(0, |hold| hold.open_minor());
        let account = after
            .or(before)
            .map(|hold| hold.account.as_str())
            .unwrap_or_default();
        if let Some(account) = self.accounts.get_mut(account) {
            account.held_minor += new - old;
            debug_assert!(account.held_minor >= 0, "held total below zero");
        }
        match (before, after) {
            (_, Some(hold)) => {
                self.holds.insert(hold.token.clone(), Arc::clone(hold));
            }
            (Some(hold), None) => {
                self.holds.remove(&hold.token);
            }
            (None, None) => {}
        }
    }

    fn add_usage(
        &mut self,
        control: &Arc<str>,
        subject: &Arc<str>,
        start_ms: i64,
        amount: i64,
        count: i64,
    ) {
        let subjects = match self.usage.get_mut(control) {
            Some(subjects) => subjects,
            None => self.usage.entry(Arc::clone(control)).or_default(),
        };
        let usage = match subjects.get_mut(subject) {
            Some(usage) => usage,
            None => subjects.entry(Arc::clone(subject)).or_default(),
        };
        if usage.window_start_ms < start_ms {
            *usage = WindowUsage {
                window_start_ms: start_ms,
                amount_minor: 0,
                count: 0,
            };
        }
        if usage.window_start_ms == start_ms {
            usage.amount_minor = (usage.amount_minor + amount).max(0);
            usage.count = (usage.count + count).max(0);
        }
    }

    /// The usage of a counter in the window starting at `start_ms`.
    pub fn usage_in(&self, control: &str, subject: &str, start_ms: i64) -> WindowUsage {
        self.counter(control, subject, start_ms).2
    }

    /// A counter's tokens, shared with the counter map when it has them already (so that
    /// charging an existing counter allocates nothing), and its usage in the window
    /// starting at `start_ms`.
    pub fn counter(
        &self,
        control: &str,
        subject: &str,
        start_ms: i64,
    ) -> (Arc<str>, Arc<str>, WindowUsage) {
        let empty = WindowUsage {
            window_start_ms: start_ms,
            amount_minor: 0,
            count: 0,
        };
        let Some((control, subjects)) = self.usage.get_key_value(control) else {
            return (Arc::from(control), Arc::from(subject), empty);
        };
        let Some((subject, usage)) = subjects.get_key_value(subject) else {
            return (Arc::clone(control), Arc::from(subject), empty);
        };
        let usage = if usage.window_start_ms == start_ms {
            *usage
        } else {
            empty
        };
        (Arc::clone(control), Arc::clone(subject), usage)
    }

    /// True when putting `object` would change nothing: loading the same file twice then
    /// writes no journal entries the second time.
    pub fn already_holds(&self, object: &ProgramObject) -> bool {
        match object {
            ProgramObject::Program(program) => self.program == *program,
            ProgramObject::Holder(holder) => self.holders.get(&holder.token) == Some(holder),
            ProgramObject::Account {
                token,
                currency,
                credit_line_minor,
            } => self.accounts.get(token).is_some_and(|account| {
                account.currency == *currency && account.credit_line_minor == *credit_line_minor
            }),
            ProgramObject::Card(card) => self.cards.get(&card.token) == Some(card),
            ProgramObject::CardProduct(product) => {
                self.card_products.get(&product.token) == Some(product)
            }
            ProgramObject::MccGroup(group) => self.mcc_groups.get(&group.token) == Some(group),
            ProgramObject::VelocityControl(control) => {
                self.velocity_controls.get(&control.token) == Some(control)
            }
            ProgramObject::AuthControl(control) => {
                self.auth_controls.get(&control.token) == Some(control)
            }
            ProgramObject::ExemptMid(exempt) => self.exempt_mids.get(&exempt.token) == Some(exempt),
        }
    }

    fn put(&mut self, object: &ProgramObject) {
        match object {
            ProgramObject::Program(program) => self.program = program.clone(),
            ProgramObject::Holder(holder) => {
                self.holders.insert(holder.token.clone(), holder.clone());
            }
            ProgramObject::Account {
                token,
                currency,
                credit_line_minor,
            } => {
                let account = self
                    .accounts
                    .entry(token.clone())
                    .or_insert_with(|| Account {
                        token: token.clone(),
                        currency: currency.clone(),
                        posted_minor: 0,
                        held_minor: 0,
                        credit_line_minor: 0,
                    });
                account.credit_line_minor = *credit_line_minor;
            }
            ProgramObject::Card(card) => {
                self.cards.insert(card.token.clone(), card.clone());
            }
            ProgramObject::CardProduct(product) => {
                self.card_products
                    .insert(product.token.clone(), product.clone());
            }
            ProgramObject::MccGroup(group) => {
                self.mcc_groups.insert(group.token.clone(), group.clone());
            }
            ProgramObject::VelocityControl(control) => {
                self.velocity_controls
                    .insert(control.token.clone(), control.clone());
            }
            ProgramObject::AuthControl(control) => {
                self.auth_controls
                    .insert(control.token.clone(), control.clone());
            }
            ProgramObject::ExemptMid(exempt) => {
                self.exempt_mids
                    .insert(exempt.token.clone(), exempt.clone());
            }
        }
    }
}
