//! Draws a [`Top`] with ratatui: a three-line header, the table, a status
//! line and a footer of keys, with the help screen over the table.

mod services;

use std::{ops::Range, time::Duration};

use common::Counters;
use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line as Text, Span},
    widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap},
};

use super::{
    peers::{Drill, Pane},
    state::{Attention, Line, Link, Mode, Rate, Sort, Top, Unit, totals},
};
use crate::{commands::table::escape, peers::time::rfc3339};

/// `1.64 Mbit/s`: three significant digits and an SI prefix, so that
/// columns stay narrow and a glance gives the order of magnitude.
fn si(value: f64, unit: &str) -> String {
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut v = value;
    let mut i = 0;
    while v >= 999.5 && i < PREFIXES.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if (i == 0 && v.fract() == 0.0) || v >= 99.95 {
        0
    } else if v >= 9.995 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {}{unit}", PREFIXES[i])
}

fn interval(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn rate(r: Option<Rate>, unit: Unit) -> String {
    match (r, unit) {
        (None, _) => "-".into(),
        (Some(r), Unit::Bits) => si(r.bits, "bit/s"),
        (Some(r), Unit::Packets) => si(r.packets, "pkt/s"),
    }
}

fn total(c: Counters, unit: Unit) -> String {
    match unit {
        Unit::Bits => si(c.bytes as f64, "B"),
        Unit::Packets => si(c.packets as f64, "pkt"),
    }
}

const fn attention_style(a: Attention) -> Style {
    match a {
        Attention::Undocumented => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Attention::NotHere => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

pub fn draw(frame: &mut Frame<'_>, top: &Top) {
    // A daemon that went away gets two lines: what happened matters more
    // than a row of the table.
    let status_height = if matches!(top.link, Link::Down { .. }) {
        2
    } else {
        1
    };
    let [header, table, status, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(status_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(top)), header);
    match &top.drill {
        Some(drill) if top.mode == Mode::Peers => match drill.pane {
            Pane::Peers => draw_peers(frame, drill, top.view.unit, table),
            Pane::Services => services::draw(frame, drill, top.view.unit, table),
        },
        _ => draw_table(frame, top, table),
    }
    frame.render_widget(
        Paragraph::new(status_line(top)).wrap(Wrap { trim: true }),
        status,
    );
    frame.render_widget(Paragraph::new(footer_line(top)), footer);
    if top.mode == Mode::Help {
        draw_help(frame, top, table);
    }
}

fn header_lines(top: &Top) -> Vec<Text<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let s = &top.source;
    let mut first = vec![
        Span::styled("aliasstat top", bold),
        Span::raw(format!(
            " · {} · {} · every {}",
            escape(&s.host),
            escape(&s.url),
            interval(s.interval)
        )),
    ];
    if top.paused() {
        first.push(Span::styled(
            "  PAUSED",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }

    vec![
        Text::from(first),
        Text::from(vec![
            Span::styled("counting on", bold),
            Span::raw(format!(" {}", counting(top))),
        ]),
        Text::from(totals_line(top)),
    ]
}

/// "eth0 (tc rx, tc tx), …", one group per interface in the daemon's order.
fn counting(top: &Top) -> String {
    match &top.attachments {
        None => "? (read from /api/v1/status once the daemon answers)".to_owned(),
        Some(a) if a.is_empty() => "no program attached".to_owned(),
        Some(attachments) => {
            let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
            for a in attachments {
                let hook = if a.attached {
                    format!("{} {}", a.hook, a.direction)
                } else {
                    format!("{} {} DETACHED", a.hook, a.direction)
                };
                match groups.iter_mut().find(|(i, _)| *i == a.interface) {
                    Some((_, hooks)) => hooks.push(hook),
                    None => groups.push((&a.interface, vec![hook])),
                }
            }
            groups
                .iter()
                .map(|(i, hooks)| format!("{} ({})", escape(i), hooks.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Total rates, how many rows are shown, the sort and the filter.
fn totals_line(top: &Top) -> Vec<Span<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let lines = top.lines();
    let sum = totals(lines);
    let unit = top.view.unit;
    let arrow = match (top.view.sort == Sort::Name, top.view.reverse) {
        (false, false) | (true, true) => "↓",
        _ => "↑",
    };
    let mut third = vec![
        Span::styled("total", bold),
        Span::raw(format!(
            " rx {}  tx {}",
            rate(sum.map(|r| r.rx), unit),
            rate(sum.map(|r| r.tx), unit)
        )),
        Span::raw(format!(
            " · {} of {} addresses · sort {} {arrow}",
            top.shown().len(),
            lines.len(),
            top.view.sort.as_str()
        )),
    ];
    if !top.view.filter.is_empty() {
        third.push(Span::raw(format!(
            " · filter \"{}\"",
            escape(&top.view.filter)
        )));
    }
    third
}

/// The columns; spare width is left at the right.
const TITLES: [&str; 10] = [
    "",
    "NAME",
    "ADDRESS",
    "INTERFACE",
    "STATE",
    "OWNER",
    "RX",
    "TX",
    "RX TOTAL",
    "TX TOTAL",
];
/// Numbers are right-aligned so that magnitudes line up.
const RIGHT: [bool; 10] = [
    false, false, false, false, false, false, true, true, true, true,
];
/// What a narrow terminal keeps: the owner and the totals give way to
/// the rates.
const NARROW: [usize; 7] = [0, 1, 2, 3, 4, 6, 7];

fn cells(line: &Line, unit: Unit) -> [String; 10] {
    let e = &line.entry;
    let dash = || "-".to_owned();
    [
        if line.attention().is_some() { "!" } else { " " }.to_owned(),
        escape(&line.name()).into_owned(),
        e.address.to_string(),
        e.interface
            .as_deref()
            .map_or_else(dash, |i| escape(i).into_owned()),
        e.state.to_string(),
        e.owner
            .as_deref()
            .filter(|o| !o.is_empty())
            .map_or_else(dash, |o| escape(o).into_owned()),
        rate(line.rates.map(|r| r.rx), unit),
        rate(line.rates.map(|r| r.tx), unit),
        total(e.rx, unit),
        total(e.tx, unit),
    ]
}

fn draw_table(frame: &mut Frame<'_>, top: &Top, area: Rect) {
    let unit = top.view.unit;
    let shown = top.shown();
    let rows: Vec<([String; 10], Option<Attention>)> = shown
        .iter()
        .map(|l| (cells(l, unit), l.attention()))
        .collect();
    let widths = widths(rows.iter().map(|(cells, _)| cells));
    let spacing = 1;
    let wide: usize = widths.iter().map(|w| w + spacing).sum();
    let columns: Vec<usize> = if wide <= usize::from(area.width) {
        (0..10).collect()
    } else {
        NARROW.to_vec()
    };

    let cell = |i: usize, text: String| {
        if RIGHT[i] {
            Cell::from(Text::from(text).right_aligned())
        } else {
            Cell::from(text)
        }
    };
    let header = Row::new(columns.iter().map(|&i| cell(i, TITLES[i].to_owned())))
        .style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    let selected = top.selected.min(rows.len().saturating_sub(1));
    let body = rows.into_iter().enumerate().map(|(n, (cells, attention))| {
        let row = Row::new(columns.iter().map(|&i| cell(i, cells[i].clone())));
        let style = attention.map_or_else(Style::new, attention_style);
        // The row Enter opens.
        if n == selected {
            row.style(style.add_modifier(Modifier::REVERSED))
        } else {
            row.style(style)
        }
    });
    let constraints = columns
        .iter()
        .map(|&i| Constraint::Length(widths[i] as u16));
    let table = Table::new(body, constraints)
        .header(header)
        .column_spacing(spacing as u16);
    frame.render_widget(table, area);
    if shown.is_empty() && !top.lines().is_empty() {
        let note = Rect {
            y: area.y + 1,
            height: 1,
            ..area
        };
        frame.render_widget(
            Paragraph::new(format!(
                " no address matches \"{}\"; Esc clears the filter",
                escape(&top.view.filter)
            )),
            note,
        );
    }
}

const PEER_TITLES: [&str; 7] = [
    "PEER",
    "INTERFACE",
    "RX",
    "TX",
    "RX TOTAL",
    "TX TOTAL",
    "LAST SEEN",
];

/// The drill-down: one address's peers, busiest first.
fn draw_peers(frame: &mut Frame<'_>, drill: &Drill, unit: Unit, area: Rect) {
    let complete = if drill.complete {
        "complete"
    } else {
        "INCOMPLETE: the daemon's peer table was full"
    };
    let title = Text::from(vec![
        Span::styled(
            format!("peers of {} ({})", escape(&drill.name), drill.address),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(" · {} listed · {complete}", drill.lines.len())),
    ]);
    let rows: Vec<[String; 7]> = drill
        .lines
        .iter()
        .map(|l| {
            [
                l.peer.to_string(),
                escape(&l.interface).into_owned(),
                rate(l.rates.map(|r| r.rx), unit),
                rate(l.rates.map(|r| r.tx), unit),
                total(l.rx, unit),
                total(l.tx, unit),
                rfc3339(l.last_seen.0),
            ]
        })
        .collect();
    let note = match (&drill.error, drill.lines.is_empty()) {
        (Some(e), _) => Some(format!(" reading the peers failed: {}", escape(e))),
        (None, true) => Some(" no peers listed (yet): they follow with the next sample".to_owned()),
        _ => None,
    };
    let list = List {
        title,
        titles: PEER_TITLES,
        rows,
        right: 2..6,
        note,
    };
    list.draw(frame, area);
}

/// A pane of the drill-down: a title line over a table whose columns are
/// as wide as their widest cell, with a note on its first row if any.
struct List<const N: usize> {
    title: Text<'static>,
    titles: [&'static str; N],
    rows: Vec<[String; N]>,
    /// The columns of numbers, aligned right.
    right: Range<usize>,
    note: Option<String>,
}

impl<const N: usize> List<N> {
    fn draw(self, frame: &mut Frame<'_>, area: Rect) {
        let [title, list] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        frame.render_widget(Paragraph::new(self.title), title);
        let mut widths = self.titles.map(str::len);
        for cells in &self.rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let cell = |i: usize, text: String| {
            if self.right.contains(&i) {
                Cell::from(Text::from(text).right_aligned())
            } else {
                Cell::from(text)
            }
        };
        let header = Row::new((0..N).map(|i| cell(i, self.titles[i].to_owned())))
            .style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD));
        let body = self
            .rows
            .into_iter()
            .map(|cells| Row::new(cells.into_iter().enumerate().map(|(i, c)| cell(i, c))));
        // The last column takes what is left and clips there: a cell as
        // wide as a slice's process list must not squeeze the numbers.
        let mut columns = widths.map(|w| Constraint::Length(w as u16));
        if let Some(last) = columns.last_mut() {
            *last = Constraint::Fill(1);
        }
        let table = Table::new(body, columns).header(header).column_spacing(1);
        frame.render_widget(table, list);
        if let Some(note) = self.note {
            let at = Rect {
                y: list.y + 1,
                height: 1,
                ..list
            };
            frame.render_widget(Paragraph::new(note), at);
        }
    }
}

/// Each column as wide as its widest cell, within bounds.
fn widths<'a>(rows: impl Iterator<Item = &'a [String; 10]>) -> [usize; 10] {
    let mut widths: [usize; 10] = TITLES.map(str::len);
    for cells in rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Wide enough for "undocumented" and "99.9 Mbit/s" whatever is shown,
    // so that columns do not jump as rates change or the filter narrows.
    widths[4] = widths[4].max(12);
    for w in &mut widths[6..8] {
        *w = (*w).max(11);
    }
    widths[1] = widths[1].min(24);
    widths[5] = widths[5].min(16);
    widths
}

fn status_line(top: &Top) -> Text<'static> {
    let every = interval(top.source.interval);
    match &top.link {
        Link::Connecting => Text::raw(format!("connecting to {} …", escape(&top.source.url))),
        Link::Down { error, failures } => Text::styled(
            format!(
                "daemon unreachable, retrying every {every} ({failures} failed{}): {}",
                if top.lines().is_empty() {
                    ""
                } else {
                    "; rows are from before"
                },
                escape(error)
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Link::Up if top.paused() => Text::styled(
            "paused: rows frozen, sampling goes on; p resumes",
            Style::new().fg(Color::Yellow),
        ),
        Link::Up if top.lines().iter().all(|l| l.rates.is_none()) => {
            Text::raw(format!("first sample read; rates follow in {every}"))
        }
        Link::Up => {
            let mut spans = Vec::new();
            // The legend explains what is on screen, so only shown rows count.
            let lines = top.shown();
            if lines
                .iter()
                .any(|l| l.attention() == Some(Attention::Undocumented))
            {
                spans.push(Span::styled(
                    "! undocumented address with traffic  ",
                    attention_style(Attention::Undocumented),
                ));
            }
            if lines
                .iter()
                .any(|l| l.attention() == Some(Attention::NotHere))
            {
                spans.push(Span::styled(
                    "! traffic for an address not on this host",
                    attention_style(Attention::NotHere),
                ));
            }
            Text::from(spans)
        }
    }
}

fn footer_line(top: &Top) -> Text<'static> {
    let key = Style::new().add_modifier(Modifier::REVERSED);
    if top.mode == Mode::Filter {
        return Text::from(vec![
            Span::styled("filter", key),
            Span::raw(format!(" {}_  ", escape(&top.view.filter))),
            Span::styled("Enter", key),
            Span::raw(" keep  "),
            Span::styled("Esc", key),
            Span::raw(" clear"),
        ]);
    }
    if let Some(drill) = top.drill.as_ref().filter(|_| top.mode == Mode::Peers) {
        let other = match drill.pane {
            Pane::Peers => "services",
            Pane::Services => "peers",
        };
        let spans = [("Esc", "back to the table"), ("s", other), ("q", "quit")]
            .into_iter()
            .flat_map(|(k, what)| [Span::styled(k, key), Span::raw(format!(" {what}  "))]);
        return Text::from(spans.collect::<Vec<_>>());
    }
    let keys = [
        ("q", "quit"),
        ("?", "help"),
        ("/", "filter"),
        ("r t a n", "sort"),
        ("i", "invert"),
        ("b", "bits/pkts"),
        ("p", if top.paused() { "resume" } else { "pause" }),
        ("↑↓ Enter", "peers"),
    ];
    let spans = keys
        .iter()
        .flat_map(|(k, what)| [Span::styled(*k, key), Span::raw(format!(" {what}  "))]);
    Text::from(spans.collect::<Vec<_>>())
}

const HELP: &[(&str, &str)] = &[
    ("r", "sort by received rate (rx: packets to the address)"),
    (
        "t",
        "sort by transmitted rate (tx: packets from the address)",
    ),
    ("a", "sort by rx + tx, the default"),
    ("n", "sort by name: aliases A-Z, then bare addresses"),
    ("i", "invert the order"),
    ("b", "switch rates between bits/s and packets/s"),
    (
        "/",
        "filter: rows whose name, address, interface, state or owner contain the text",
    ),
    ("Esc", "clear the filter"),
    (
        "↑ ↓ Enter",
        "highlight a row and open its address's peers, with rates; Esc returns",
    ),
    (
        "s",
        "in the peers: switch to the address's services (units, rates, counts, processes) and back",
    ),
    ("p", "pause the display (sampling goes on); p again resumes"),
    ("q", "quit (Ctrl-C too)"),
];

fn draw_help(frame: &mut Frame<'_>, top: &Top, over: Rect) {
    let area = over.centered(
        Constraint::Percentage(90),
        Constraint::Length(HELP.len() as u16 + 10),
    );
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut text: Vec<Text<'_>> = HELP
        .iter()
        .map(|(k, what)| {
            Text::from(vec![
                Span::styled(format!(" {k:<4}"), bold),
                Span::raw(*what),
            ])
        })
        .collect();
    text.extend([
        Text::raw(""),
        Text::raw(format!(
            " RX and TX are per second over the last {}; the totals are the daemon's counters.",
            interval(top.source.interval)
        )),
        Text::raw(" Bytes count the IP header and payload; a GSO packet counts as the packets it stands for."),
        Text::raw(" documented: in the alias file and here; undocumented: here, not in the file;"),
        Text::raw(" absent: in the file, not here; foreign: neither (broadcast, multicast, strays)."),
        Text::from(vec![
            Span::styled(" ! yellow", attention_style(Attention::Undocumented)),
            Span::raw(": undocumented address with traffic  "),
            Span::styled("! red", attention_style(Attention::NotHere)),
            Span::raw(": traffic for an absent or foreign address"),
        ]),
        Text::raw(" q quits; any other key closes this help."),
    ]);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" aliasstat top: keys ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use common::Direction;
    use insta::assert_snapshot;
    use ratatui::{
        Terminal,
        backend::TestBackend,
        crossterm::event::{KeyCode, KeyEvent},
    };

    use super::*;
    use crate::{
        bpf::attach::Hook,
        inventory::State,
        top::{
            client::Attached,
            services::ServicesRead,
            state::{Sample, Source, tests::entry},
        },
    };

    #[test]
    fn si_prefixes() {
        let cases = [
            (0.0, "0 bit/s"),
            (3.0, "3 bit/s"),
            (0.5, "0.50 bit/s"),
            (999.0, "999 bit/s"),
            (999.6, "1.00 kbit/s"),
            (1_644_800.0, "1.64 Mbit/s"),
            (411_200.0, "411 kbit/s"),
            (12_345.0, "12.3 kbit/s"),
            (99_960.0, "100 kbit/s"),
            (9.6e18, "9.60 Ebit/s"),
        ];
        for (v, want) in cases {
            assert_eq!(si(v, "bit/s"), want, "{v}");
        }
    }

    /// A daemon on host `web-01` with five addresses, sampled twice one
    /// second apart: the fixed input of every screen below.
    fn fixture() -> Top {
        let mut top = Top::new(Source {
            host: "web-01".into(),
            url: "http://127.0.0.1:9864".into(),
            interval: Duration::from_secs(1),
        });
        top.on_attachments(vec![
            Attached {
                interface: "eth0".into(),
                hook: Hook::Tc,
                direction: Direction::Rx,
                attached: true,
            },
            Attached {
                interface: "eth0".into(),
                hook: Hook::Tc,
                direction: Direction::Tx,
                attached: true,
            },
        ]);
        let t0 = Instant::now();
        let rows = |k: u64| {
            vec![
                entry(
                    "192.0.2.10",
                    Some("api"),
                    State::Documented,
                    (k * 200, k * 205_600),
                    (k * 180, k * 1_234_560),
                ),
                entry(
                    "192.0.2.11",
                    Some("mail"),
                    State::Documented,
                    (k * 50, k * 51_400),
                    (k * 50, k * 3_000),
                ),
                entry(
                    "192.0.2.12",
                    Some("vip-db"),
                    State::Absent,
                    (k * 3, k * 180),
                    (0, 0),
                ),
                entry(
                    "192.0.2.77",
                    None,
                    State::Undocumented,
                    (k * 20, k * 1_600),
                    (k * 20, k * 1_600),
                ),
                entry(
                    "2001:db8::53",
                    Some("dns6"),
                    State::Documented,
                    (0, 0),
                    (0, 0),
                ),
            ]
        };
        for k in 1..=2 {
            top.on_sample(Ok(Sample {
                at: t0 + Duration::from_secs(k),
                entries: rows(k),
            }));
        }
        top
    }

    fn screen(top: &Top) -> String {
        let mut terminal = Terminal::new(TestBackend::new(120, 16)).unwrap();
        terminal.draw(|f| draw(f, top)).unwrap();
        terminal.backend().to_string()
    }

    fn press(top: &mut Top, keys: &str) {
        for c in keys.chars() {
            top.on_key(KeyEvent::from(KeyCode::Char(c)));
        }
    }

    #[test]
    fn peers_of_the_highlighted_row() {
        let mut top = fixture();
        top.on_key(KeyEvent::from(KeyCode::Enter));
        let t0 = Instant::now();
        for k in [1, 3] {
            let at = t0 + Duration::from_secs(k);
            top.on_peers(Ok(crate::top::peers::tests::sample(at, k)));
        }
        assert_snapshot!(screen(&top));
    }

    /// `s` in the drill-down: the services of the same address, with their
    /// rates over two readings, exact counts and the unserved line; a
    /// daemon that counts none, and one without the route; `s` again goes
    /// back.
    #[test]
    fn services_of_the_highlighted_row() {
        let mut top = fixture();
        top.on_key(KeyEvent::from(KeyCode::Enter));
        press(&mut top, "s");
        assert_snapshot!("services_pending", screen(&top));
        let api = "192.0.2.10".parse().unwrap();
        let t0 = Instant::now();
        for k in [1, 3] {
            let at = t0 + Duration::from_secs(k);
            let doc = crate::top::services::tests::doc(k);
            top.on_services(ServicesRead::of(api, at, Ok(doc)));
        }
        assert_snapshot!(screen(&top));
        top.on_services(ServicesRead::Off(
            "per-service counting is off (--services off, or no cgroup2 mount: see the daemon's log)".into(),
        ));
        assert_snapshot!("services_off", screen(&top));
        top.on_services(ServicesRead::NotServed);
        assert_snapshot!("services_not_served", screen(&top));
        press(&mut top, "s");
        assert_eq!(top.watching(), Some((api, Pane::Peers)));
    }

    #[test]
    fn main_view() {
        assert_snapshot!(screen(&fixture()));
    }

    #[test]
    fn sorted_by_name_in_packets() {
        let mut top = fixture();
        press(&mut top, "nb");
        assert_snapshot!(screen(&top));
    }

    #[test]
    fn filtered() {
        let mut top = fixture();
        press(&mut top, "/team-");
        assert_snapshot!("filter_typing", screen(&top));
        top.on_key(KeyEvent::from(KeyCode::Enter));
        assert_snapshot!("filter_kept", screen(&top));
    }

    #[test]
    fn paused() {
        let mut top = fixture();
        press(&mut top, "p");
        assert_snapshot!(screen(&top));
    }

    #[test]
    fn help() {
        let mut top = fixture();
        press(&mut top, "?");
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
        terminal.draw(|f| draw(f, &top)).unwrap();
        assert_snapshot!(terminal.backend().to_string());
    }

    #[test]
    fn daemon_down_and_narrow() {
        let mut top = fixture();
        top.on_sample(Err("cannot connect to http://127.0.0.1:9864/api/v1/aliases: Connection refused (os error 111)".into()));
        let mut terminal = Terminal::new(TestBackend::new(80, 12)).unwrap();
        terminal.draw(|f| draw(f, &top)).unwrap();
        assert_snapshot!(terminal.backend().to_string());
    }

    /// An alias file and a label that try to clear the screen, recolour it
    /// and break rows: the screen shows them escaped, each on its row.
    #[test]
    fn hostile_text_is_shown_escaped() {
        let mut top = Top::new(Source {
            host: "web-01".into(),
            url: "http://127.0.0.1:9864".into(),
            interval: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        for k in 1..=2 {
            let mut hostile = entry(
                "192.0.2.66",
                Some("a\u{1b}[2Jb"),
                State::Documented,
                (k * 10, k * 1_000),
                (0, 0),
            );
            hostile.owner = Some("ops\nroot\t\u{9b}31m".into());
            hostile.interface = Some("lo\n\u{1b}[31m".into());
            top.on_sample(Ok(Sample {
                at: t0 + Duration::from_secs(k),
                entries: vec![hostile],
            }));
        }
        let shown = screen(&top);
        assert!(!shown.contains(['\u{1b}', '\u{9b}', '\t']), "{shown}");
        assert_snapshot!(shown);
    }

    #[test]
    fn connecting() {
        let top = Top::new(Source {
            host: "web-01".into(),
            url: "http://127.0.0.1:9864".into(),
            interval: Duration::from_millis(500),
        });
        assert_snapshot!(screen(&top));
    }
}
