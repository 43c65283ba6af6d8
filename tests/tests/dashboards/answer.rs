//! What a query returned, and the views of it that the facts compare.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use lab::prometheus::{Sample, Series};

/// What a query returned.
#[derive(Debug)]
pub enum Answer {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Answer {
    pub fn len(&self) -> usize {
        match self {
            Self::Vector(v) => v.len(),
            Self::Matrix(m) => m.len(),
        }
    }

    pub fn label_sets(&self) -> Vec<&BTreeMap<String, String>> {
        match self {
            Self::Vector(v) => v.iter().map(|s| &s.labels).collect(),
            Self::Matrix(m) => m.iter().map(|s| &s.labels).collect(),
        }
    }

    /// The values of `labels` of every series, "" where one is missing.
    pub fn keys(&self, labels: &[&str]) -> BTreeSet<Vec<String>> {
        self.label_sets()
            .into_iter()
            .map(|l| {
                labels
                    .iter()
                    .map(|n| l.get(*n).cloned().unwrap_or_default())
                    .collect()
            })
            .collect()
    }

    /// An instant vector as `label value -> sample value`.
    pub fn by(&self, label: &str) -> Result<BTreeMap<String, f64>> {
        let Self::Vector(v) = self else {
            bail!("expected an instant vector, got {self:?}");
        };
        Ok(v.iter()
            .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
            .collect())
    }

    /// Every value: of each sample, or of each series at each step.
    pub fn values(&self) -> Vec<f64> {
        match self {
            Self::Vector(v) => v.iter().map(|s| s.value).collect(),
            Self::Matrix(m) => m
                .iter()
                .flat_map(|s| s.values.iter().map(|v| v.1))
                .collect(),
        }
    }

    /// The value of a one-sample instant vector.
    pub fn only(&self) -> Result<f64> {
        match self {
            Self::Vector(v) if v.len() == 1 => Ok(v[0].value),
            _ => bail!("expected one sample, got {self:?}"),
        }
    }

    /// Per series with `label`: its values over time, runs of the same
    /// value folded into one (`[1, 0]`: one step down).
    pub fn shapes(&self, label: &str) -> Result<BTreeMap<String, Vec<f64>>> {
        let Self::Matrix(m) = self else {
            bail!("expected a range result, got {self:?}");
        };
        Ok(m.iter()
            .map(|s| {
                let mut shape: Vec<f64> = s.values.iter().map(|v| v.1).collect();
                shape.dedup();
                (s.labels.get(label).cloned().unwrap_or_default(), shape)
            })
            .collect())
    }
}
