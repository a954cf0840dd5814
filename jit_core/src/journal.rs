//! Journal entries: what the engine changed, in a form that rebuilds it (docs/journal.md).
//!
//! An entry carries read-model fields for projections and an `effects` list that only the
//! engine reads. `Engine::decide` computes effects, applies them through the same code as
//! `Engine::apply`, and returns the entry: so a journal replay cannot drift from the live
//! engine.

use std::sync::Arc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::controls::{AuthControl, ExemptMid, VelocityControl};
use crate::model::{Card, CardProduct, Hold, Holder, MccGroup, Program};

/// Format version written in every entry.
pub const VERSION: u8 = 1;

/// The four kinds of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// An answer to a JIT message.
    Decision,
    /// The undoing of a decision whose entry could not be made durable.
    Void,
    /// A program object upserted by `load`.
    Program,
    /// Holds released by `expire_holds`.
    Expiry,
}

impl EntryKind {
    /// The kind as written in `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Decision => "decision",
            EntryKind::Void => "void",
            EntryKind::Program => "program",
            EntryKind::Expiry => "expiry",
        }
    }
}

/// A recorded answer: what a replay of the token returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The JIT token.
    pub token: String,
    /// Method, amount, card and chain, joined: a replay must match it.
    pub fingerprint: String,
    /// `jit_funding.method`.
    pub method: String,
    /// Seq of the decision entry.
    pub decision_seq: u64,
    /// 200 or 402.
    pub status: u16,
    /// The exact response body. An answer effect in an entry leaves it out (the entry's
    /// `response` carries it), so it may be missing there.
    #[serde(default)]
    pub body: String,
    /// The processor's decline reason, on a decline.
    pub decline_reason: Option<String>,
    /// The rule that declined.
    pub rule_id: Option<String>,
    /// The rule's name.
    pub rule_name: Option<String>,
    /// True once `void` turned the answer into a decline.
    pub voided: bool,
}

/// A program object, as `load` upserts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", content = "value", rename_all = "snake_case")]
pub enum ProgramObject {
    /// The program's own settings.
    Program(Program),
    /// A user or business.
    Holder(Holder),
    /// An account: created empty when new; its credit line is set.
    Account {
        /// Account token.
        token: String,
        /// ISO 4217 alpha code.
        currency: String,
        /// Credit line, minor units.
        credit_line_minor: i64,
    },
    /// A card.
    Card(Card),
    /// A card product.
    CardProduct(CardProduct),
    /// An MCC group.
    MccGroup(MccGroup),
    /// A velocity control.
    VelocityControl(VelocityControl),
    /// An authorization control.
    AuthControl(AuthControl),
    /// A merchant exemption.
    ExemptMid(ExemptMid),
}

/// One state change. Holds, answers and counter tokens are shared (`Arc`) between the entry,
/// the state and the record a `void` undoes, so one decision copies none of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Effect {
    /// Add `delta_minor` to an account's posted balance.
    Posted {
        /// Account token.
        account: String,
        /// Signed change.
        delta_minor: i64,
    },
    /// Replace a hold (None: absent); the account's held total follows the open amounts.
    Hold {
        /// The hold before, None when it is new.
        before: Option<Arc<Hold>>,
        /// The hold after, None when it is removed.
        after: Option<Arc<Hold>>,
    },
    /// Add to a velocity counter of the window starting at `window_start_ms`.
    Usage {
        /// Velocity control token.
        control: Arc<str>,
        /// Card or holder token.
        subject: Arc<str>,
        /// Window start, ms.
        window_start_ms: i64,
        /// Signed amount change, minor units.
        amount_minor: i64,
        /// Signed count change.
        count: i64,
    },
    /// Record the answer for a token.
    #[serde(serialize_with = "answer_without_body")]
    Answer(Arc<Answer>),
    /// Upsert a program object.
    Put(ProgramObject),
    /// Mark a GPA order token as applied, with what it funded, so that the same token sent
    /// again for another account or amount can be told apart from a harmless repeat.
    GpaOrder {
        /// GPA order token.
        token: String,
        /// The account funded (empty in entries written before it was recorded).
        #[serde(default)]
        account: String,
        /// The amount funded, minor units.
        #[serde(default)]
        amount_minor: i64,
    },
}

impl Effect {
    /// The effect that undoes this one, for `void`; None for effects a void leaves alone.
    pub fn inverse(&self) -> Option<Effect> {
        match self {
            Effect::Posted {
                account,
                delta_minor,
            } => Some(Effect::Posted {
                account: account.clone(),
                delta_minor: -delta_minor,
            }),
            Effect::Hold { before, after } => Some(Effect::Hold {
                before: after.clone(),
                after: before.clone(),
            }),
            Effect::Usage {
                control,
                subject,
                window_start_ms,
                amount_minor,
                count,
            } => Some(Effect::Usage {
                control: control.clone(),
                subject: subject.clone(),
                window_start_ms: *window_start_ms,
                amount_minor: -amount_minor,
                count: -count,
            }),
            Effect::Answer(_) | Effect::Put(_) | Effect::GpaOrder { .. } => None,
        }
    }
}

