//! The page against a daemon counting UDP at known rates to two documented
//! aliases and an undocumented address, in chromium inside the server's
//! namespace: what the table shows, the filter, the sort, the detail, a
//! screenshot, the daemon going away and coming back, and no request
//! anywhere but the daemon.

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};
use lab::{
    Daemon,
    daemon::Launch,
    harness::{Outcome, check_eq},
    http,
    rated::{CLIENT, MAIL, MAIL_PPS, NET, RatedLab, STRAY, WEB, WEB_PPS, bits},
};
use serde::Deserialize;

use crate::browser::{self, Chromium};

/// Every flow comes from [`CLIENT`].
const CLIENTS: usize = 1;
const HISTORY_INTERVAL: &str = "2s";
/// Rates are measured over real time by a sender the test does not pace.
const TOLERANCE: f64 = 0.10;
/// A blank or one-colour page has a handful; text, charts and the header
/// bring hundreds.
const MIN_COLOURS: usize = 64;

/// One table row as the page shows it.
#[derive(Debug, Deserialize)]
struct Shown {
    address: String,
    mark: String,
    alias: String,
    owner: String,
    state: String,
    rx_bits: String,
    rx_packets: String,
    tx_packets: String,
    peers: String,
    points: usize,
}

/// The rows on screen, top to bottom.
const ROWS: &str = r#"[...document.querySelectorAll('#rows tr')].map((tr) => {
  const cell = (c) => tr.querySelector(`td.${c}`).textContent;
  return { address: tr.dataset.address, mark: cell("mark"), alias: cell("alias"), owner: cell("owner"),
    state: cell("state"), rx_bits: cell("rx-bits"), rx_packets: cell("rx-packets"),
    tx_packets: cell("tx-packets"), peers: cell("peers"), points: Number(tr.dataset.points) };
})"#;

const BANNER: &str = r#"document.getElementById("connection").hidden ? null : document.getElementById("connection").textContent"#;

pub fn run() -> Result<Outcome> {
    if let Some(reason) = browser::missing() {
        return Ok(Outcome::Skipped(reason));
    }
    let mut lab = WebLab::start()?;
    let page = Chromium::start(&lab.rated.veth.server.ns)?;
    page.open(&lab.url)?;
    lab.first_screen(&page)?;
    filter(&page)?;
    sort(&page)?;
    detail(&page)?;
    // The range buttons scrolled to the bottom; the picture is of the table.
    page.eval::<bool>("(window.scrollTo(0, 0), true)")?;
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web/page.png");
    let colours = page.screenshot(&shot)?;
    println!(
        "  screenshot {}: {colours} distinct colours",
        shot.display()
    );
    ensure!(
        colours > MIN_COLOURS,
        "the screenshot has {colours} colours: blank?"
    );
    lab.restart(&page)?;
    lab.only_the_daemon(&page)?;
    lab.rated.traffic.finish()?;
    lab.rated.daemon.take().expect("running").stop()?;
    Ok(Outcome::Passed)
}

struct WebLab {
    rated: RatedLab,
    url: String,
}

impl WebLab {
    /// The three flows, and a history short enough for the detail's
    /// long-range chart.
    fn start() -> Result<Self> {
        let rated = RatedLab::start("web", &launch(&[]))?;
        let url = format!("http://{}/", rated.served.listen());
        Ok(Self { rated, url })
    }

