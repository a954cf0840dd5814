//! The program's objects: account holders, accounts, cards, card products, MCC groups, holds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The one program an engine serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// Program token.
    pub token: String,
    /// ISO 4217 alpha code of every account.
    pub currency: String,
    /// IANA time zone of the velocity windows.
    pub time_zone: String,
    /// Largest amount a message may carry, minor units.
    pub max_amount_minor: Option<i64>,
}

impl Default for Program {
    fn default() -> Program {
        Program {
            token: "program".to_owned(),
            currency: "USD".to_owned(),
            time_zone: "UTC".to_owned(),
            max_amount_minor: None,
        }
    }
}

/// An account holder's status, as the processor's user and business transitions set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HolderStatus {
    /// Not yet through KYC.
    Unverified,
    /// Through partial KYC; may spend.
    Limited,
    /// May spend.
    Active,
    /// Temporarily barred.
    Suspended,
    /// Closed for good.
    Closed,
}

/// A user (person) or a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    /// A person: `user_token`.
    User,
    /// A company: `business_token`.
    Business,
}

/// An account holder and the account it draws on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// User or business token.
    pub token: String,
    /// User or business.
    pub kind: HolderKind,
    /// Current status.
    pub status: HolderStatus,
    /// Parent user or business, if any.
    pub parent_token: Option<String>,
    /// True when the holder spends from its parent's account.
    pub uses_parent_account: bool,
    /// The account this holder draws on (its own token, or its parent's account).
    pub account_token: String,
}

/// The money an account holder can spend, minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Account token: the owning holder's token.
    pub token: String,
    /// ISO 4217 alpha code.
    pub currency: String,
    /// Posted (ledger) balance.
    pub posted_minor: i64,
    /// Sum of open holds.
    pub held_minor: i64,
    /// Overdraft or credit line that adds to the available balance.
    pub credit_line_minor: i64,
}

impl Account {
    /// posted - held + credit line.
    pub fn available_minor(&self) -> i64 {
        self.posted_minor - self.held_minor + self.credit_line_minor
    }
}

/// A card's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CardState {
    /// Issued, not yet activated.
    Unactivated,
    /// May spend.
    Active,
    /// Temporarily barred.
    Suspended,
    /// Closed for good.
    Terminated,
}

/// A card: never its full number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Card token.
    pub token: String,
    /// The holder (user or business) the card belongs to.
    pub user_token: String,
    /// Card product token.
    pub card_product_token: String,
    /// Current state.
    pub state: CardState,
    /// First instant (ms) at which the card is expired: the start of the month after MMYY.
    pub expires_at_ms: Option<i64>,
    /// Last four digits, for display.
    pub last_four: Option<String>,
}

/// A card product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardProduct {
    /// Card product token.
    pub token: String,
    /// Display name.
    pub name: String,
}

/// A named set of MCCs, with its own hold expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MccGroup {
    /// MCC group token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// Inclusive MCC ranges; a single code is a range of one.
    pub ranges: Vec<(u16, u16)>,
    /// Days an authorization hold lasts for a merchant in this group.
    pub hold_expiration_days: Option<u32>,
}

impl MccGroup {
    /// True when `mcc` is in one of the group's ranges.
    pub fn contains(&self, mcc: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&mcc))
    }
}

/// What became of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HoldState {
    /// Still reserving money.
    Open,
    /// Released by a final clearing.
    Cleared,
    /// Released by reversals.
    Reversed,
    /// Released by expiry.
    Expired,
}

/// A velocity counter an authorization charged, so a reversal can give the usage back.
///
/// The tokens share the counter map's keys, so charging a counter copies no text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRef {
    /// Velocity control token.
    #[serde(deserialize_with = "crate::journal::shared_str")]
    pub control: Arc<str>,
    /// Card or holder token the counter belongs to.
    #[serde(deserialize_with = "crate::journal::shared_str")]
    pub subject: Arc<str>,
    /// Start of the window charged, ms.
    pub window_start_ms: i64,
}

/// Money reserved by an approved authorization chain, keyed by the chain's first token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The chain's original JIT token.
    pub token: String,
    /// Account the money is reserved on.
    pub account: String,
    /// Card that authorized.
    pub card: String,
    /// Amount still reserved, minor units.
    pub amount_minor: i64,
    /// Open, cleared, reversed or expired.
    pub state: HoldState,
    /// When the hold lapses, ms.
    pub expires_at_ms: i64,
    /// Counters charged by the chain's approvals.
    pub usage: Vec<UsageRef>,
}

impl Hold {
    /// The amount this hold adds to its account's held total.
    pub fn open_minor(&self) -> i64 {
        if self.state == HoldState::Open {
            self.amount_minor
        } else {
            0
        }
    }
}