/// The answer effect as an entry writes it: without the body, which the entry's
/// `response` already carries once.
#[derive(Serialize)]
struct AnswerWithoutBody<'a> {
    token: &'a str,
    fingerprint: &'a str,
    method: &'a str,
    decision_seq: u64,
    status: u16,
    decline_reason: Option<&'a str>,
    rule_id: Option<&'a str>,
    rule_name: Option<&'a str>,
    voided: bool,
}

fn answer_without_body<S: Serializer>(answer: &Arc<Answer>, out: S) -> Result<S::Ok, S::Error> {
    AnswerWithoutBody {
        token: &answer.token,
        fingerprint: &answer.fingerprint,
        method: &answer.method,
        decision_seq: answer.decision_seq,
        status: answer.status,
        decline_reason: answer.decline_reason.as_deref(),
        rule_id: answer.rule_id.as_deref(),
        rule_name: answer.rule_name.as_deref(),
        voided: answer.voided,
    }
    .serialize(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpKey {
    Op,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Posted,
    Hold,
    Usage,
    Answer,
    Put,
    GpaOrder,
}

#[derive(Deserialize)]
struct PostedFields {
    account: String,
    delta_minor: i64,
}

#[derive(Deserialize)]
struct HoldFields {
    before: Option<Hold>,
    after: Option<Hold>,
}

#[derive(Deserialize)]
struct UsageFields {
    #[serde(deserialize_with = "shared_str")]
    control: Arc<str>,
    #[serde(deserialize_with = "shared_str")]
    subject: Arc<str>,
    window_start_ms: i64,
    amount_minor: i64,
    count: i64,
}

#[derive(Deserialize)]
struct GpaOrderFields {
    token: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    amount_minor: i64,
}

struct SharedStrVisitor;

impl Visitor<'_> for SharedStrVisitor {
    type Value = Arc<str>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(text))
    }
}

/// Reads a shared string with one allocation; serde's own `Arc<str>` reader builds a
/// `String`, shrinks it to a `Box<str>` and copies that into the `Arc`.
pub(crate) fn shared_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    deserializer.deserialize_str(SharedStrVisitor)
}

/// Reads an effect in one pass. Entries always write `op` first, so the variant is known
/// before its fields and nothing is buffered (serde's derived reader for internally
/// tagged enums copies every effect into an intermediate tree first).
struct EffectVisitor;

impl<'de> Visitor<'de> for EffectVisitor {
    type Value = Effect;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an effect object whose first key is \"op\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Effect, A::Error> {
        let Some(OpKey::Op) = map.next_key::<OpKey>()? else {
            return Err(serde::de::Error::missing_field("op"));
        };
        let op: Op = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(match op {
            Op::Posted => {
                let fields = PostedFields::deserialize(rest)?;
                Effect::Posted {
                    account: fields.account,
                    delta_minor: fields.delta_minor,
                }
            }
            Op::Hold => {
                let fields = HoldFields::deserialize(rest)?;
                Effect::Hold {
                    before: fields.before.map(Arc::new),
                    after: fields.after.map(Arc::new),
                }
            }
            Op::Usage => {
                let fields = UsageFields::deserialize(rest)?;
                Effect::Usage {
                    control: fields.control,
                    subject: fields.subject,
                    window_start_ms: fields.window_start_ms,
                    amount_minor: fields.amount_minor,
                    count: fields.count,
                }
            }
            Op::Answer => Effect::Answer(Arc::new(Answer::deserialize(rest)?)),
            Op::Put => Effect::Put(ProgramObject::deserialize(rest)?),
            Op::GpaOrder => {
                let fields = GpaOrderFields::deserialize(rest)?;
                Effect::GpaOrder {
                    token: fields.token,
                    account: fields.account,
                    amount_minor: fields.amount_minor,
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Effect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Effect, D::Error> {
        deserializer.deserialize_map(EffectVisitor)
    }
}

/// `decline` in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclineView {
    /// Processor decline reason.
    pub reason: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule name.
    pub rule_name: String,
    /// The limit that was hit, minor units or a count.
    pub limit_minor: Option<i64>,
    /// What was used of it before this message.
    pub used_minor: Option<i64>,
    /// What this message asked for.
    pub requested_minor: i64,
}

/// `balance` in an entry: the account after the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    /// Posted balance.
    pub posted_minor: i64,
    /// Held total.
    pub held_minor: i64,
    /// Credit line.
    pub credit_line_minor: i64,
}

/// `hold` in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// Chain token.
    pub token: String,
    /// Amount still held.
    pub amount_minor: i64,
    /// OPEN, CLEARED, REVERSED or EXPIRED.
    pub state: crate::model::HoldState,
    /// Expiry, ms.
    pub expires_at_ms: i64,
}

/// `merchant` in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantView {
    /// Merchant id.
    pub mid: Option<String>,
    /// MCC as four digits.
    pub mcc: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
}

/// One hold released by an expiry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredHold {
    /// Chain token.
    pub token: String,
    /// Account.
    pub account: String,
    /// Amount released.
    pub amount_minor: i64,
}