    /// Once the page has shown three intervals of rates (the first may
    /// have begun before the traffic did): aliases, owners, marks, rates.
    fn first_screen(&self, page: &Chromium) -> Result<()> {
        let rows: Vec<Shown> =
            page.wait("three intervals of rates", ROWS, |rows: &Vec<Shown>| {
                [WEB, MAIL, STRAY]
                    .iter()
                    .all(|a| rows.iter().any(|r| r.address == *a && r.points >= 3))
            })?;
        let row = |a: &str| rows.iter().find(|r| r.address == a).expect("waited for");
        let (web, mail, stray) = (row(WEB), row(MAIL), row(STRAY));
        println!("  {web:?}\n  {mail:?}\n  {stray:?}");
        let brief = |r: &Shown| {
            (
                r.alias.clone(),
                r.owner.clone(),
                r.state.clone(),
                r.mark.clone(),
                r.peers.clone(),
            )
        };
        let s = |t: &str| t.to_string();
        // Every address hears from the one client alone.
        let peers = CLIENTS.to_string();
        check_eq(
            "web",
            &(
                s("web"),
                s("team-web"),
                s("documented"),
                s(""),
                peers.clone(),
            ),
            &brief(web),
        )?;
        check_eq(
            "mail",
            &(
                s("mail"),
                s("team-mail"),
                s("documented"),
                s(""),
                peers.clone(),
            ),
            &brief(mail),
        )?;
        check_eq(
            "stray",
            &(s("–"), s("–"), s("undocumented"), s("!"), peers),
            &brief(stray),
        )?;
        within("web rx pkt/s", &web.rx_packets, f64::from(WEB_PPS))?;
        within("web rx bit/s", &web.rx_bits, bits(WEB_PPS))?;
        within("mail rx pkt/s", &mail.rx_packets, f64::from(MAIL_PPS))?;
        within("mail rx bit/s", &mail.rx_bits, bits(MAIL_PPS))?;
        within("web tx pkt/s", &web.tx_packets, 0.0)?;
        // The page's headers, checked where the browser gets them.
        let r = http::get(&self.rated.veth.server.ns, self.rated.served.listen(), "/")?;
        check_eq(
            "Content-Security-Policy of /",
            &Some(aliasstat::serve::web::CONTENT_SECURITY_POLICY),
            &r.header("content-security-policy"),
        )?;
        let header: String = page.eval(r#"document.querySelector("header").textContent"#)?;
        ensure!(
            header.contains("lab-srv tc rx") && header.contains("lab-srv tc tx"),
            "no attachments in the header: {header}"
        );
        Ok(())
    }

    /// Stopped, the page says so and keeps its last rows; restarted, it
    /// reads again without a reload. The restart is with `--peers off`,
    /// which the peers column then says instead of a count.
    fn restart(&mut self, page: &Chromium) -> Result<()> {
        self.rated.daemon.take().expect("running").stop()?;
        let gone: Option<String> =
            page.wait("the daemon reported gone", BANNER, Option::is_some)?;
        println!("  daemon stopped: {}", gone.expect("waited for"));
        let rows: Vec<Shown> = page.eval(ROWS)?;
        ensure!(!rows.is_empty(), "the last rows went away with the daemon");
        let config = self.rated.served.daemon_config(&self.rated.veth.server);
        self.rated.daemon = Some(Daemon::start_with(&config, &launch(&["--peers", "off"]))?);
        page.wait("the banner gone", BANNER, Option::<String>::is_none)?;
        let rows: Vec<Shown> = page.wait("rates again", ROWS, |rows: &Vec<Shown>| {
            rows.iter().any(|r| r.address == WEB && r.rx_packets != "–")
        })?;
        let peers: Vec<&str> = rows.iter().map(|r| r.peers.as_str()).collect();
        check_eq("peers with --peers off", &vec!["off"; rows.len()], &peers)?;
        println!("  daemon back with --peers off: the page reads again, peers say off");
        Ok(())
    }

    fn only_the_daemon(&self, page: &Chromium) -> Result<()> {
        let requests = page.requests();
        let rates = requests
            .iter()
            .filter(|u| u.contains("/api/v1/rates"))
            .count();
        println!("  {} requests, {rates} of /api/v1/rates", requests.len());
        ensure!(rates > 0, "the network log is empty: {requests:?}");
        let outside: Vec<&String> = requests
            .iter()
            .filter(|u| !u.starts_with(&self.url))
            .collect();
        ensure!(
            outside.is_empty(),
            "requests outside the daemon: {outside:?}"
        );
        Ok(())
    }
}

/// Typing leaves exactly the matching rows; clearing brings them back.
fn filter(page: &Chromium) -> Result<()> {
    let addresses = |rows: &Vec<Shown>| rows.iter().map(|r| r.address.clone()).collect::<Vec<_>>();
    page.type_into("#filter", "team-")?;
    page.wait("the two owned rows", ROWS, |rows: &Vec<Shown>| {
        addresses(rows) == [WEB, MAIL]
    })?;
    page.eval::<bool>(r#"(() => { const f = document.getElementById("filter"); f.value = ""; f.dispatchEvent(new Event("input")); return true; })()"#)?;
    page.type_into("#filter", "mail")?;
    page.wait("only mail", ROWS, |rows: &Vec<Shown>| {
        addresses(rows) == [MAIL]
    })?;
    page.eval::<bool>(&format!(r#"(() => {{ const f = document.getElementById("filter"); f.value = "{NET}"; f.dispatchEvent(new Event("input")); return true; }})()"#))?;
    page.wait("the three lab addresses", ROWS, |rows: &Vec<Shown>| {
        addresses(rows) == [WEB, MAIL, STRAY]
    })?;
    println!("  filter: `team-` left web and mail, `mail` left mail");
    Ok(())
}

/// Clicking a column sorts by it, largest rate first; again, smallest.
fn sort(page: &Chromium) -> Result<()> {
    fn order(want: [&'static str; 3]) -> impl Fn(&Vec<Shown>) -> bool {
        move |rows: &Vec<Shown>| {
            let got: Vec<&str> = rows
                .iter()
                .map(|r| r.address.as_str())
                .filter(|a| want.contains(a))
                .collect();
            got == want
        }
    }
    page.click(r#"th[data-sort="rx_packets"]"#)?;
    page.wait("rx pkt/s, largest first", ROWS, order([WEB, MAIL, STRAY]))?;
    page.click(r#"th[data-sort="rx_packets"]"#)?;
    page.wait("rx pkt/s, smallest first", ROWS, order([STRAY, MAIL, WEB]))?;
    page.click(r#"th[data-sort="alias"]"#)?;
    page.wait(
        "alias A to Z, unnamed last",
        ROWS,
        order([MAIL, WEB, STRAY]),
    )?;
    println!("  sort: by rx pkt/s both ways, and by alias");
    Ok(())
}

/// `--history-interval` short enough that the detail's long-range chart
/// has points within seconds, and `more`.
fn launch(more: &[&str]) -> Launch {
    Launch {
        args: ["--history-interval", HISTORY_INTERVAL]
            .iter()
            .chain(more)
            .map(Into::into)
            .collect(),
        ..Launch::default()
    }
}

/// A click on a row opens its detail: facts, charts, its peers, and a
/// long-range chart with points from the history store, in both ranges.
fn detail(page: &Chromium) -> Result<()> {
    page.click(&format!(r#"#rows tr[data-address="{WEB}"]"#))?;
    #[derive(Debug, Deserialize)]
    struct Detail {
        title: String,
        facts: String,
        charts: usize,
        peers: String,
        long_range: usize,
    }
    let shown: Detail = page.wait(
        "the detail of web",
        r#"({ title: document.getElementById("detail-title").textContent,
              facts: document.getElementById("detail-facts").textContent,
              charts: document.querySelectorAll('#detail polyline').length,
              peers: document.getElementById("detail-peers").textContent,
              long_range: Number(document.querySelector('#detail-history [data-points]')?.dataset.points ?? 0) })"#,
        |d: &Detail| {
            d.title.contains(WEB) && d.charts >= 4 && !d.peers.contains("loading") && d.long_range > 0
        },
    )?;
    println!("  detail: {shown:?}");
    ensure!(
        shown.title == format!("web ({WEB})")
            && shown.facts.contains("team-web")
            && shown.facts.contains("the shop"),
        "detail of web: {shown:?}"
    );
    ensure!(
        shown.peers.contains(CLIENT),
        "the detail's peers do not name the client: {shown:?}"
    );
    page.click(r#"button[data-range="1d"]"#)?;
    let day: (String, usize) = page.wait(
        "the last day's chart",
        r#"[document.querySelector('#detail-history p')?.textContent ?? "", Number(document.querySelector('#detail-history [data-points]')?.dataset.points ?? 0)]"#,
        |(text, points): &(String, usize)| text.contains("per 240 s") && *points > 0,
    )?;
    println!(
        "  long range: {} points in the last hour; last day: {day:?}",
        shown.long_range
    );
    page.click(r#"button[data-range="1h"]"#)?;
    Ok(())
}

/// "1.64 Mbit/s" or "200 pkt/s" as a number.
fn parse_rate(text: &str) -> Result<f64> {
    let (number, unit) = text
        .split_once(' ')
        .with_context(|| format!("no rate in {text:?}"))?;
    let scale = match unit.chars().next() {
        Some('k') => 1e3,
        Some('M') => 1e6,
        Some('G') => 1e9,
        _ => 1.0,
    };
    Ok(number
        .parse::<f64>()
        .with_context(|| format!("no rate in {text:?}"))?
        * scale)
}

fn within(what: &str, shown: &str, want: f64) -> Result<()> {
    let got = parse_rate(shown)?;
    let ok = if want == 0.0 {
        got == 0.0
    } else {
        (got - want).abs() <= want * TOLERANCE
    };
    println!("  {what}: shown {shown} ({got:.0}), sent {want:.0}");
    ensure!(
        ok,
        "{what}: shown {shown}, sent {want:.0}, more than {:.0}% apart",
        TOLERANCE * 100.0
    );
    Ok(())
}
