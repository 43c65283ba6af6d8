//! top's screen as `capture-pane -p` printed it, read back into rows.

use anyhow::{Result, ensure};

pub struct Screen {
    pub text: String,
}

#[derive(Debug)]
pub struct ScreenRow {
    /// The `!` in the first column.
    pub marked: bool,
    pub name: String,
    pub address: String,
    pub state: String,
    pub owner: String,
    /// In the unit on screen (bit/s or pkt/s); None for `-`.
    pub rx: Option<f64>,
    pub tx: Option<f64>,
}

impl Screen {
    /// The table's rows, top to bottom: the lines after the header that
    /// starts with `NAME`, up to the first blank one.
    fn rows(&self) -> Vec<ScreenRow> {
        self.text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("NAME"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(parse_row)
            .collect()
    }

    /// Every line with its words one space apart, for comparing whole
    /// lines whatever the column widths.
    pub fn words(&self) -> Vec<String> {
        self.text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    pub fn row(&self, name: &str) -> Option<ScreenRow> {
        self.rows().into_iter().find(|r| r.name == name)
    }

    /// In the peers drill-down: the rx rate shown for `peer`, `None` while
    /// it is `-` or the peer is not listed. Rows are `PEER INTERFACE RX TX
    /// RX-TOTAL TX-TOTAL LAST-SEEN` after the header starting with `PEER`.
    pub fn peer_rx(&self, peer: &str) -> Option<f64> {
        self.text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("PEER"))
            .skip(1)
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next()? == peer).then_some(())?;
                let _interface = words.next()?;
                rate(&mut words)?
            })
    }

    /// Fails unless `names` appear in this order (other rows may be
    /// between them).
    pub fn order(&self, names: &[&str]) -> Result<()> {
        let shown: Vec<String> = self.rows().into_iter().map(|r| r.name).collect();
        let positions: Vec<Option<usize>> = names
            .iter()
            .map(|n| shown.iter().position(|s| s == n))
            .collect();
        ensure!(
            positions.iter().all(Option::is_some) && positions.is_sorted(),
            "expected the rows in the order {names:?}, got {shown:?}"
        );
        Ok(())
    }
}

/// `! name address interface state owner RX TX RX-TOTAL TX-TOTAL`, where a
/// rate is `1.64 Mbit/s` or `-`.
fn parse_row(line: &str) -> Option<ScreenRow> {
    let marked = line.starts_with('!');
    let mut words = line.trim_start_matches('!').split_whitespace();
    let name = words.next()?.to_owned();
    let address = words.next()?.to_owned();
    let _interface = words.next()?;
    let state = words.next()?.to_owned();
    let owner = words.next()?.to_owned();
    Some(ScreenRow {
        marked,
        name,
        address,
        state,
        owner,
        rx: rate(&mut words)?,
        tx: rate(&mut words)?,
    })
}

/// The next rate of `words`: `1.64 Mbit/s` (two words) or `-`.
fn rate<'a>(words: &mut impl Iterator<Item = &'a str>) -> Option<Option<f64>> {
    let value = words.next()?;
    if value == "-" {
        return Some(None);
    }
    Some(Some(value.parse::<f64>().ok()? * prefix(words.next()?)?))
}

/// The multiplier of `kbit/s`, `Mpkt/s` and the like.
fn prefix(unit: &str) -> Option<f64> {
    let scale = match unit
        .strip_suffix("bit/s")
        .or_else(|| unit.strip_suffix("pkt/s"))?
    {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some(scale)
}
