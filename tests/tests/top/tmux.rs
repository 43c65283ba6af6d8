//! A tmux pane to run `aliasstat top` in, read back and typed into.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use lab::cmd;

use crate::screen::Screen;

/// A bound on waiting for the screen to show what a step expects; a pass
/// takes a few refreshes.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Printed by the pane's shell when top exits, followed by its status; the
/// shell then stays, so a crash leaves its message on the screen.
pub const EXITED: &str = "aliasstat top exited with status";

/// Whether tmux runs here at all; the reason to skip otherwise.
pub fn missing() -> Option<String> {
    let tmux = Command::new("tmux").arg("-V").output();
    (!tmux.is_ok_and(|o| o.status.success()))
        .then(|| "tmux is not installed: `cargo xtask setup` installs it".to_owned())
}

/// A detached tmux session of 200×50 on a server of its own (`-L`), so the
/// test neither sees nor touches anyone's tmux. Dropping it kills the
/// session, and the server with its last session.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    pub fn start(command: &[&str]) -> Result<Self> {
        let name = format!("aslab-top-{}", std::process::id());
        let tmux = Self {
            socket: name.clone(),
            session: name,
        };
        let script = format!("\"$@\"; echo \"{EXITED} $?\"; exec sleep 600");
        cmd::run(
            tmux.command()
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &tmux.session,
                    "-x",
                    "200",
                    "-y",
                    "50",
                ])
                .args(["sh", "-c", &script, "sh"])
                .args(command),
        )?;
        Ok(tmux)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        // No user configuration: the pane is what the test says.
        c.args(["-f", "/dev/null", "-L", &self.socket]);
        c
    }

    pub fn capture(&self) -> Result<Screen> {
        let text = cmd::run(
            self.command()
                .args(["capture-pane", "-p", "-t", &self.session]),
        )?;
        Ok(Screen { text })
    }

    /// Named keys (`Enter`, `Escape`) or single characters.
    pub fn keys(&self, keys: &[&str]) -> Result<()> {
        cmd::run(
            self.command()
                .args(["send-keys", "-t", &self.session])
                .args(keys),
        )?;
        Ok(())
    }

    /// `text` typed as it is, never read as key names.
    pub fn literal(&self, text: &str) -> Result<()> {
        cmd::run(
            self.command()
                .args(["send-keys", "-t", &self.session, "-l", text]),
        )?;
        Ok(())
    }

    /// Polls the screen until `ready` holds; fails with the last screen.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&Screen) -> bool) -> Result<Screen> {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.capture()?;
            if ready(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "waited {SCREEN_TIMEOUT:?} for {what}; the screen:\n{}",
                    screen.text
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(self.command().args(["kill-session", "-t", &self.session])) {
            eprintln!("top test: leaking tmux session {}: {e:#}", self.session);
        }
    }
}
