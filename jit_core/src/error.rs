//! Input the engine refuses. A decline is not an error: it is an `Outcome`.

use std::fmt;

/// Which kind of refusal, mapped one to one onto the Python exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A JIT message that cannot be decided (HTTP 400).
    Message,
    /// A token seen before with a different method, amount, card or chain (HTTP 409).
    TokenConflict,
    /// A program file with at least one bad object.
    Program,
    /// A journal entry or snapshot that does not fit the engine's state.
    Journal,
    /// `void` for a token the engine never decided.
    UnknownToken,
}

/// A refused input. `field` is the dotted path of the offending field; `message` never
/// holds a card number or a personal identifier, only tokens, amounts and codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// The kind of refusal.
    pub kind: ErrorKind,
    /// Dotted path of the offending field, such as `gpa_order.jit_funding.amount`.
    pub field: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Every problem found, as (path, message); only for `ErrorKind::Program`.
    pub problems: Vec<(String, String)>,
}

impl EngineError {
    /// An error of `kind` about `field`.
    pub fn new(kind: ErrorKind, field: &str, message: impl Into<String>) -> EngineError {
        EngineError {
            kind,
            field: field.to_owned(),
            message: message.into(),
            problems: vec![],
        }
    }

    /// A `MessageError` about `field`.
    pub fn message(field: &str, message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Message, field, message)
    }

    /// A `JournalError` about `field`.
    pub fn journal(field: &str, message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Journal, field, message)
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for EngineError {}

/// A JSON value's own text for an error message: a string keeps its one pair of quotes and
/// a number shows none, as the sender wrote them.
pub fn as_sent(raw_json: &str) -> String {
    shortened(raw_json)
}

/// A value quoted and escaped for an error message.
pub fn quoted(value: &str) -> String {
    format!("{:?}", shortened(value))
}

/// Cut at 40 characters, so a long or hostile input cannot flood a log.
fn shortened(value: &str) -> String {
    let mut shown: String = value.chars().take(40).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    shown
}
