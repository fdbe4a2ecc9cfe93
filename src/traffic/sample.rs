//! Which records are kept whole and scored: a share, decided by a hash of the trace id (or of the
//! record when there is none), so that the same record is always kept or always dropped, by any
//! process, and feedback arriving later for a kept record finds it.

use sha2::{Digest, Sha256};

/// A share of records to keep, from `sample: 10%` or `sample: 0.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRate(f64);

impl SampleRate {
    pub const ALL: Self = Self(1.0);

    /// `10%`, `0.5%`, `0.1` or `1`; between 0 and 100%.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let share = match t.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
            None => t.parse::<f64>(),
        }
        .map_err(|_| format!("`{text}` is not a share: write it as 10% or 0.1"))?;
        Self::new(share).ok_or_else(|| format!("`{text}` is not between 0% and 100%"))
    }

    pub fn new(share: f64) -> Option<Self> {
        (share.is_finite() && (0.0..=1.0).contains(&share)).then_some(Self(share))
    }

    pub fn share(self) -> f64 {
        self.0
    }

    /// Whether the record with this key is in the sample. Deterministic, and nested: a record
    /// kept at 5% is kept at 10% too.
    pub fn keeps(self, key: &[u8]) -> bool {
        if self.0 >= 1.0 {
            return true;
        }
        if self.0 <= 0.0 {
            return false;
        }
        let digest = Sha256::digest(key);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // The top 53 bits as a uniform number in [0, 1).
        let u = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
        u < self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // the shares are exact in binary or parsed the same way
    fn shares_parse_as_written() {
        assert_eq!(SampleRate::parse("10%").unwrap().share(), 0.1);
        assert_eq!(SampleRate::parse(" 0.5 % ").unwrap().share(), 0.005);
        assert_eq!(SampleRate::parse("0.25").unwrap().share(), 0.25);
        assert_eq!(SampleRate::parse("100%").unwrap(), SampleRate::ALL);
        assert!(
            SampleRate::parse("150%")
                .unwrap_err()
                .contains("between 0% and 100%")
        );
        assert!(SampleRate::parse("ten").unwrap_err().contains("10% or 0.1"));
        assert!(SampleRate::parse("-1").is_err());
    }

    #[test]
    fn the_sample_is_deterministic_nested_and_near_its_share() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("{i:032x}")).collect();
        let five = SampleRate::parse("5%").unwrap();
        let ten = SampleRate::parse("10%").unwrap();
        let kept5: Vec<&String> = keys.iter().filter(|k| five.keeps(k.as_bytes())).collect();
        let kept10 = keys.iter().filter(|k| ten.keeps(k.as_bytes())).count();
        // Binomial(20000, 0.1): sd 42; six sd either side.
        assert!((1750..=2250).contains(&kept10), "{kept10}");
        assert!((820..=1180).contains(&kept5.len()), "{}", kept5.len());
        assert!(kept5.iter().all(|k| ten.keeps(k.as_bytes())));
        assert!(
            keys.iter()
                .all(|k| ten.keeps(k.as_bytes()) == ten.keeps(k.as_bytes()))
        );
        assert!(keys.iter().all(|k| SampleRate::ALL.keeps(k.as_bytes())));
        assert!(!SampleRate::new(0.0).unwrap().keeps(b"x"));
    }
}
