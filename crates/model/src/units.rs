//! Quantities with units, parsed strictly.
//!
//! Every quantity a user writes carries its unit (`20ms`, `256Mi`, `50Mbps`, `500m`), so a
//! number can never be read in the wrong unit. Parsing rejects anything that is not exactly
//! one number followed by one known unit, and says what it expected. `Display` writes the
//! shortest exact form, so `parse(display(x)) == x` for every value (a property test checks
//! this).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a quantity did not parse: what kind of value was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    /// A human description of what was expected, with examples.
    pub expected: &'static str,
    /// The text that was found.
    pub found: String,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found {:?}", self.expected, self.found)
    }
}

impl std::error::Error for UnitError {}

/// Splits `text` into a non-negative decimal number and the unit that follows it.
/// Accepts `12`, `1.5`, `.5` is rejected (a leading digit is required), no sign, no exponent.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut end = 0;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end == 0 {
        return None;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        let frac_start = end + 1;
        let mut frac_end = frac_start;
        while frac_end < bytes.len() && bytes[frac_end].is_ascii_digit() {
            frac_end += 1;
        }
        if frac_end == frac_start {
            return None;
        }
        end = frac_end;
    }
    Some((&text[..end], text[end..].trim_start()))
}

/// Parses a decimal string into an exact integer count of `1/scale` units, where the unit
/// multiplier is `multiplier` (an integer). Returns `None` when the value is not an integer
/// number of base units or overflows.
fn decimal_to_units(number: &str, multiplier: u128) -> Option<u128> {
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    let int: u128 = int_part.parse().ok()?;
    let mut value = int.checked_mul(multiplier)?;
    if !frac_part.is_empty() {
        let digits = frac_part.trim_end_matches('0');
        if digits.len() > 30 {
            return None;
        }
        let frac: u128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
        let denom = 10u128.checked_pow(digits.len() as u32)?;
        let scaled = frac.checked_mul(multiplier)?;
        if scaled % denom != 0 {
            return None;
        }
        value = value.checked_add(scaled / denom)?;
    }
    Some(value)
}

fn finite_non_negative(number: &str) -> Option<f64> {
    let v: f64 = number.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(stringify!($ty))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Duration
// ---------------------------------------------------------------------------------------

/// A time span, e.g. a latency (`20ms`) or a timeout (`1.5s`). Stored in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Duration {
    millis: f64,
}

impl Duration {
    pub const ZERO: Duration = Duration { millis: 0.0 };
    const EXPECTED: &'static str = "a duration with a unit: ns, us, ms, s, m or h (e.g. 20ms, 1.5s, 250us)";

    /// A duration of `millis` milliseconds. Negative or non-finite values become zero.
    pub fn from_millis(millis: f64) -> Self {
        Duration { millis: if millis.is_finite() && millis > 0.0 { millis } else { 0.0 } }
    }
    pub fn from_secs(secs: f64) -> Self {
        Self::from_millis(secs * 1000.0)
    }
    pub fn as_millis(self) -> f64 {
        self.millis
    }
    pub fn as_secs(self) -> f64 {
        self.millis / 1000.0
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.as_secs())
    }
}

impl FromStr for Duration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        let value = finite_non_negative(number).ok_or_else(err)?;
        let factor = match unit {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" | "min" => 60e3,
            "h" => 3600e3,
            _ => return Err(err()),
        };
        let millis = value * factor;
        if !(millis.is_finite() && millis <= crate::limits::MAX_DURATION_MS) {
            return Err(UnitError {
                expected: "a duration of at most one year (e.g. 20ms, 1.5s, 2h)",
                found: s.to_string(),
            });
        }
        Ok(Duration { millis })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis;
        if ms >= 1000.0 && ms % 1000.0 == 0.0 {
            write!(f, "{}s", ms / 1000.0)
        } else {
            write!(f, "{ms}ms")
        }
    }
}
string_serde!(Duration);

// ---------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------

/// An amount of memory or storage in bytes: `256Mi`, `4Gi`, `1G`, `512` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

