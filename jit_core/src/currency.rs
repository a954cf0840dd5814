//! ISO 4217 currencies in current use: alpha code, numeric code and minor-unit exponent.
//!
//! Written from the published ISO 4217 list (amendments through 2024). Funds codes with a
//! minor unit are kept (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW); precious metals and
//! other codes without a minor unit (XAU, XDR, ...) are left out because no card amount is
//! ever expressed in them.

/// One currency: how its amounts are written and how many minor units make a major unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// Alphabetic code, such as `USD`.
    pub alpha: &'static str,
    /// Numeric code, such as `840`.
    pub numeric: u16,
    /// Digits after the decimal point (JPY 0, USD 2, KWD 3, CLF 4).
    pub exponent: u8,
}

const fn c(alpha: &'static str, numeric: u16, exponent: u8) -> Currency {
    Currency {
        alpha,
        numeric,
        exponent,
    }
}

/// Every currency, ordered by alpha code so lookups can use binary search.
#[rustfmt::skip]
pub const CURRENCIES: &[Currency] = &[
    c("AED", 784, 2), c("AFN", 971, 2), c("ALL", 8, 2), c("AMD", 51, 2), c("ANG", 532, 2),
    c("AOA", 973, 2), c("ARS", 32, 2), c("AUD", 36, 2), c("AWG", 533, 2), c("AZN", 944, 2),
    c("BAM", 977, 2), c("BBD", 52, 2), c("BDT", 50, 2), c("BGN", 975, 2), c("BHD", 48, 3),
    c("BIF", 108, 0), c("BMD", 60, 2), c("BND", 96, 2), c("BOB", 68, 2), c("BOV", 984, 2),
    c("BRL", 986, 2), c("BSD", 44, 2), c("BTN", 64, 2), c("BWP", 72, 2), c("BYN", 933, 2),
    c("BZD", 84, 2), c("CAD", 124, 2), c("CDF", 976, 2), c("CHE", 947, 2), c("CHF", 756, 2),
    c("CHW", 948, 2), c("CLF", 990, 4), c("CLP", 152, 0), c("CNY", 156, 2), c("COP", 170, 2),
    c("COU", 970, 2), c("CRC", 188, 2), c("CUP", 192, 2), c("CVE", 132, 2), c("CZK", 203, 2),
    c("DJF", 262, 0), c("DKK", 208, 2), c("DOP", 214, 2), c("DZD", 12, 2), c("EGP", 818, 2),
    c("ERN", 232, 2), c("ETB", 230, 2), c("EUR", 978, 2), c("FJD", 242, 2), c("FKP", 238, 2),
    c("GBP", 826, 2), c("GEL", 981, 2), c("GHS", 936, 2), c("GIP", 292, 2), c("GMD", 270, 2),
    c("GNF", 324, 0), c("GTQ", 320, 2), c("GYD", 328, 2), c("HKD", 344, 2), c("HNL", 340, 2),
    c("HTG", 332, 2), c("HUF", 348, 2), c("IDR", 360, 2), c("ILS", 376, 2), c("INR", 356, 2),
    c("IQD", 368, 3), c("IRR", 364, 2), c("ISK", 352, 0), c("JMD", 388, 2), c("JOD", 400, 3),
    c("JPY", 392, 0), c("KES", 404, 2), c("KGS", 417, 2), c("KHR", 116, 2), c("KMF", 174, 0),
    c("KPW", 408, 2), c("KRW", 410, 0), c("KWD", 414, 3), c("KYD", 136, 2), c("KZT", 398, 2),
    c("LAK", 418, 2), c("LBP", 422, 2), c("LKR", 144, 2), c("LRD", 430, 2), c("LSL", 426, 2),
    c("LYD", 434, 3), c("MAD", 504, 2), c("MDL", 498, 2), c("MGA", 969, 2), c("MKD", 807, 2),
    c("MMK", 104, 2), c("MNT", 496, 2), c("MOP", 446, 2), c("MRU", 929, 2), c("MUR", 480, 2),
    c("MVR", 462, 2), c("MWK", 454, 2), c("MXN", 484, 2), c("MXV", 979, 2), c("MYR", 458, 2),
    c("MZN", 943, 2), c("NAD", 516, 2), c("NGN", 566, 2), c("NIO", 558, 2), c("NOK", 578, 2),
    c("NPR", 524, 2), c("NZD", 554, 2), c("OMR", 512, 3), c("PAB", 590, 2), c("PEN", 604, 2),
    c("PGK", 598, 2), c("PHP", 608, 2), c("PKR", 586, 2), c("PLN", 985, 2), c("PYG", 600, 0),
    c("QAR", 634, 2), c("RON", 946, 2), c("RSD", 941, 2), c("RUB", 643, 2), c("RWF", 646, 0),
    c("SAR", 682, 2), c("SBD", 90, 2), c("SCR", 690, 2), c("SDG", 938, 2), c("SEK", 752, 2),
    c("SGD", 702, 2), c("SHP", 654, 2), c("SLE", 925, 2), c("SOS", 706, 2), c("SRD", 968, 2),
    c("SSP", 728, 2), c("STN", 930, 2), c("SVC", 222, 2), c("SYP", 760, 2), c("SZL", 748, 2),
    c("THB", 764, 2), c("TJS", 972, 2), c("TMT", 934, 2), c("TND", 788, 3), c("TOP", 776, 2),
    c("TRY", 949, 2), c("TTD", 780, 2), c("TWD", 901, 2), c("TZS", 834, 2), c("UAH", 980, 2),
    c("UGX", 800, 0), c("USD", 840, 2), c("USN", 997, 2), c("UYI", 940, 0), c("UYU", 858, 2),
    c("UYW", 927, 4), c("UZS", 860, 2), c("VED", 926, 2), c("VES", 928, 2), c("VND", 704, 0),
    c("VUV", 548, 0), c("WST", 882, 2), c("XAF", 950, 0), c("XCD", 951, 2), c("XCG", 532, 2),
    c("XOF", 952, 0), c("XPF", 953, 0), c("YER", 886, 2), c("ZAR", 710, 2), c("ZMW", 967, 2),
    c("ZWG", 924, 2),
];

/// The currency with this alphabetic code (exact, upper case), if it is in current use.
pub fn by_alpha(alpha: &str) -> Option<&'static Currency> {
    CURRENCIES
        .binary_search_by(|currency| currency.alpha.cmp(alpha))
        .ok()
        .map(|index| &CURRENCIES[index])
}

/// The currency with this numeric code, as the processor sends it in
/// `currency_conversion.network.original_currency_code` ("826").
pub fn by_numeric(numeric: u16) -> Option<&'static Currency> {
    CURRENCIES
        .iter()
        .find(|currency| currency.numeric == numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in CURRENCIES.windows(2) {
            assert!(
                pair[0].alpha < pair[1].alpha,
                "{} before {}",
                pair[0].alpha,
                pair[1].alpha
            );
        }
    }

    #[test]
    fn exponents_of_well_known_currencies() {
        assert_eq!(by_alpha("JPY").map(|c| c.exponent), Some(0));
        assert_eq!(by_alpha("USD").map(|c| c.exponent), Some(2));
        assert_eq!(by_alpha("KWD").map(|c| c.exponent), Some(3));
        assert_eq!(by_alpha("BHD").map(|c| c.exponent), Some(3));
        assert_eq!(by_alpha("CLF").map(|c| c.exponent), Some(4));
        assert_eq!(by_numeric(826).map(|c| c.alpha), Some("GBP"));
        assert_eq!(by_alpha("usd"), None);
    }
}
