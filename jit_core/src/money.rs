//! Money as integer minor units, parsed exactly from decimal text.
//!
//! An amount reaches us as a JSON number (`12.50`) or a JSON string (`"12.50"`); both are
//! read from their raw text and never pass through a float. The currency's ISO 4217 exponent
//! says how many fraction digits are allowed. Trailing zeros beyond the exponent ("8.200" in
//! USD) are accepted because the value is still exact; a non-zero digit beyond it ("8.201")
//! is refused. Negative values, exponent notation (`1e400`), `NaN`, `Infinity`, empty text,
//! `null` and values above the configured maximum are refused.

use std::fmt;

/// An amount in minor units (cents for USD). The field is private so every amount is built
/// by parsing or by an explicit constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// Zero minor units.
    pub const ZERO: Money = Money(0);

    /// An amount from minor units.
    pub const fn from_minor(minor: i64) -> Money {
        Money(minor)
    }

    /// The amount in minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// The amount as decimal text with `exponent` fraction digits ("12.50", "80", "1.234").
    pub fn to_decimal(self, exponent: u8) -> String {
        let mut text = String::with_capacity(24);
        write_decimal(&mut text, self.0, exponent);
        text
    }
}

/// Appends `minor` as decimal text with `exponent` fraction digits.
pub fn write_decimal(out: &mut String, minor: i64, exponent: u8) {
    if minor < 0 {
        out.push('-');
    }
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        push_digits(out, magnitude, 1);
        return;
    }
    let scale = 10u64.pow(u32::from(exponent));
    push_digits(out, magnitude / scale, 1);
    out.push('.');
    push_digits(out, magnitude % scale, usize::from(exponent));
}

/// Writes `value` in decimal, zero-padded to at least `width` digits. Decisions write
/// several numbers each; `core::fmt` costs several times more per number.
pub fn push_digits(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 || start == digits.len() {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let padded = digits.len().saturating_sub(width).min(start);
    for byte in &digits[padded..] {
        out.push(char::from(*byte));
    }
}

/// Why an amount's text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountProblem {
    /// Empty text.
    Empty,
    /// `null` or an absent field.
    Null,
    /// A leading minus sign.
    Negative,
    /// Exponent notation such as `1e400`.
    ExponentNotation,
    /// Anything that is not digits with at most one decimal point (NaN, Infinity, "1,00").
    NotDecimal,
    /// A non-zero digit beyond the currency's exponent.
    TooManyDecimals {
        /// The currency's exponent.
        exponent: u8,
    },
    /// Above the configured maximum (or beyond i64).
    AboveMaximum {
        /// The maximum in minor units.
        max_minor: i64,
    },
}

impl fmt::Display for AmountProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountProblem::Empty => f.write_str("is empty"),
            AmountProblem::Null => f.write_str("is null or missing"),
            AmountProblem::Negative => f.write_str("is negative"),
            AmountProblem::ExponentNotation => f.write_str("uses exponent notation"),
            AmountProblem::NotDecimal => f.write_str("is not a decimal amount"),
            AmountProblem::TooManyDecimals { exponent } => {
                write!(f, "has more than {exponent} decimal places")
            }
            AmountProblem::AboveMaximum { max_minor } => {
                write!(f, "is above the maximum of {max_minor} minor units")
            }
        }
    }
}

/// Parses decimal text in major units into minor units with `exponent` fraction digits.
pub fn parse_decimal(text: &str, exponent: u8, max_minor: i64) -> Result<Money, AmountProblem> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(AmountProblem::Empty);
    }
    if bytes[0] == b'-' {
        return Err(AmountProblem::Negative);
    }
    if bytes.iter().any(|b| *b == b'e' || *b == b'E') && bytes[0].is_ascii_digit() {
        return Err(AmountProblem::ExponentNotation);
    }

    let (whole, fraction) = match text.find('.') {
        Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        None => (bytes, &[][..]),
    };
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    let dot_ok = text.find('.').is_none() || !fraction.is_empty();
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || !dot_ok {
        return Err(AmountProblem::NotDecimal);
    }

    let places = usize::from(exponent);
    if fraction.len() > places && fraction[places..].iter().any(|b| *b != b'0') {
        return Err(AmountProblem::TooManyDecimals { exponent });
    }

    let over = AmountProblem::AboveMaximum { max_minor };
    let mut minor: i64 = 0;
    for digit in whole
        .iter()
        .copied()
        .chain((0..places).map(|i| fraction_digit(fraction, i)))
    {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit - b'0')))
            .ok_or_else(|| over.clone())?;
    }
    if minor > max_minor {
        return Err(over);
    }
    Ok(Money(minor))
}

