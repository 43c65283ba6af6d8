//! top against a daemon counting UDP at three known rates: the default
//! view, its sort orders and units, the filter, the peers drill-down, a
//! daemon that goes away and comes back, the one-shot output without a
//! terminal, and quitting.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use lab::{
    cmd,
    daemon::{Launch, binary},
    harness::Outcome,
    rated::{CLIENT, MAIL, MAIL_PPS, RatedLab, STRAY, WEB, WEB_PPS, bits},
};

use crate::{
    screen::ScreenRow,
    tmux::{self, EXITED, Tmux},
};

/// Rates are measured over real time by a process the test does not pace.
const TOLERANCE: f64 = 0.10;

pub fn run() -> Result<Outcome> {
    if let Some(reason) = tmux::missing() {
        return Ok(Outcome::Skipped(reason));
    }
    let mut lab = TopLab::start()?;
    lab.default_view()?;
    lab.orders_and_units()?;
    lab.filter()?;
    lab.peers()?;
    lab.restart()?;
    lab.once()?;
    lab.quit()?;
    lab.rated.traffic.finish()?;
    lab.rated.daemon.take().expect("running").stop()?;
    Ok(Outcome::Passed)
}

/// The three flows of [`RatedLab`], and top in a tmux pane, reaching the
/// daemon over the server namespace's loopback, which the daemon does not
/// count on.
struct TopLab {
    pane: Tmux,
    rated: RatedLab,
    url: String,
    bin: PathBuf,
}

impl TopLab {
    fn start() -> Result<Self> {
        let rated = RatedLab::start("top", &Launch::default())?;
        let bin = binary()?;
        let url = format!("http://{}", rated.served.listen());
        let pane = Tmux::start(&[
            "ip",
            "netns",
            "exec",
            rated.veth.server.ns.name(),
            bin.to_str().context("non-UTF-8 binary path")?,
            "top",
            "--url",
            &url,
        ])?;
        Ok(Self {
            pane,
            rated,
            url,
            bin,
        })
    }

    /// The default view: rates in bits, sorted by total, largest first.
    fn default_view(&self) -> Result<()> {
        let screen = self
            .pane
            .wait_for("rates of web, mail and the stray", |s| {
                ["web", "mail", STRAY]
                    .iter()
                    .all(|n| s.row(n).is_some_and(|r| r.rx.is_some()))
            })?;
        println!("{}", screen.text.trim_end());
        ensure!(
            screen.text.contains(&format!("· {} ·", self.url)),
            "no URL in the header"
        );
        ensure!(
            screen.text.contains("counting on lab-srv (tc rx, tc tx)"),
            "no attachments in the header"
        );
        let web = screen.row("web").expect("waited for");
        let mail = screen.row("mail").expect("waited for");
        let stray = screen.row(STRAY).expect("waited for");
        check_row(&web, WEB, "documented", "team-web")?;
        check_row(&mail, MAIL, "documented", "team-mail")?;
        check_row(&stray, STRAY, "undocumented", "-")?;
        within("web rx bit/s", web.rx, bits(WEB_PPS))?;
        within("mail rx bit/s", mail.rx, bits(MAIL_PPS))?;
        within("web tx bit/s", web.tx, 0.0)?;
        ensure!(
            !web.marked && !mail.marked && stray.marked,
            "only the undocumented address with traffic is marked `!`"
        );
        screen.order(&["web", "mail", STRAY])
    }

    fn orders_and_units(&self) -> Result<()> {
        let pane = &self.pane;
        // Name order: aliases A-Z, then bare addresses.
        pane.keys(&["n"])?;
        pane.wait_for("name order", |s| s.order(&["mail", "web", STRAY]).is_ok())?;
        // By rx, then inverted: smallest first.
        pane.keys(&["r"])?;
        pane.wait_for("rx order", |s| s.order(&["web", "mail", STRAY]).is_ok())?;
        pane.keys(&["i"])?;
        pane.wait_for("inverted rx order", |s| {
            s.order(&[STRAY, "mail", "web"]).is_ok()
        })?;

        // Packets per second.
        pane.keys(&["b"])?;
        let screen = pane.wait_for("packet rates", |s| s.text.contains("pkt/s"))?;
        println!("{}", screen.text.trim_end());
        for (name, pps) in [("web", WEB_PPS), ("mail", MAIL_PPS)] {
            let row = screen.row(name).context("row gone")?;
            within(&format!("{name} rx pkt/s"), row.rx, f64::from(pps))?;
        }
        Ok(())
    }

    /// The filter hides what does not match, and Esc brings it back.
    fn filter(&self) -> Result<()> {
        let pane = &self.pane;
        pane.keys(&["/"])?;
        pane.literal("mail")?;
        pane.keys(&["Enter"])?;
        let screen = pane.wait_for("only mail", |s| {
            s.row("mail").is_some() && s.row("web").is_none() && s.row(STRAY).is_none()
        })?;
        println!("{}", screen.text.trim_end());
        ensure!(
            screen.text.contains("filter \"mail\""),
            "filter not in header"
        );
        pane.keys(&["Escape"])?;
        pane.wait_for("every row again", |s| s.row("web").is_some())?;
        Ok(())
    }