/// Size units from the largest down, binary and decimal interleaved, so `Display` picks the
/// largest unit that divides the value exactly (`4G` rather than `3906250Ki`).
const SIZE_UNITS: &[(&str, u128)] = &[
    ("Ei", 1 << 60),
    ("E", 1_000_000_000_000_000_000),
    ("Pi", 1 << 50),
    ("P", 1_000_000_000_000_000),
    ("Ti", 1 << 40),
    ("T", 1_000_000_000_000),
    ("Gi", 1 << 30),
    ("G", 1_000_000_000),
    ("Mi", 1 << 20),
    ("M", 1_000_000),
    ("Ki", 1 << 10),
    ("k", 1_000),
];

impl Size {
    const EXPECTED: &'static str =
        "a size: bytes, or a number with k, M, G, T (decimal) or Ki, Mi, Gi, Ti (binary), e.g. 256Mi, 4Gi, 1G";
    pub fn bytes(self) -> u64 {
        self.0
    }
    pub fn gib(self) -> f64 {
        self.0 as f64 / (1u64 << 30) as f64
    }
}

impl FromStr for Size {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        // Accept an optional trailing "B" ("4GiB", "1GB") and "K" for kilo.
        let unit = unit.strip_suffix('B').unwrap_or(unit);
        let multiplier = match unit {
            "" => 1,
            "K" => 1_000,
            u => SIZE_UNITS.iter().find(|(name, _)| *name == u).map(|(_, m)| *m).ok_or_else(err)?,
        };
        let bytes = decimal_to_units(number, multiplier).ok_or_else(err)?;
        if bytes > u128::from(crate::limits::MAX_BYTES) {
            return Err(UnitError { expected: "a size of at most 1Ei (2^60 bytes)", found: s.to_string() });
        }
        u64::try_from(bytes).map(Size).map_err(|_| err())
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0 as u128;
        if bytes > 0 {
            for (name, m) in SIZE_UNITS {
                if bytes.is_multiple_of(*m) {
                    return write!(f, "{}{}", bytes / m, name);
                }
            }
        }
        write!(f, "{}", self.0)
    }
}
string_serde!(Size);

