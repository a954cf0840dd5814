//! The engine: one program's state, deciding one message at a time.
//!
//! Every public method that changes state computes `Effect`s from the current state, wraps
//! them in an `Entry`, and applies the entry through `Engine::apply_effects`, the same path
//! `Engine::apply` uses for recovery. Nothing here reads a clock, logs, or does I/O.

use std::sync::Arc;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, ErrorKind};
use crate::journal::{Answer, BalanceView, Effect, Entry, EntryKind, MerchantView, Replayed};
use crate::lifecycle::{classify, Flow};
use crate::message::{self, Message};
use crate::model::{Account, HoldState};
use crate::response::{self, Balances, Response};
use crate::state::{Record, State};
use crate::{currency, plan::Plan};

/// The answer to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 200 approve or accept, 402 decline.
    pub status: u16,
    /// The response body.
    pub body: String,
    /// `jit_funding.token`.
    pub token: String,
    /// `jit_funding.method`.
    pub method: String,
    /// True on 200.
    pub approved: bool,
    /// The processor's decline reason.
    pub decline_reason: Option<String>,
    /// The rule that declined.
    pub rule_id: Option<String>,
    /// The rule's name.
    pub rule_name: Option<String>,
    /// True when the token was answered before.
    pub replayed: bool,
    /// What to journal; None when nothing changed.
    pub entry: Option<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    v: u8,
    max_amount_minor: i64,
    state: State,
}

/// The decision engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) state: State,
    max_amount_minor: i64,
    pub(crate) zone: Tz,
    pub(crate) exponent: u8,
}

/// What applying needs of an entry, whether built here or read back from the journal.
struct Applied<'e> {
    seq: u64,
    kind: EntryKind,
    token: &'e str,
    voids: Option<u64>,
    effects: &'e [Effect],
}

impl<'e> Applied<'e> {
    fn of(entry: &'e Entry) -> Applied<'e> {
        Applied {
            seq: entry.seq,
            kind: entry.kind,
            token: &entry.token,
            voids: entry.voids,
            effects: &entry.effects,
        }
    }
}

/// What `decide` knows about the message before it plans.
pub(crate) struct Decided<'m> {
    pub message: Message<'m>,
    pub flow: Flow,
    pub amount_minor: i64,
    pub at_ms: i64,
    pub fingerprint: String,
}

impl Engine {
    /// An empty engine that refuses amounts above `max_amount_minor`.
    pub fn new(max_amount_minor: i64) -> Engine {
        let mut engine = Engine {
            state: State::default(),
            max_amount_minor,
            zone: Tz::UTC,
            exponent: 2,
        };
        engine.refresh_program();
        engine
    }

    /// Follows the program's time zone and currency after an entry or a rollback changed it.
    pub(crate) fn refresh_program(&mut self) {
        self.zone = self.state.program.time_zone.parse().unwrap_or(Tz::UTC);
        let found = currency::by_alpha(&self.state.program.currency);
        self.exponent = found.map_or(2, |currency| currency.exponent);
    }

    /// The seq of the last entry made or applied.
    pub fn last_seq(&self) -> u64 {
        self.state.last_seq
    }

    /// The whole state, read-only.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The largest amount a message may carry before it is malformed rather than declined;
    /// the program's own `max_amount` is a decline (see `decision::check`).
    pub fn max_amount_minor(&self) -> i64 {
        self.max_amount_minor
    }

    /// Decides one JIT message.
    pub fn decide(&mut self, body: &[u8], now_ms: i64) -> Result<Outcome, EngineError> {
        let message = message::parse(body)?;
        self.decide_message(message, now_ms)
    }

