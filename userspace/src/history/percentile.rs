//! The Nth percentile of interval rates, as billing contracts define it,
//! and the rules that combine the two directions.
//!
//! Sort the N interval rates ascending and take the value at position
//! ⌈p·N/100⌉, 1-based. Only intervals that have a sample take part;
//! missing ones are left out (and reported as coverage by the caller), so
//! a gap never counts as a quiet interval.

use std::{fmt, str::FromStr};

/// A percentile given with up to three decimals (`95`, `99.9`), held in
/// thousandths so that ⌈p·N/100⌉ is computed without rounding error:
/// in floating point, 99.9 × 1000 / 100 comes out a hair above 999.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentile {
    milli: u64,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{given}` is not a percentile: give a number above 0 and at most 100, with up to three decimals (95, 99.9)"
)]
pub struct PercentileError {
    given: String,
}

impl Percentile {
    pub const P95: Self = Self { milli: 95_000 };

    /// The 1-based position of this percentile among `n` sorted values;
    /// `None` when there are none.
    pub fn rank(self, n: usize) -> Option<usize> {
        let n = n as u64;
        // ⌈milli·n / 100 000⌉, and at least the first value.
        let rank = (self.milli * n).div_ceil(100_000).max(1);
        (n > 0).then_some(rank as usize)
    }

    /// The percentile of `values`, which it reorders. Selecting the value
    /// at the rank gives what sorting would put there, in linear time: a
    /// monthly report takes two of these per row over 8640 intervals.
    pub fn of(self, values: &mut [f64]) -> Option<f64> {
        let r = self.rank(values.len())?;
        Some(*values.select_nth_unstable_by(r - 1, f64::total_cmp).1)
    }
}

impl FromStr for Percentile {
    type Err = PercentileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || PercentileError { given: s.into() };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
            return Err(error());
        }
        let whole: u64 = whole.parse().map_err(|_| error())?;
        let frac: u64 = format!("{frac:0<3}").parse().map_err(|_| error())?;
        let milli = whole.checked_mul(1000).ok_or_else(error)? + frac;
        if milli == 0 || milli > 100_000 {
            return Err(error());
        }
        Ok(Self { milli })
    }
}

impl fmt::Display for Percentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.milli / 1000, self.milli % 1000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Which rate a percentile is taken of (`report --direction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// Traffic to the address (received, ingress).
    In,
    /// Traffic from the address (transmitted, egress).
    Out,
    /// The larger of the in and the out percentile, as most transit
    /// contracts bill.
    Max,
    /// The percentile of each interval's in + out.
    Sum,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Max => "max",
            Self::Sum => "sum",
        }
    }

    /// The percentile under this rule of intervals given as (in, out)
    /// rates, one pair per interval that has a sample.
    pub fn apply(self, p: Percentile, rates: &[(f64, f64)]) -> Option<f64> {
        let column = |f: fn(&(f64, f64)) -> f64| rates.iter().map(f).collect::<Vec<f64>>();
        match self {
            Self::In => p.of(&mut column(|r| r.0)),
            Self::Out => p.of(&mut column(|r| r.1)),
            Self::Sum => p.of(&mut column(|r| r.0 + r.1)),
            Self::Max => {
                let inbound = p.of(&mut column(|r| r.0))?;
                let outbound = p.of(&mut column(|r| r.1))?;
                Some(inbound.max(outbound))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Percentile {
        s.parse().unwrap()
    }

    #[test]
    fn rank_is_the_ceiling_of_p_n_over_100() {
        for (percentile, n, rank) in [
            ("95", 20, Some(19)),
            ("95", 100, Some(95)),
            ("95", 8640, Some(8208)),
            // N < 20: the top value until ⌈0.95·N⌉ falls below N.
            ("95", 1, Some(1)),
            ("95", 10, Some(10)),
            ("95", 19, Some(19)),
            ("95", 21, Some(20)),
            ("50", 3, Some(2)),
            ("50", 4, Some(2)),
            ("100", 7, Some(7)),
            ("0.001", 5, Some(1)),
            // Exactly 999 in decimal; floating point would say 1000.
            ("99.9", 1000, Some(999)),
            ("95", 0, None),
        ] {
            assert_eq!(p(percentile).rank(n), rank, "p{percentile} of {n}");
        }
    }

    #[test]
    fn percentile_sorts_and_keeps_ties() {
        // Twenty intervals: ranks 1..=20; the 95th is the 19th smallest.
        let mut rates: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(Percentile::P95.of(&mut rates), Some(19.0));
        // Ties: the value at the rank, whatever its neighbours.
        let mut tied = vec![5.0, 7.0, 7.0, 7.0, 1.0];
        assert_eq!(p("50").of(&mut tied), Some(7.0));
        assert_eq!(Percentile::P95.of(&mut tied), Some(7.0));
        let mut flat = vec![3.0; 40];
        assert_eq!(Percentile::P95.of(&mut flat), Some(3.0));
        assert_eq!(Percentile::P95.of(&mut []), None);
    }

    #[test]
    fn missing_intervals_are_not_zeros() {
        // A day of 288 five-minute intervals of which 100 have samples:
        // the caller passes only those 100, and the 95th is the 95th of
        // them. Counting the 188 gaps as zeros would give the 274th of
        // 288, i.e. a far lower value.
        let mut sampled: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Percentile::P95.of(&mut sampled), Some(95.0));
        let mut padded: Vec<f64> = std::iter::repeat_n(0.0, 188)
            .chain((1..=100).map(f64::from))
            .collect();
        assert_eq!(Percentile::P95.of(&mut padded), Some(86.0));
    }

    #[test]
    fn direction_rules() {
        // Five intervals (in, out): N < 20, so the 95th is the largest.
        let rates = [(1.0, 9.0), (8.0, 2.0), (3.0, 3.0), (2.0, 1.0), (4.0, 4.0)];
        let p95 = Percentile::P95;
        assert_eq!(Rule::In.apply(p95, &rates), Some(8.0));
        assert_eq!(Rule::Out.apply(p95, &rates), Some(9.0));
        assert_eq!(Rule::Max.apply(p95, &rates), Some(9.0));
        // Per interval: 10, 10, 6, 3, 8; the largest is 10, not 8 + 9.
        assert_eq!(Rule::Sum.apply(p95, &rates), Some(10.0));
        // The median: in 3, out 3, max 3; sums 3 6 8 10 10 → 8.
        let p50 = p("50");
        assert_eq!(Rule::In.apply(p50, &rates), Some(3.0));
        assert_eq!(Rule::Out.apply(p50, &rates), Some(3.0));
        assert_eq!(Rule::Max.apply(p50, &rates), Some(3.0));
        assert_eq!(Rule::Sum.apply(p50, &rates), Some(8.0));
        assert_eq!(Rule::Max.apply(p95, &[]), None);
    }

    #[test]
    fn parses_and_prints_percentiles() {
        for (given, shown) in [
            ("95", "95"),
            ("99.9", "99.9"),
            ("99.990", "99.99"),
            ("100", "100"),
        ] {
            assert_eq!(p(given).to_string(), shown);
        }
        for bad in [
            "0", "100.001", "-5", "95%", "", ".5", "1.2345", "abc", "1e2",
        ] {
            assert!(bad.parse::<Percentile>().is_err(), "{bad:?} accepted");
        }
    }
}
