//! What each `jit_funding.method` asks of the engine.
//!
//! Each line: methods → flow → what moves.
//!
//! - `pgfs.authorization` → decide (purchase) → hold the amount.
//! - `pgfs.authorization.cashback` → decide (cash back) → hold.
//! - `pgfs.authorization.quasi.cash` → decide (transfer) → hold.
//! - `pgfs.atm.withdrawal`, `pgfs.authorization.atm.withdrawal` → decide (withdrawal) → hold.
//! - `pgfs.authorization.account_verification` → decide card, holder, account and
//!   authorization controls; no velocity, no funds check → nothing ($0).
//! - `pgfs.authorization.incremental` → decide the increment only → grow the chain's open
//!   hold; without an open hold on the same card it is declined (rule `chain`).
//! - `pgfs.authorization.advice` → informative → release `amount` from the chain's hold
//!   (`transaction.amount` is the new total; `amount` is what is released).
//! - `pgfs.authorization.reversal` → informative → release `amount` (once per token, never
//!   below zero) and give the released amount back to the velocity counters it used (and
//!   the count too when the hold is fully released).
//! - `pgfs.authorization.reversal.issuerexpiration` → informative → release the whole hold
//!   as EXPIRED (velocity usage stays, as with `Engine::expire_holds`).
//! - `pgfs.authorization.capture` → informative clearing → post `amount`; a final clearing
//!   (`is_final_clearing` true or absent) releases the whole hold, a non-final one releases
//!   at most `amount`.
//! - `pgfs.force_capture` → informative → post `amount`; releases the chain's hold if any.
//! - `pgfs.auth_plus_capture`, `pgfs.pindebit`, `pgfs.pindebit.*` (other than reversals and
//!   refunds), `pgfs.billpayment` → decide as a single message → post at once.
//! - `pgfs.authorization.standin` → informative (the processor approved) → hold.
//! - `pgfs.auth_plus_capture.standin`, `pgfs.pindebit.standin` → informative → post.
//! - `pgfs.refund.authorization`, `pgfs.original.credit.authorization` → approve → nothing
//!   until its clearing.
//! - `pgfs.refund.authorization.reversal`, `pgfs.original.credit.authorization.reversal` →
//!   informative → nothing.
//! - `pgfs.refund`, `pgfs.refund.authorization.clearing`, other `pgfs.original.credit.*`,
//!   `pgfs.network.load`, `pgfs.directdeposit.credit`, `pgfs.adjustment.credit`,
//!   `pgfs.dispute.credit`, `pgfs.authorization.capture.chargeback`, reversals of
//!   single-message debits → informative credit → post +amount.
//! - `pgfs.adjustment.debit`, `pgfs.dispute.debit`, `pgfs.directdeposit.debit`,
//!   `pgfs.authorization.capture.chargeback.reversal`, `pgfs.directdeposit.credit.reversal`
//!   → informative debit → post -amount.
//! - `pgfs.balanceinquiry`, `pgfs.pindebit.balanceinquiry` → answer `balances` → nothing.
//! - Unknown, and the name says money moved (capture, clearing, credit, debit, adjustment,
//!   chargeback, refund, load, deposit) → accept 200, entry `flagged` → nothing: which way
//!   the money went is for a person to decide. These words win over "authorization".
//! - Unknown otherwise (it asks for money) → decline TRANSACTION_NOT_PERMITTED.
//!
//! Informative messages are always accepted with 200 and applied, even when they take an
//! account below zero (the entry then says `overdraft: true`).

use crate::controls::Category;

/// What a message does to holds and balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Decide; on approval hold the amount.
    Authorize(Category),
    /// Decide the increment; on approval grow the chain's hold.
    Increment,
    /// Decide without a funds check and without money ($0 account verification).
    Verify,
    /// Decide; on approval post the amount at once (single message).
    SingleMessage(Category),
    /// Release `amount` from the chain's hold.
    Release {
        /// Give the velocity usage back (reversals do, advices do not).
        give_back: bool,
    },
    /// Release the whole hold as expired.
    IssuerExpiration,
    /// Post the amount and release the chain's hold.
    Clear,
    /// Already approved by the processor: hold the amount.
    StandinHold,
    /// Already approved by the processor: post the amount.
    StandinPost,
    /// Approve a credit authorization; no money moves.
    ApproveCredit,
    /// Accept; no money moves.
    AcceptOnly,
    /// Post +amount.
    Credit,
    /// Post -amount.
    Debit,
    /// Answer balances.
    BalanceInquiry,
    /// Unknown method that reports moved money: accept and flag.
    Flagged,
    /// Unknown method that asks for money: decline.
    Refused,
}

impl Flow {
    /// True when the engine may decline the message.
    pub fn is_decided(self) -> bool {
        matches!(
            self,
            Flow::Authorize(_)
                | Flow::Increment
                | Flow::Verify
                | Flow::SingleMessage(_)
                | Flow::ApproveCredit
                | Flow::BalanceInquiry
                | Flow::Refused
        )
    }
}

