//! Metric families as values, and the text exposition format they are
//! written in.
//!
//! A [`Family`] carries its name, HELP text, type and label names; the
//! label count is part of its type, so a sample with the wrong number of
//! label values does not compile. Samples are written straight into the
//! response buffer: there is no intermediate model of the exposition.

use bytes::{BufMut as _, BytesMut};

/// A family's `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// The label names of a family, in the order the values are given and
/// written. Families that share a `Labels` share its rendered text.
#[derive(Clone, Copy, Debug)]
pub struct Labels<const N: usize>(pub [&'static str; N]);

/// Label text of many series, each rendered once by [`Labels::render`]
/// into one string: tens of thousands of series cost one allocation, not
/// one each.
#[derive(Debug, Default)]
pub struct Arena(String);

/// Where one series' label text (`a="x",b="y"`, escaped) is in its
/// [`Arena`]; `N` is the number of labels, as in [`Family`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rendered<const N: usize> {
    start: usize,
    end: usize,
}

impl Arena {
    pub fn get<const N: usize>(&self, r: Rendered<N>) -> &str {
        &self.0[r.start..r.end]
    }

    /// Gives back the room kept for growth, once the text is complete.
    pub fn shrink(&mut self) {
        self.0.shrink_to_fit();
    }

    /// Copies `r`, rendered in `from`, to the end of this arena.
    pub fn copy<const N: usize>(&mut self, from: &Self, r: Rendered<N>) -> Rendered<N> {
        let start = self.0.len();
        self.0.push_str(from.get(r));
        Rendered {
            start,
            end: self.0.len(),
        }
    }
}

impl<const N: usize> Labels<N> {
    /// Renders `values` at the end of `arena`.
    pub fn render(&self, values: [&str; N], arena: &mut Arena) -> Rendered<N> {
        let text = &mut arena.0;
        let start = text.len();
        for (i, (name, value)) in self.0.iter().zip(values).enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(name);
            text.push_str("=\"");
            escape_label_value(value, text);
            text.push('"');
        }
        Rendered {
            start,
            end: text.len(),
        }
    }
}

pub struct Family<const N: usize> {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: Labels<N>,
}

/// What every family has in common, for checks over all of them.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

impl<const N: usize> Family<N> {
    /// A counter family: `name`, its HELP text and its label names.
    pub const fn counter(name: &'static str, help: &'static str, labels: Labels<N>) -> Self {
        Self {
            name,
            help,
            kind: Kind::Counter,
            labels,
        }
    }

    /// A gauge family: `name`, its HELP text and its label names.
    pub const fn gauge(name: &'static str, help: &'static str, labels: Labels<N>) -> Self {
        Self {
            name,
            help,
            kind: Kind::Gauge,
            labels,
        }
    }

    #[cfg(test)]
    pub const fn meta(&'static self) -> Meta {
        Meta {
            name: self.name,
            help: self.help,
            kind: self.kind,
            labels: &self.labels.0,
        }
    }

    /// Starts writing this family's samples to `out`. HELP and TYPE are
    /// written with the first sample, so a family without samples leaves
    /// no trace, as the prometheus crate's registry does.
    pub fn open<'a>(&'static self, out: &'a mut BytesMut) -> Section<'a, N> {
        Section {
            family: self,
            out,
            started: false,
        }
    }

    /// Writes the whole family with its one sample (the family has no
    /// labels or they are given here).
    pub fn write(&'static self, out: &mut BytesMut, values: [&str; N], value: impl Value) {
        self.open(out).sample(values, value);
    }
}

/// One family being written: its header, then its samples.
pub struct Section<'a, const N: usize> {
    family: &'static Family<N>,
    out: &'a mut BytesMut,
    started: bool,
}

impl<const N: usize> Section<'_, N> {
    pub fn sample(&mut self, values: [&str; N], value: impl Value) {
        let mut once = Arena::default();
        let labels = self.family.labels.render(values, &mut once);
        self.rendered(&once, labels, value);
    }

    /// A sample whose label text was rendered earlier (and is kept).
    pub fn rendered(&mut self, arena: &Arena, labels: Rendered<N>, value: impl Value) {
        if !self.started {
            self.started = true;
            self.header();
        }
        let out = &mut *self.out;
        out.extend_from_slice(self.family.name.as_bytes());
        if N > 0 {
            out.put_u8(b'{');
            out.extend_from_slice(arena.get(labels).as_bytes());
            out.put_u8(b'}');
        }
        out.put_u8(b' ');
        value.write(out);
        out.put_u8(b'\n');
    }

    fn header(&mut self) {
        let f = self.family;
        let out = &mut *self.out;
        // HELP texts are constants checked by a test to need no escaping.
        for part in ["# HELP ", f.name, " ", f.help, "\n# TYPE ", f.name, " "] {
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(f.kind.as_str().as_bytes());
        out.put_u8(b'\n');
    }
}

/// A sample value as the text format spells it.
pub trait Value {
    fn write(self, out: &mut BytesMut);
}

/// Counts are exact integers (the prometheus crate went through `f64` and
/// rounded above 2^53).
impl Value for u64 {
    fn write(self, out: &mut BytesMut) {
        out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
    }
}

impl Value for bool {
    fn write(self, out: &mut BytesMut) {
        out.put_u8(if self { b'1' } else { b'0' });
    }
}

/// Durations: Rust's shortest round-trip form, as the prometheus crate
/// wrote them.
impl Value for f64 {
    fn write(self, out: &mut BytesMut) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

/// Escapes a label value as the text format requires: backslash, double
/// quote and line feed; every other character, non-ASCII included, is
/// written as its UTF-8.
pub fn escape_label_value(value: &str, out: &mut String) {
    let mut rest = value;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder as _, IntGaugeVec, Opts, Registry, TextEncoder};
    use proptest::prelude::*;

    use super::*;

    /// The prometheus crate's own encoding of one gauge with these labels.
    fn crate_encoding(names: &[&str], values: &[&str]) -> String {
        let gauge = IntGaugeVec::new(Opts::new("aliasstat_test", "A test family."), names).unwrap();
        gauge.with_label_values(values).set(7);
        let registry = Registry::new();
        registry.register(Box::new(gauge)).unwrap();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    static TEST: Family<2> = Family {
        name: "aliasstat_test",
        help: "A test family.",
        kind: Kind::Gauge,
        labels: Labels(["alias", "owner"]),
    };

    fn ours(values: [&str; 2]) -> String {
        let mut out = BytesMut::new();
        TEST.write(&mut out, values, 7);
        String::from_utf8(out.to_vec()).unwrap()
    }

    proptest! {
        #[test]
        fn escaping_matches_the_prometheus_crate(
            alias in any::<String>(),
            owner in "[\\\\\"\n a-zé€😀]*",
        ) {
            prop_assert_eq!(
                ours([&alias, &owner]),
                crate_encoding(&TEST.labels.0, &[&alias, &owner])
            );
        }
    }

    #[test]
    fn hostile_values_are_escaped() {
        assert_eq!(
            ours(["a\\b\"c\nd", "Zürich ☃"]),
            "# HELP aliasstat_test A test family.\n# TYPE aliasstat_test gauge\n\
             aliasstat_test{alias=\"a\\\\b\\\"c\\nd\",owner=\"Zürich ☃\"} 7\n"
        );
    }
}