    /// Decides a message already parsed by `message::parse` (for benchmarks that time the
    /// decision apart from parsing).
    pub fn decide_message(
        &mut self,
        message: Message<'_>,
        now_ms: i64,
    ) -> Result<Outcome, EngineError> {
        let flow = classify(&message.method);
        let amount_minor = match (flow, message.amount_raw) {
            (Flow::BalanceInquiry, None) => 0,
            _ => message
                .amount(self.exponent, self.max_amount_minor())?
                .minor(),
        };
        // A clone of the Cow borrows the body, not the message, and copies no text.
        let card_token = match &message.card_token {
            Some(token) if !token.is_empty() => token.clone(),
            _ => return Err(EngineError::message("card_token", "card_token is missing")),
        };

        let fingerprint = fingerprint(&message, amount_minor, &card_token);
        if let Some(record) = self.state.answers.get(message.token.as_ref()) {
            return replay(record, &fingerprint);
        }

        let at_ms = message.created_ms.unwrap_or(now_ms);
        let decided = Decided {
            message,
            flow,
            amount_minor,
            at_ms,
            fingerprint,
        };
        let plan = match self.state.cards.get(card_token.as_ref()) {
            Some(card) => self.plan(&decided, card),
            None if flow.is_decided() => return Ok(self.invalid_card(&decided)),
            None => Plan::flagged("unknown card"),
        };
        Ok(self.commit_decision(&decided, &card_token, plan))
    }

    fn invalid_card(&self, decided: &Decided<'_>) -> Outcome {
        let message = &decided.message;
        let reason = "INVALID_CARD";
        let body = response::write(&Response {
            memo: Some("INVALID_CARD by card (unknown card)"),
            decline_reason: Some(reason),
            ..self.response(decided, "")
        });
        Outcome {
            status: 402,
            body,
            token: message.token.to_string(),
            method: message.method.to_string(),
            approved: false,
            decline_reason: Some(reason.to_owned()),
            rule_id: Some("card".to_owned()),
            rule_name: Some("unknown card".to_owned()),
            replayed: false,
            entry: None,
        }
    }