impl Size {
    /// For people: the largest binary unit that leaves at least 1, with up to one decimal
    /// (`1.2Ti`, `512Mi`). Display is exact instead, for files that must round-trip.
    pub fn human(&self) -> String {
        const UNITS: [(&str, f64); 4] = [
            ("Ti", 1024f64 * 1024.0 * 1024.0 * 1024.0),
            ("Gi", 1024f64 * 1024.0 * 1024.0),
            ("Mi", 1024f64 * 1024.0),
            ("Ki", 1024f64),
        ];
        let b = self.0 as f64;
        for (name, m) in UNITS {
            if b >= m {
                let v = b / m;
                let text = if (v - v.round()).abs() < 0.05 { format!("{:.0}", v.round()) } else { format!("{v:.1}") };
                return format!("{text}{name}");
            }
        }
        format!("{}", self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Bandwidth
// ---------------------------------------------------------------------------------------

/// A data rate in bits per second: `50Mbps`, `10Gbps`, `64kbps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bandwidth(pub u64);

const BANDWIDTH_UNITS: &[(&str, u128)] =
    &[("Tbps", 1_000_000_000_000), ("Gbps", 1_000_000_000), ("Mbps", 1_000_000), ("kbps", 1_000), ("bps", 1)];

impl Bandwidth {
    const EXPECTED: &'static str = "a bandwidth with a unit: bps, kbps, Mbps, Gbps or Tbps (e.g. 50Mbps, 10Gbps)";
    pub fn bits_per_sec(self) -> u64 {
        self.0
    }
    pub fn mbps(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn from_mbps(mbps: f64) -> Self {
        Bandwidth((mbps.max(0.0) * 1e6).round() as u64)
    }
}

impl FromStr for Bandwidth {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        let unit = if unit == "Kbps" { "kbps" } else { unit };
        let multiplier = BANDWIDTH_UNITS.iter().find(|(name, _)| *name == unit).map(|(_, m)| *m).ok_or_else(err)?;
        let bps = decimal_to_units(number, multiplier).ok_or_else(err)?;
        if bps > u128::from(crate::limits::MAX_BANDWIDTH_BPS) {
            return Err(UnitError { expected: "a bandwidth of at most 100Tbps", found: s.to_string() });
        }
        u64::try_from(bps).map(Bandwidth).map_err(|_| err())
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bps = self.0 as u128;
        for (name, m) in BANDWIDTH_UNITS {
            if bps.is_multiple_of(*m) && (bps > 0 || *m == 1) {
                return write!(f, "{}{}", bps / m, name);
            }
        }
        write!(f, "{}bps", self.0)
    }
}
string_serde!(Bandwidth);

// ---------------------------------------------------------------------------------------
// Cpu
// ---------------------------------------------------------------------------------------

/// CPU in millicores: `500m` is half a core, `2` is two cores, `1.5` is 1500m.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cpu(pub u64);

impl Cpu {
    const EXPECTED: &'static str = "a CPU amount: cores (2, 0.5) or millicores (500m)";
    pub fn millicores(self) -> u64 {
        self.0
    }
    pub fn cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl FromStr for Cpu {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        let multiplier = match unit {
            "" => 1000,
            "m" => 1,
            _ => return Err(err()),
        };
        let milli = decimal_to_units(number, multiplier).ok_or_else(err)?;
        if milli > u128::from(crate::limits::MAX_CPU_MILLICORES) {
            return Err(UnitError { expected: "a CPU amount of at most 1000000 cores", found: s.to_string() });
        }
        u64::try_from(milli).map(Cpu).map_err(|_| err())
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}
string_serde!(Cpu);

// ---------------------------------------------------------------------------------------
// Power
// ---------------------------------------------------------------------------------------

/// Electrical power in watts: `120W`, `1.2kW`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Power(f64);

impl Power {
    const EXPECTED: &'static str = "a power with a unit: W or kW (e.g. 120W, 1.2kW)";
    pub fn from_watts(watts: f64) -> Self {
        Power(if watts.is_finite() && watts > 0.0 { watts } else { 0.0 })
    }
    pub fn watts(self) -> f64 {
        self.0
    }
}

impl FromStr for Power {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        let value = finite_non_negative(number).ok_or_else(err)?;
        match unit {
            "W" => Ok(Power(value)),
            "kW" => Ok(Power(value * 1000.0)),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}W", self.0)
    }
}
string_serde!(Power);

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

/// An amount of money: `0.12`, `$0.12`, `0.12 USD`, `€3`. Prices are per hour unless the
/// field name says otherwise (`egress_per_gb`). All amounts in one domain are assumed to be
/// in one currency; the code, when given, is kept so it can be shown back.
#[derive(Debug, Clone, PartialEq, PartialOrd, Default)]
pub struct Money {
    amount: f64,
    currency: Option<String>,
}

impl Money {
    const EXPECTED: &'static str =
        "an amount of money: a non-negative number, optionally with $, € or £ before it or a 3-letter currency code after it (e.g. 0.12, $0.12, 0.12 EUR)";
    pub fn new(amount: f64) -> Self {
        Money { amount: if amount.is_finite() && amount > 0.0 { amount } else { 0.0 }, currency: None }
    }
    pub fn amount(&self) -> f64 {
        self.amount
    }
    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }
}

impl FromStr for Money {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let text = s.trim();
        let (symbol_currency, rest) = if let Some(r) = text.strip_prefix('$') {
            (Some("USD"), r)
        } else if let Some(r) = text.strip_prefix('€') {
            (Some("EUR"), r)
        } else if let Some(r) = text.strip_prefix('£') {
            (Some("GBP"), r)
        } else {
            (None, text)
        };
        let (number, unit) = split_number(rest).ok_or_else(err)?;
        let amount = finite_non_negative(number).ok_or_else(err)?;
        let code = match unit {
            "" => None,
            c if symbol_currency.is_none() && c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c),
            _ => return Err(err()),
        };
        Ok(Money { amount, currency: symbol_currency.or(code).map(str::to_string) })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.currency {
            Some(c) => write!(f, "{} {}", self.amount, c),
            None => write!(f, "{}", self.amount),
        }
    }
}
string_serde!(Money);