fn fraction_digit(fraction: &[u8], index: usize) -> u8 {
    fraction.get(index).copied().unwrap_or(b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: i64 = i64::MAX;

    #[test]
    fn writes_decimals_as_core_fmt_does() {
        let values = [
            0,
            1,
            5,
            9,
            10,
            99,
            100,
            1234,
            -1234,
            -5,
            i64::MAX,
            i64::MIN + 1,
        ];
        for minor in values {
            for exponent in 0..=4u8 {
                let mut ours = String::new();
                write_decimal(&mut ours, minor, exponent);
                let magnitude = minor.unsigned_abs();
                let sign = if minor < 0 { "-" } else { "" };
                let expected = if exponent == 0 {
                    format!("{sign}{magnitude}")
                } else {
                    let scale = 10u64.pow(u32::from(exponent));
                    let width = usize::from(exponent);
                    format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale)
                };
                assert_eq!(ours, expected);
            }
        }
        let mut mcc = String::new();
        push_digits(&mut mcc, 742, 4);
        assert_eq!(mcc, "0742");
    }

    #[test]
    fn parses_exact_minor_units() {
        assert_eq!(parse_decimal("19.99", 2, MAX), Ok(Money(1999)));
        assert_eq!(parse_decimal("8.20", 2, MAX), Ok(Money(820)));
        assert_eq!(parse_decimal("8.2", 2, MAX), Ok(Money(820)));
        assert_eq!(parse_decimal("8.200", 2, MAX), Ok(Money(820)));
        assert_eq!(parse_decimal("80", 0, MAX), Ok(Money(80)));
        assert_eq!(parse_decimal("1.234", 3, MAX), Ok(Money(1234)));
        assert_eq!(parse_decimal("0", 2, MAX), Ok(Money(0)));
    }

    #[test]
    fn refuses_what_is_not_exact() {
        assert_eq!(
            parse_decimal("8.201", 2, MAX),
            Err(AmountProblem::TooManyDecimals { exponent: 2 })
        );
        assert_eq!(
            parse_decimal("1.5", 0, MAX),
            Err(AmountProblem::TooManyDecimals { exponent: 0 })
        );
        assert_eq!(
            parse_decimal("-10.00", 2, MAX),
            Err(AmountProblem::Negative)
        );
        assert_eq!(
            parse_decimal("1e400", 2, MAX),
            Err(AmountProblem::ExponentNotation)
        );
        assert_eq!(parse_decimal("NaN", 2, MAX), Err(AmountProblem::NotDecimal));
        assert_eq!(
            parse_decimal("Infinity", 2, MAX),
            Err(AmountProblem::NotDecimal)
        );
        assert_eq!(parse_decimal("", 2, MAX), Err(AmountProblem::Empty));
        assert_eq!(parse_decimal(".5", 2, MAX), Err(AmountProblem::NotDecimal));
        assert_eq!(parse_decimal("5.", 2, MAX), Err(AmountProblem::NotDecimal));
        assert_eq!(parse_decimal("+5", 2, MAX), Err(AmountProblem::NotDecimal));
        assert!(matches!(
            parse_decimal("100.01", 2, 10000),
            Err(AmountProblem::AboveMaximum { .. })
        ));
        assert!(parse_decimal("99999999999999999999", 2, MAX).is_err());
    }

    #[test]
    fn every_cent_to_a_hundred_round_trips() {
        for minor in 1..=10_000 {
            let text = Money(minor).to_decimal(2);
            assert_eq!(parse_decimal(&text, 2, MAX), Ok(Money(minor)), "{text}");
        }
        assert_eq!(Money(80).to_decimal(0), "80");
        assert_eq!(Money(1234).to_decimal(3), "1.234");
        assert_eq!(Money(-5).to_decimal(2), "-0.05");
    }
}