/// Per-account change in an expiry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDelta {
    /// Account.
    pub account: String,
    /// Change to the held total.
    pub held_delta_minor: i64,
    /// The account after the entry.
    pub balance: BalanceView,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Format version.
    pub v: u8,
    /// Journal position.
    pub seq: u64,
    /// Entry kind.
    pub kind: EntryKind,
    /// Time the engine used, ms.
    pub at_ms: i64,
    /// JIT token, program object token, or `expiry:<seq>`.
    pub token: String,
    /// `jit_funding.method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Card token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// Account holder token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// ISO 4217 alpha code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Amount decided on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// 200 or 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// True on approval or acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// The decline with its rule and numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<DeclineView>,
    /// Change to `account`'s posted balance.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub posted_delta_minor: i64,
    /// Change to `account`'s held total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_delta_minor: i64,
    /// `account` after the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<BalanceView>,
    /// The hold touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldView>,
    /// The merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<MerchantView>,
    /// An informative message took the account below zero.
    #[serde(default, skip_serializing_if = "is_false")]
    pub overdraft: bool,
    /// Why the entry needs review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    /// The exact response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// For a void: the seq undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voids: Option<u64>,
    /// For an expiry: the holds released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<ExpiredHold>,
    /// For an expiry: per-account changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountDelta>,
    /// For a program entry: the object kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The state changes, in order.
    pub effects: Vec<Effect>,
}

impl Entry {
    /// An entry with only the common fields set.
    pub fn new(seq: u64, kind: EntryKind, at_ms: i64, token: String) -> Entry {
        Entry {
            v: VERSION,
            seq,
            kind,
            at_ms,
            token,
            method: None,
            card: None,
            holder: None,
            account: None,
            currency: None,
            amount_minor: None,
            status: None,
            approved: None,
            decline: None,
            posted_delta_minor: 0,
            held_delta_minor: 0,
            balance: None,
            hold: None,
            merchant: None,
            overdraft: false,
            flagged: None,
            response: None,
            voids: None,
            holds: vec![],
            accounts: vec![],
            object: None,
            effects: vec![],
        }
    }

    /// The entry as UTF-8 JSON, the `data` the caller journals.
    pub fn to_json(&self) -> Vec<u8> {
        // A decision entry is 1.5 to 2 KB: sized once, the buffer never grows.
        let mut data = Vec::with_capacity(2048);
        match serde_json::to_writer(&mut data, self) {
            Ok(()) => data,
            Err(_) => Vec::new(),
        }
    }

    /// Reads an entry written by `to_json`.
    pub fn from_json(data: &[u8]) -> Result<Entry, crate::EngineError> {
        let mut entry: Entry = serde_json::from_slice(data).map_err(bad_entry)?;
        check_version(entry.v)?;
        restore_answer_body(&mut entry.effects, entry.response.as_deref())?;
        Ok(entry)
    }
}

fn bad_entry(error: serde_json::Error) -> crate::EngineError {
    crate::EngineError::journal("data", format!("bad entry: {error}"))
}

fn check_version(v: u8) -> Result<(), crate::EngineError> {
    if v == VERSION {
        return Ok(());
    }
    let message = format!("entry version {v} is not {VERSION}");
    Err(crate::EngineError::journal("v", message))
}

/// Puts the entry's `response` back into its answer effect, which is written without it.
fn restore_answer_body(
    effects: &mut [Effect],
    response: Option<&str>,
) -> Result<(), crate::EngineError> {
    for effect in effects {
        let Effect::Answer(answer) = effect else {
            continue;
        };
        if !answer.body.is_empty() {
            continue;
        }
        let Some(response) = response else {
            let message = "an answer effect needs the entry's response";
            return Err(crate::EngineError::journal("response", message));
        };
        Arc::make_mut(answer).body = response.to_owned();
    }
    Ok(())
}

/// The part of an entry that `Engine::apply` reads; the read-model fields are skipped
/// unparsed.
#[derive(Deserialize)]
pub(crate) struct Replayed<'a> {
    v: u8,
    pub seq: u64,
    pub kind: EntryKind,
    #[serde(borrow)]
    pub token: std::borrow::Cow<'a, str>,
    #[serde(default)]
    pub voids: Option<u64>,
    #[serde(borrow, default)]
    response: Option<std::borrow::Cow<'a, str>>,
    pub effects: Vec<Effect>,
}

impl<'a> Replayed<'a> {
    /// Reads the replayed part of an entry written by `to_json`.
    pub fn from_json(data: &'a [u8]) -> Result<Replayed<'a>, crate::EngineError> {
        // One UTF-8 check of the whole entry is cheaper than serde_json's check of each
        // string read from a byte slice (13% of replay instructions under callgrind).
        let text = std::str::from_utf8(data)
            .map_err(|error| crate::EngineError::journal("data", format!("bad entry: {error}")))?;
        let mut entry: Replayed<'a> = serde_json::from_str(text).map_err(bad_entry)?;
        check_version(entry.v)?;
        restore_answer_body(&mut entry.effects, entry.response.as_deref())?;
        Ok(entry)
    }
}
