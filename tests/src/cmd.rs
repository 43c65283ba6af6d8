//! External commands whose failure names the command and what it printed.

use std::{os::unix::process::CommandExt as _, process::Command};

use anyhow::{Context, Result, bail};

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an
/// error carrying the command line and its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("failed to start `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed invalid UTF-8"))
}

/// Makes the child get SIGTERM when this process dies, so that a crash
/// that runs no destructors leaves no daemon (and no namespace or attachment
/// it holds) behind. `ip netns exec` execs without forking, so the signal
/// reaches the program it runs.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The command line as a shell would show it, for messages.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_command_and_its_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("`sh -c echo oops >&2; exit 3`"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
    }

    #[test]
    fn success_returns_stdout() {
        assert_eq!(run(Command::new("echo").arg("hi")).unwrap(), "hi\n");
    }
}