/// The flow for a method name.
pub fn classify(method: &str) -> Flow {
    if let Some(flow) = exact(method) {
        return flow;
    }
    if let Some(flow) = family(method) {
        return flow;
    }
    const MOVED: [&str; 9] = [
        "capture",
        "clearing",
        "credit",
        "debit",
        "adjustment",
        "chargeback",
        "refund",
        "load",
        "deposit",
    ];
    if MOVED.iter().any(|word| method.contains(word)) {
        Flow::Flagged
    } else {
        Flow::Refused
    }
}

fn exact(method: &str) -> Option<Flow> {
    let flow = match method {
        "pgfs.authorization" => Flow::Authorize(Category::Purchase),
        "pgfs.authorization.cashback" => Flow::Authorize(Category::Cashback),
        "pgfs.authorization.quasi.cash" => Flow::Authorize(Category::Transfer),
        "pgfs.atm.withdrawal" | "pgfs.authorization.atm.withdrawal" => {
            Flow::Authorize(Category::Withdrawal)
        }
        "pgfs.authorization.account_verification" => Flow::Verify,
        "pgfs.authorization.incremental" => Flow::Increment,
        "pgfs.authorization.advice" => Flow::Release { give_back: false },
        "pgfs.authorization.reversal" => Flow::Release { give_back: true },
        "pgfs.authorization.reversal.issuerexpiration" => Flow::IssuerExpiration,
        "pgfs.authorization.capture" | "pgfs.force_capture" => Flow::Clear,
        "pgfs.auth_plus_capture" | "pgfs.pindebit" | "pgfs.billpayment" => {
            Flow::SingleMessage(Category::Purchase)
        }
        "pgfs.pindebit.cashback" => Flow::SingleMessage(Category::Cashback),
        "pgfs.pindebit.atm.withdrawal" => Flow::SingleMessage(Category::Withdrawal),
        "pgfs.pindebit.quasi.cash" => Flow::SingleMessage(Category::Transfer),
        "pgfs.authorization.standin" => Flow::StandinHold,
        "pgfs.auth_plus_capture.standin" | "pgfs.pindebit.standin" => Flow::StandinPost,
        "pgfs.refund.authorization" | "pgfs.original.credit.authorization" => Flow::ApproveCredit,
        "pgfs.refund.authorization.reversal" | "pgfs.original.credit.authorization.reversal" => {
            Flow::AcceptOnly
        }
        "pgfs.refund" | "pgfs.refund.authorization.clearing" | "pgfs.network.load" => Flow::Credit,
        "pgfs.authorization.capture.chargeback" | "pgfs.dispute.credit" => Flow::Credit,
        "pgfs.adjustment.credit" | "pgfs.directdeposit.credit" => Flow::Credit,
        "pgfs.authorization.capture.chargeback.reversal" | "pgfs.dispute.debit" => Flow::Debit,
        "pgfs.adjustment.debit" | "pgfs.directdeposit.debit" => Flow::Debit,
        "pgfs.balanceinquiry" | "pgfs.pindebit.balanceinquiry" => Flow::BalanceInquiry,
        _ => return None,
    };
    Some(flow)
}

/// Families whose members share a flow: single-message reversals undo a debit or a credit.
fn family(method: &str) -> Option<Flow> {
    let reversal = method.ends_with(".reversal");
    if method.starts_with("pgfs.original.credit.") {
        return Some(if reversal { Flow::Debit } else { Flow::Credit });
    }
    if method.starts_with("pgfs.directdeposit.") && reversal {
        return Some(if method.contains(".credit.") {
            Flow::Debit
        } else {
            Flow::Credit
        });
    }
    let debits = [
        "pgfs.pindebit",
        "pgfs.auth_plus_capture",
        "pgfs.billpayment",
    ];
    if reversal && debits.iter().any(|prefix| method.starts_with(prefix)) {
        return Some(Flow::Credit);
    }
    if method.starts_with("pgfs.pindebit.refund") || method.starts_with("pgfs.refund.") {
        return Some(Flow::Credit);
    }
    if method.starts_with("pgfs.pindebit.") || method.starts_with("pgfs.billpayment.") {
        return Some(Flow::SingleMessage(Category::Purchase));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_the_issue_are_classified() {
        assert_eq!(
            classify("pgfs.refund.authorization.reversal"),
            Flow::AcceptOnly
        );
        assert_eq!(
            classify("pgfs.billpayment"),
            Flow::SingleMessage(Category::Purchase)
        );
        assert_eq!(classify("pgfs.force_capture"), Flow::Clear);
        assert_eq!(classify("pgfs.something.new"), Flow::Refused);
        assert_eq!(classify("pgfs.something.capture"), Flow::Flagged);
        assert_eq!(classify("pgfs.pindebit.reversal"), Flow::Credit);
        assert_eq!(classify("pgfs.directdeposit.credit.reversal"), Flow::Debit);
    }
}