    /// Enter on a row opens the peers of its address with live rates, and
    /// Esc returns to the table.
    fn peers(&self) -> Result<()> {
        let pane = &self.pane;
        // Name order puts web second (mail, web, then bare addresses);
        // Up to the first row whatever was highlighted, then one down.
        pane.keys(&["n", "Up", "Up", "Up", "Up", "Up", "Down", "Enter"])?;
        let screen = pane.wait_for("the peers of web, with a rate", |s| {
            s.text.contains(&format!("peers of web ({WEB})")) && s.peer_rx(CLIENT).is_some()
        })?;
        println!("{}", screen.text.trim_end());
        // Still in packets per second since `b` above.
        within(
            "web's peer rx pkt/s",
            screen.peer_rx(CLIENT),
            f64::from(WEB_PPS),
        )?;
        pane.keys(&["Escape"])?;
        pane.wait_for("the table again", |s| s.row("web").is_some())?;
        Ok(())
    }

    /// A daemon that goes away is a status line, and one that comes back
    /// is read again without a key pressed. The maps stay pinned, so the
    /// restarted daemon carries on from the same counts.
    fn restart(&mut self) -> Result<()> {
        self.rated.daemon.take().expect("running").stop()?;
        let screen = self.pane.wait_for("the daemon reported gone", |s| {
            s.text.contains("daemon unreachable")
        })?;
        println!("{}", screen.text.trim_end());
        self.rated.daemon = Some(self.rated.served.start(&self.rated.veth.server)?);
        let screen = self.pane.wait_for("rows read again", |s| {
            !s.text.contains("daemon unreachable") && s.row("web").is_some_and(|r| r.rx > Some(0.0))
        })?;
        println!("{}", screen.text.trim_end());
        Ok(())
    }

    /// Without a terminal, top prints one interval's rates and exits.
    fn once(&self) -> Result<()> {
        let once = |extra: &[&str]| {
            cmd::run(
                self.rated
                    .veth
                    .server
                    .ns
                    .exec(&self.bin)
                    .args(["top", "--url", &self.url, "--interval", "2s"])
                    .args(extra),
            )
        };
        let table = once(&[])?;
        println!("{table}");
        ensure!(
            table.starts_with("NAME")
                && table.lines().nth(1).is_some_and(|l| l.starts_with("web ")),
            "`top` without a terminal: expected a table with web first"
        );
        let json: serde_json::Value = serde_json::from_str(&once(&["--json"])?)?;
        for (i, (name, pps)) in [("web", WEB_PPS), ("mail", MAIL_PPS)]
            .into_iter()
            .enumerate()
        {
            let alias = &json["aliases"][i];
            ensure!(
                alias["alias"] == name,
                "`top --json`: {name} is not row {i}: {json}"
            );
            within(
                &format!("--json {name} rx bits_per_second"),
                alias["rx"]["bits_per_second"].as_f64(),
                bits(pps),
            )?;
            within(
                &format!("--json {name} rx packets_per_second"),
                alias["rx"]["packets_per_second"].as_f64(),
                f64::from(pps),
            )?;
        }
        Ok(())
    }

    /// q leaves the alternate screen and exits 0.
    fn quit(&self) -> Result<()> {
        self.pane.keys(&["q"])?;
        self.pane
            .wait_for("top to exit", |s| s.text.contains(EXITED))?;
        let screen = self.pane.capture()?;
        ensure!(
            screen.text.contains(&format!("{EXITED} 0")),
            "top did not exit cleanly:\n{}",
            screen.text
        );
        Ok(())
    }
}

fn check_row(row: &ScreenRow, address: &str, state: &str, owner: &str) -> Result<()> {
    ensure!(
        (row.address.as_str(), row.state.as_str(), row.owner.as_str()) == (address, state, owner),
        "row {row:?}: expected {address} {state} {owner}"
    );
    Ok(())
}

fn within(what: &str, got: Option<f64>, want: f64) -> Result<()> {
    let got = got.with_context(|| format!("{what}: no rate shown"))?;
    let ok = if want == 0.0 {
        got == 0.0
    } else {
        (got - want).abs() <= want * TOLERANCE
    };
    println!(
        "  {what}: shown {got:.0}, sent {want:.0} ({:+.1}%)",
        if want == 0.0 {
            0.0
        } else {
            (got / want - 1.0) * 100.0
        }
    );
    ensure!(
        ok,
        "{what}: shown {got}, sent {want}, more than {:.0}% apart",
        TOLERANCE * 100.0
    );
    Ok(())
}