    fn response<'a>(&self, decided: &'a Decided<'_>, holder: &'a str) -> Response<'a> {
        let message = &decided.message;
        Response {
            token: &message.token,
            method: &message.method,
            user_token: message.user_token.as_deref().unwrap_or(holder),
            acting_user_token: message.acting_user_token.as_deref(),
            business_token: message.business_token.as_deref(),
            amount_minor: decided.amount_minor,
            exponent: self.exponent,
            original_token: message.original_token.as_deref(),
            memo: None,
            decline_reason: None,
            balances: None,
        }
    }

    fn commit_decision(&mut self, decided: &Decided<'_>, card: &str, plan: Plan) -> Outcome {
        let seq = self.state.last_seq + 1;
        let message = &decided.message;
        let memo = plan
            .decline
            .as_ref()
            .map(|d| response::decline_memo(d, self.exponent));
        let balances = plan
            .balances
            .then(|| self.balances(plan.account.as_deref()))
            .flatten();
        let holder = plan.holder.clone().unwrap_or_default();
        let body = response::write(&Response {
            memo: memo.as_deref(),
            decline_reason: plan.decline.as_ref().map(|d| d.reason),
            balances: balances
                .as_ref()
                .map(|(currency, available, ledger)| Balances {
                    currency,
                    available_minor: *available,
                    ledger_minor: *ledger,
                }),
            ..self.response(decided, &holder)
        });

        let answer = Answer {
            token: message.token.to_string(),
            fingerprint: decided.fingerprint.clone(),
            method: message.method.to_string(),
            decision_seq: seq,
            status: if plan.decline.is_none() { 200 } else { 402 },
            body,
            decline_reason: plan.decline.as_ref().map(|d| d.reason.to_owned()),
            rule_id: plan.decline.as_ref().map(|d| d.rule_id.clone()),
            rule_name: plan.decline.as_ref().map(|d| d.rule_name.clone()),
            voided: false,
        };
        let answer = Arc::new(answer);
        let mut entry = Entry::new(
            seq,
            EntryKind::Decision,
            decided.at_ms,
            answer.token.clone(),
        );
        self.describe(&mut entry, decided, card, &plan);
        entry.response = Some(answer.body.clone());
        entry.effects = plan.effects;
        entry.effects.push(Effect::Answer(answer.clone()));

        self.apply_effects(&Applied::of(&entry));

        self.describe_after(&mut entry, decided.flow);
        outcome(&answer, false, Some(entry))
    }

    fn balances(&self, account: Option<&str>) -> Option<(String, i64, i64)> {
        let account = self.state.accounts.get(account?)?;
        Some((
            account.currency.clone(),
            account.available_minor(),
            account.posted_minor,
        ))
    }

    fn describe(&self, entry: &mut Entry, decided: &Decided<'_>, card: &str, plan: &Plan) {
        let merchant = &decided.message.merchant;
        entry.method = Some(decided.message.method.to_string());
        entry.card = Some(card.to_owned());
        entry.holder.clone_from(&plan.holder);
        entry.account.clone_from(&plan.account);
        entry.currency = Some(self.state.program.currency.clone());
        entry.amount_minor = Some(decided.amount_minor);
        entry.status = Some(if plan.decline.is_none() { 200 } else { 402 });
        entry.approved = Some(plan.decline.is_none());
        entry.decline = plan
            .decline
            .as_ref()
            .map(|decline| crate::journal::DeclineView {
                reason: decline.reason.to_owned(),
                rule_id: decline.rule_id.clone(),
                rule_name: decline.rule_name.clone(),
                limit_minor: decline.limit,
                used_minor: decline.used,
                requested_minor: decline.requested,
            });
        entry.flagged = plan.flagged.map(str::to_owned);
        entry.merchant = Some(MerchantView {
            mid: merchant.mid.as_deref().map(str::to_owned),
            mcc: merchant.mcc.map(|mcc| {
                let mut text = String::with_capacity(4);
                crate::money::push_digits(&mut text, u64::from(mcc), 4);
                text
            }),
            name: merchant.name.as_deref().map(str::to_owned),
            city: merchant.city.as_deref().map(str::to_owned),
            country: merchant.country.as_deref().map(str::to_owned),
        });
    }

    /// Fills the fields that depend on the state after the entry: deltas, balance, hold.
    fn describe_after(&self, entry: &mut Entry, flow: Flow) {
        let (posted, held) = deltas(&entry.effects);
        entry.posted_delta_minor = posted;
        entry.held_delta_minor = held;
        let account = entry
            .account
            .as_deref()
            .and_then(|token| self.state.accounts.get(token));
        entry.balance = account.map(balance_view);
        entry.hold = entry.effects.iter().find_map(|effect| match effect {
            Effect::Hold {
                after: Some(hold), ..
            } => Some(crate::journal::HoldView {
                token: hold.token.clone(),
                amount_minor: hold.amount_minor,
                state: hold.state,
                expires_at_ms: hold.expires_at_ms,
            }),
            _ => None,
        });
        let moved_down = posted < 0 || held > 0;
        let below_zero = account.is_some_and(|account| account.available_minor() < 0);
        entry.overdraft = !flow.is_decided() && moved_down && below_zero;
    }

    /// Applies an entry's effects; a void whose decision is not in the state only records
    /// its answer.
    fn apply_effects(&mut self, entry: &Applied<'_>) {
        let target_present = self.void_target_present(entry);
        let mut for_void: Option<Vec<Effect>> = Some(if entry.kind == EntryKind::Decision {
            let undoable = entry
                .effects
                .iter()
                .filter(|e| !matches!(e, Effect::Answer(_)));
            undoable.cloned().collect()
        } else {
            Vec::new()
        });
        for effect in entry.effects {
            if target_present || matches!(effect, Effect::Answer(_)) {
                self.state.apply_effect(effect, &mut for_void);
            }
        }
        self.state.last_seq = entry.seq;
        if entry.kind == EntryKind::Program {
            self.refresh_program();
        }
    }

    fn void_target_present(&self, entry: &Applied<'_>) -> bool {
        if entry.kind != EntryKind::Void {
            return true;
        }
        let record = self.state.answers.get(entry.token);
        record.is_some_and(|record| {
            Some(record.answer.decision_seq) == entry.voids && !record.answer.voided
        })
    }

    /// Re-applies one committed entry (its JSON `data`).
    pub fn apply(&mut self, data: &[u8]) -> Result<(), EngineError> {
        let entry = Replayed::from_json(data)?;
        self.apply_checked(&Applied {
            seq: entry.seq,
            kind: entry.kind,
            token: &entry.token,
            voids: entry.voids,
            effects: &entry.effects,
        })
    }

    /// Re-applies one committed entry.
    pub fn apply_entry(&mut self, entry: &Entry) -> Result<(), EngineError> {
        self.apply_checked(&Applied::of(entry))
    }

    fn apply_checked(&mut self, entry: &Applied<'_>) -> Result<(), EngineError> {
        if entry.seq <= self.state.last_seq {
            let message = format!("seq {} is not after {}", entry.seq, self.state.last_seq);
            return Err(EngineError::journal("seq", message));
        }
        if self.void_target_present(entry) {
            for effect in entry.effects {
                self.state.check_effect(effect)?;
            }
        }
        self.apply_effects(entry);
        Ok(())
    }

    /// Undoes every effect of the decision for `token` and makes its answer a decline
    /// (TRANSACTION_NOT_PERMITTED, memo "not durable in time").
    pub fn void(&mut self, token: &str, now_ms: i64) -> Result<Outcome, EngineError> {
        let Some(record) = self.state.answers.get(token) else {
            let message = format!("token {} was never decided", crate::error::quoted(token));
            return Err(EngineError::new(ErrorKind::UnknownToken, "token", message));
        };
        if record.answer.voided {
            return Ok(outcome(&record.answer, true, None));
        }

        let seq = self.state.last_seq + 1;
        let undo = self.undo_effects(&record.effects);
        let answer = Answer {
            status: 402,
            body: void_body(&record.answer.body, self.exponent),
            decline_reason: Some("TRANSACTION_NOT_PERMITTED".to_owned()),
            rule_id: Some("journal".to_owned()),
            rule_name: Some("not durable in time".to_owned()),
            voided: true,
            ..Answer::clone(&record.answer)
        };
        let answer = Arc::new(answer);
        let mut entry = Entry::new(seq, EntryKind::Void, now_ms, token.to_owned());
        entry.voids = Some(record.answer.decision_seq);
        entry.method = Some(answer.method.clone());
        entry.status = Some(402);
        entry.approved = Some(false);
        entry.account = account_of(&undo);
        entry.response = Some(answer.body.clone());
        entry.effects = undo;
        entry.effects.push(Effect::Answer(answer.clone()));

        self.apply_effects(&Applied::of(&entry));

        self.describe_after(&mut entry, Flow::Refused);
        Ok(outcome(&answer, false, Some(entry)))
    }

    /// Takes back a void that was answered while the journal was unreachable and kept
    /// outside it (the gateway's spill file), as a new entry at the end of the journal: the
    /// processor was told "declined", so a re-sent token must get that answer again.
    ///
    /// Returns None when the journal already holds the void. When it holds the decision but
    /// not the void, the decision is voided now; when it holds neither, only the answer is
    /// recorded (a void whose decision is absent changes no balance).
    pub fn adopt_void(&mut self, data: &[u8]) -> Result<Option<Entry>, EngineError> {
        let spilled = Entry::from_json(data)?;
        if spilled.kind != EntryKind::Void {
            return Err(EngineError::journal(
                "kind",
                "only a void entry can be adopted",
            ));
        }
        match self.state.answers.get(&spilled.token) {
            Some(record) if record.answer.voided => return Ok(None),
            Some(_) => return Ok(self.void(&spilled.token, spilled.at_ms)?.entry),
            None => {}
        }
        let answer = spilled.effects.iter().find_map(|effect| match effect {
            Effect::Answer(answer) => Some(Arc::clone(answer)),
            _ => None,
        });
        let Some(answer) = answer else {
            return Err(EngineError::journal("effects", "a void carries its answer"));
        };
        let seq = self.state.last_seq + 1;
        let mut entry = Entry::new(seq, EntryKind::Void, spilled.at_ms, spilled.token);
        entry.method = spilled.method;
        entry.status = Some(402);
        entry.approved = Some(false);
        entry.response = Some(answer.body.clone());
        entry.effects = vec![Effect::Answer(answer)];
        self.apply_effects(&Applied::of(&entry));
        Ok(Some(entry))
    }

    /// The effects that undo `effects`. A hold changed since (expired, cleared, reversed)
    /// is not swapped back: only what the decision added to it is taken off, and a hold
    /// already resolved is left alone, so a void never releases money twice.
    fn undo_effects(&self, effects: &[Effect]) -> Vec<Effect> {
        let mut undo = Vec::with_capacity(effects.len());
        for effect in effects.iter().rev() {
            let Effect::Hold {
                before,
                after: Some(after),
            } = effect
            else {
                undo.extend(effect.inverse());
                continue;
            };
            let current = self.state.holds.get(&after.token);
            if current == Some(after) {
                undo.extend(effect.inverse());
                continue;
            }
            let Some(current) = current.filter(|hold| hold.state == HoldState::Open) else {
                continue;
            };
            let added = after.open_minor() - before.as_ref().map_or(0, |b| b.open_minor());
            let mut restored = crate::model::Hold::clone(current);
            restored.amount_minor = (current.amount_minor - added).max(0);
            if restored.amount_minor == 0 {
                restored.state = HoldState::Reversed;
            }
            undo.push(Effect::Hold {
                before: Some(Arc::clone(current)),
                after: Some(Arc::new(restored)),
            });
        }
        undo
    }

    /// Releases every open hold whose expiry is at or before `now_ms`, in one entry.
    pub fn expire_holds(&mut self, now_ms: i64) -> Vec<Entry> {
        let mut due: Vec<_> = self
            .state
            .holds
            .values()
            .filter(|hold| hold.state == HoldState::Open && hold.expires_at_ms <= now_ms)
            .cloned()
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        due.sort_by(|a, b| a.token.cmp(&b.token));

        let seq = self.state.last_seq + 1;
        let mut entry = Entry::new(seq, EntryKind::Expiry, now_ms, format!("expiry:{seq}"));
        for hold in due {
            entry.holds.push(crate::journal::ExpiredHold {
                token: hold.token.clone(),
                account: hold.account.clone(),
                amount_minor: hold.amount_minor,
            });
            let after = crate::model::Hold {
                amount_minor: 0,
                state: HoldState::Expired,
                ..crate::model::Hold::clone(&hold)
            };
            entry.effects.push(Effect::Hold {
                before: Some(hold),
                after: Some(Arc::new(after)),
            });
        }

        self.apply_effects(&Applied::of(&entry));

        entry.accounts = self.expiry_accounts(&entry);
        vec![entry]
    }

    fn expiry_accounts(&self, entry: &Entry) -> Vec<crate::journal::AccountDelta> {
        let mut totals = std::collections::BTreeMap::<&str, i64>::new();
        for hold in &entry.holds {
            *totals.entry(hold.account.as_str()).or_default() -= hold.amount_minor;
        }
        totals
            .into_iter()
            .filter_map(|(token, delta)| {
                let account = self.state.accounts.get(token)?;
                Some(crate::journal::AccountDelta {
                    account: token.to_owned(),
                    held_delta_minor: delta,
                    balance: balance_view(account),
                })
            })
            .collect()
    }

    /// Applies a program entry made by `load`.
    pub(crate) fn commit_program(&mut self, entry: &Entry) {
        self.apply_effects(&Applied::of(entry));
    }

    /// The whole state as bytes for `restore`.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotRef {
            v: 1,
            max_amount_minor: self.max_amount_minor,
            state: &self.state,
        };
        serde_json::to_vec(&snapshot).unwrap_or_default()
    }

    /// An engine equal to the one that produced `snapshot`.
    pub fn restore(snapshot: &[u8]) -> Result<Engine, EngineError> {
        let parsed: Snapshot = serde_json::from_slice(snapshot)
            .map_err(|error| EngineError::journal("snapshot", format!("bad snapshot: {error}")))?;
        if parsed.v != 1 {
            return Err(EngineError::journal(
                "snapshot.v",
                "unknown snapshot version",
            ));
        }
        let mut engine = Engine::new(parsed.max_amount_minor);
        engine.state = parsed.state;
        engine.refresh_program();
        Ok(engine)
    }

    /// One account.
    pub fn account(&self, token: &str) -> Option<&Account> {
        self.state.accounts.get(token)
    }

    /// Every account, ordered by token.
    pub fn accounts(&self) -> Vec<&Account> {
        let mut accounts: Vec<&Account> = self.state.accounts.values().collect();
        accounts.sort_by(|a, b| a.token.cmp(&b.token));
        accounts
    }

    /// Hex SHA-256 of the snapshot: equal for equal engines.
    pub fn state_digest(&self) -> String {
        let digest = Sha256::digest(self.snapshot());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    v: u8,
    max_amount_minor: i64,
    state: &'a State,
}