// ---------------------------------------------------------------------------------------
// Percent
// ---------------------------------------------------------------------------------------

/// A percentage `0%`..=`100%`, e.g. a utilisation threshold. Stored as a fraction.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    const EXPECTED: &'static str = "a percentage between 0% and 100% (e.g. 80%)";
    pub fn from_fraction(fraction: f64) -> Self {
        Percent(fraction.clamp(0.0, 1.0))
    }
    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl FromStr for Percent {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
        let value = finite_non_negative(number).ok_or_else(err)?;
        if unit != "%" || value > 100.0 {
            return Err(err());
        }
        Ok(Percent(value / 100.0))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0 * 100.0)
    }
}
string_serde!(Percent);

// ---------------------------------------------------------------------------------------
// TimeOfDay
// ---------------------------------------------------------------------------------------

/// A time of day `HH:MM` (24-hour clock), the start of a demand window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    const EXPECTED: &'static str = "a time of day HH:MM on a 24-hour clock (e.g. 18:30)";
    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes < 24 * 60).then_some(TimeOfDay { minutes })
    }
    pub fn minutes(self) -> u16 {
        self.minutes
    }
}

impl FromStr for TimeOfDay {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { expected: Self::EXPECTED, found: s.to_string() };
        let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u16 = h.parse().map_err(|_| err())?;
        let m: u16 = m.parse().map_err(|_| err())?;
        if h > 23 || m > 59 {
            return Err(err());
        }
        Ok(TimeOfDay { minutes: h * 60 + m })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}
