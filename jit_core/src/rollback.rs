//! Taking back a program file that turned out to have problems.
//!
//! A file is applied to the live state entry by entry, so later objects can name earlier
//! ones; before each effect, the value it replaces is kept, and a file with any problem is
//! undone newest first. Loading therefore costs what the file touches: copying every
//! definition to load into a scratch state cost ~110 ms per file at 60,000 cards, paid by
//! every answer waiting behind a one-control edit.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};

use crate::controls::{AuthControl, ExemptMid, VelocityControl};
use crate::journal::{Effect, ProgramObject};
use crate::model::{Account, Card, CardProduct, Holder, MccGroup, Program};
use crate::state::State;

/// One value a program entry replaced; None when the key was absent.
#[derive(Debug)]
enum Replaced {
    Program(Program),
    Holder(String, Option<Holder>),
    Account(String, Option<Account>),
    Card(String, Option<Card>),
    CardProduct(String, Option<CardProduct>),
    MccGroup(String, Option<MccGroup>),
    VelocityControl(String, Option<VelocityControl>),
    AuthControl(String, Option<AuthControl>),
    ExemptMid(String, Option<ExemptMid>),
    GpaOrder(String, Option<(String, i64)>),
}

/// The values a file's entries replaced, oldest first, and the seq before the file.
#[derive(Debug)]
pub(crate) struct Rollback {
    last_seq: u64,
    replaced: Vec<Replaced>,
}

impl Rollback {
    pub(crate) fn new(state: &State) -> Rollback {
        Rollback {
            last_seq: state.last_seq,
            replaced: Vec::new(),
        }
    }

    /// Keeps what `effect` is about to replace in `state`.
    pub(crate) fn keep(&mut self, state: &State, effect: &Effect) {
        let replaced = match effect {
            Effect::Posted { account, .. } => {
                Replaced::Account(account.clone(), state.accounts.get(account).cloned())
            }
            Effect::GpaOrder { token, .. } => {
                Replaced::GpaOrder(token.clone(), state.gpa_orders.get(token).cloned())
            }
            Effect::Put(object) => replaced_by(state, object),
            Effect::Hold { .. } | Effect::Usage { .. } | Effect::Answer(_) => {
                panic!("a program file never touches holds, usage or answers")
            }
        };
        self.replaced.push(replaced);
    }

    /// Puts back every value kept, newest first, and the seq.
    pub(crate) fn undo(self, state: &mut State) {
        for replaced in self.replaced.into_iter().rev() {
            put_back(state, replaced);
        }
        state.last_seq = self.last_seq;
    }
}

fn replaced_by(state: &State, object: &ProgramObject) -> Replaced {
    match object {
        ProgramObject::Program(_) => Replaced::Program(state.program.clone()),
        ProgramObject::Holder(holder) => Replaced::Holder(
            holder.token.clone(),
            state.holders.get(&holder.token).cloned(),
        ),
        ProgramObject::Account { token, .. } => {
            Replaced::Account(token.clone(), state.accounts.get(token).cloned())
        }
        ProgramObject::Card(card) => {
            Replaced::Card(card.token.clone(), state.cards.get(&card.token).cloned())
        }
        ProgramObject::CardProduct(product) => Replaced::CardProduct(
            product.token.clone(),
            state.card_products.get(&product.token).cloned(),
        ),
        ProgramObject::MccGroup(group) => Replaced::MccGroup(
            group.token.clone(),
            state.mcc_groups.get(&group.token).cloned(),
        ),
        ProgramObject::VelocityControl(control) => Replaced::VelocityControl(
            control.token.clone(),
            state.velocity_controls.get(&control.token).cloned(),
        ),
        ProgramObject::AuthControl(control) => Replaced::AuthControl(
            control.token.clone(),
            state.auth_controls.get(&control.token).cloned(),
        ),
        ProgramObject::ExemptMid(exempt) => Replaced::ExemptMid(
            exempt.token.clone(),
            state.exempt_mids.get(&exempt.token).cloned(),
        ),
    }
}

fn put_back(state: &mut State, replaced: Replaced) {
    match replaced {
        Replaced::Program(program) => state.program = program,
        Replaced::Holder(token, was) => put_back_hashed(&mut state.holders, token, was),
        Replaced::Account(token, was) => put_back_hashed(&mut state.accounts, token, was),
        Replaced::Card(token, was) => put_back_hashed(&mut state.cards, token, was),
        Replaced::CardProduct(token, was) => {
            put_back_hashed(&mut state.card_products, token, was);
        }
        Replaced::MccGroup(token, was) => put_back_ordered(&mut state.mcc_groups, token, was),
        Replaced::VelocityControl(token, was) => {
            put_back_ordered(&mut state.velocity_controls, token, was);
        }
        Replaced::AuthControl(token, was) => {
            put_back_ordered(&mut state.auth_controls, token, was);
        }
        Replaced::ExemptMid(token, was) => put_back_ordered(&mut state.exempt_mids, token, was),
        Replaced::GpaOrder(token, was) => put_back_hashed(&mut state.gpa_orders, token, was),
    }
}

fn put_back_hashed<K: Eq + Hash, V, S: BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
    key: K,
    was: Option<V>,
) {
    match was {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}

fn put_back_ordered<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, was: Option<V>) {
    match was {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}