fn fingerprint(message: &Message<'_>, amount_minor: i64, card: &str) -> String {
    let chain = message.chain_token();
    let mut text = String::with_capacity(message.method.len() + card.len() + chain.len() + 24);
    text.push_str(&message.method);
    text.push('|');
    if amount_minor < 0 {
        text.push('-');
    }
    crate::money::push_digits(&mut text, amount_minor.unsigned_abs(), 1);
    text.push('|');
    text.push_str(card);
    text.push('|');
    text.push_str(chain);
    text
}

fn replay(record: &Record, fingerprint: &str) -> Result<Outcome, EngineError> {
    if record.answer.fingerprint != fingerprint {
        let message = "token was answered before for a different method, amount, card or chain";
        return Err(EngineError::new(
            ErrorKind::TokenConflict,
            "gpa_order.jit_funding.token",
            message,
        ));
    }
    Ok(outcome(&record.answer, true, None))
}

fn outcome(answer: &Answer, replayed: bool, entry: Option<Entry>) -> Outcome {
    Outcome {
        status: answer.status,
        body: answer.body.clone(),
        token: answer.token.clone(),
        method: answer.method.clone(),
        approved: answer.status == 200,
        decline_reason: answer.decline_reason.clone(),
        rule_id: answer.rule_id.clone(),
        rule_name: answer.rule_name.clone(),
        replayed,
        entry,
    }
}