string_serde!(TimeOfDay);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(Size(1309184 * 1024 * 1024).human(), "1.2Ti");
        assert_eq!(Size(512 * 1024 * 1024).human(), "512Mi");
        assert_eq!(Size(1536).human(), "1.5Ki");
        assert_eq!(Size(100).human(), "100");
        assert_eq!("20ms".parse::<Duration>().unwrap().as_millis(), 20.0);
        assert_eq!("1.5s".parse::<Duration>().unwrap().as_millis(), 1500.0);
        assert_eq!("250us".parse::<Duration>().unwrap().as_millis(), 0.25);
        assert_eq!("2m".parse::<Duration>().unwrap().as_secs(), 120.0);
        for bad in ["20", "ms", "-5ms", "1.ms", "5 parsecs", "1e3ms", ""] {
            assert!(bad.parse::<Duration>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn sizes_parse_binary_and_decimal() {
        assert_eq!("256Mi".parse::<Size>().unwrap().0, 256 << 20);
        assert_eq!("4Gi".parse::<Size>().unwrap().0, 4 << 30);
        assert_eq!("1G".parse::<Size>().unwrap().0, 1_000_000_000);
        assert_eq!("4GiB".parse::<Size>().unwrap().0, 4 << 30);
        assert_eq!("1.5Gi".parse::<Size>().unwrap().0, 3 << 29);
        assert_eq!("512".parse::<Size>().unwrap().0, 512);
        for bad in ["4gb", "1.5", "12Zi", "Gi", "4 Gi x"] {
            assert!(bad.parse::<Size>().is_err(), "{bad} should not parse");
        }
        assert_eq!(Size(256 << 20).to_string(), "256Mi");
        assert_eq!(Size(1_000_000_000).to_string(), "1G");
    }

    #[test]
    fn bandwidth_and_cpu() {
        assert_eq!("50Mbps".parse::<Bandwidth>().unwrap().0, 50_000_000);
        assert_eq!("10Gbps".parse::<Bandwidth>().unwrap().0, 10_000_000_000);
        assert_eq!("1.5Mbps".parse::<Bandwidth>().unwrap().0, 1_500_000);
        assert!("50MB/s".parse::<Bandwidth>().is_err());
        assert!("50".parse::<Bandwidth>().is_err());
        assert_eq!("500m".parse::<Cpu>().unwrap().0, 500);
        assert_eq!("2".parse::<Cpu>().unwrap().0, 2000);
        assert_eq!("0.25".parse::<Cpu>().unwrap().0, 250);
        assert!("0.0001".parse::<Cpu>().is_err(), "finer than a millicore");
        assert!("2 cores".parse::<Cpu>().is_err());
        assert_eq!(Cpu(1500).to_string(), "1500m");
        assert_eq!(Cpu(3000).to_string(), "3");
    }

    #[test]
    fn money_power_percent_time() {
        assert_eq!("$0.12".parse::<Money>().unwrap().amount(), 0.12);
        assert_eq!("0.12 EUR".parse::<Money>().unwrap().currency(), Some("EUR"));
        assert!("-1".parse::<Money>().is_err());
        assert!("$1 EUR".parse::<Money>().is_err());
        assert_eq!("1.2kW".parse::<Power>().unwrap().watts(), 1200.0);
        assert_eq!("80%".parse::<Percent>().unwrap().fraction(), 0.8);
        assert!("180%".parse::<Percent>().is_err());
        assert_eq!("18:30".parse::<TimeOfDay>().unwrap().minutes(), 18 * 60 + 30);
        assert!("24:00".parse::<TimeOfDay>().is_err());
    }

    proptest! {
        // A fixed seed: the same cases on every run (tests are deterministic).
        #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]
        #[test]
        fn size_round_trips(bytes in any::<u64>()) {
            let s = Size(bytes);
            let back = s.to_string().parse::<Size>();
            if bytes <= crate::limits::MAX_BYTES {
                prop_assert_eq!(back.unwrap(), s);
            } else {
                prop_assert!(back.is_err(), "{} is past MAX_BYTES", s);
            }
        }

        #[test]
        fn bandwidth_round_trips(bps in any::<u64>()) {
            let b = Bandwidth(bps);
            let back = b.to_string().parse::<Bandwidth>();
            if bps <= crate::limits::MAX_BANDWIDTH_BPS {
                prop_assert_eq!(back.unwrap(), b);
            } else {
                prop_assert!(back.is_err(), "{} is past MAX_BANDWIDTH_BPS", b);
            }
        }

        #[test]
        fn cpu_round_trips(milli in 0u64..=crate::limits::MAX_CPU_MILLICORES) {
            let c = Cpu(milli);
            prop_assert_eq!(c.to_string().parse::<Cpu>().unwrap(), c);
        }

        #[test]
        fn duration_round_trips(ms in 0.0f64..1e9) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }

        #[test]
        fn time_of_day_round_trips(minutes in 0u16..1440) {
            let t = TimeOfDay::from_minutes(minutes).unwrap();
            prop_assert_eq!(t.to_string().parse::<TimeOfDay>().unwrap(), t);
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,24}") {
            let _ = text.parse::<Duration>();
            let _ = text.parse::<Size>();
            let _ = text.parse::<Bandwidth>();
            let _ = text.parse::<Cpu>();
            let _ = text.parse::<Money>();
            let _ = text.parse::<Power>();
            let _ = text.parse::<Percent>();
            let _ = text.parse::<TimeOfDay>();
        }

        #[test]
        fn sizes_scale_exactly(n in 0u64..1_000_000, unit in prop::sample::select(vec!["Ki", "Mi", "Gi", "k", "M", "G"])) {
            let parsed: Size = format!("{n}{unit}").parse().unwrap();
            let m: u64 = match unit { "Ki" => 1 << 10, "Mi" => 1 << 20, "Gi" => 1 << 30, "k" => 1000, "M" => 1_000_000, _ => 1_000_000_000 };
            prop_assert_eq!(parsed.0, n * m);
        }
    }
}
