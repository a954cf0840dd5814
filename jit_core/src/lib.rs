//! `jit_core`: the pyjit decision engine.
//!
//! One `Engine` holds a program's account holders, accounts, cards, holds and spend
//! controls in memory and applies one JIT funding message at a time, returning the answer
//! and a journal `Entry` of everything it changed. It is pure: no I/O, no clock, no logging,
//! no randomness, so replaying the journal rebuilds the same state and the same answers.

pub mod controls;
pub mod currency;
pub mod decision;
pub mod engine;
pub mod error;
pub mod journal;
pub mod lifecycle;
pub mod message;
pub mod model;
pub mod money;
mod plan;
mod program;
pub mod query;
pub mod response;
mod rollback;
pub mod shards;
pub mod state;

pub use engine::{Engine, Outcome};
pub use error::{EngineError, ErrorKind};
pub use journal::Entry;
pub use money::Money;
pub use program::{LOAD_OBJECTS_MAX as PROGRAM_OBJECTS_MAX, ORDER as PROGRAM_COLLECTIONS};