fn balance_view(account: &Account) -> BalanceView {
    BalanceView {
        posted_minor: account.posted_minor,
        held_minor: account.held_minor,
        credit_line_minor: account.credit_line_minor,
    }
}

/// Posted and held deltas of a list of effects.
pub fn deltas(effects: &[Effect]) -> (i64, i64) {
    let mut posted = 0;
    let mut held = 0;
    for effect in effects {
        match effect {
            Effect::Posted { delta_minor, .. } => posted += delta_minor,
            Effect::Hold { before, after } => {
                held += after.as_ref().map_or(0, |h| h.open_minor())
                    - before.as_ref().map_or(0, |h| h.open_minor());
            }
            _ => {}
        }
    }
    (posted, held)
}

fn account_of(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|effect| match effect {
        Effect::Posted { account, .. } => Some(account.clone()),
        Effect::Hold { before, after } => after
            .as_ref()
            .or(before.as_ref())
            .map(|h| h.account.clone()),
        _ => None,
    })
}

#[derive(Deserialize)]
struct EchoBody {
    jit_funding: Echo,
}

#[derive(Deserialize)]
struct Echo {
    token: String,
    method: String,
    user_token: String,
    acting_user_token: Option<String>,
    business_token: Option<String>,
    amount: String,
    original_jit_funding_token: Option<String>,
}

/// The body of a voided decision: the same echo, declined.
fn void_body(original: &str, exponent: u8) -> String {
    let Ok(echo) = serde_json::from_str::<EchoBody>(original) else {
        debug_assert!(false, "a stored body always parses");
        return original.to_owned();
    };
    let echo = echo.jit_funding;
    let amount = crate::money::parse_decimal(&echo.amount, exponent, i64::MAX);
    response::write(&Response {
        token: &echo.token,
        method: &echo.method,
        user_token: &echo.user_token,
        acting_user_token: echo.acting_user_token.as_deref(),
        business_token: echo.business_token.as_deref(),
        amount_minor: amount.map_or(0, |money| money.minor()),
        exponent,
        original_token: echo.original_jit_funding_token.as_deref(),
        memo: Some("not durable in time"),
        decline_reason: Some("TRANSACTION_NOT_PERMITTED"),
        balances: None,
    })
}
