//! What the daemon logs beside its own start and stop: the kernel side's
//! aya-log records, every address that comes or goes, and a one-line
//! description of what is attached where.

use std::sync::Arc;

use aya_log::EbpfLogger;
use log::{info, warn};
use tokio::{io::unix::AsyncFd, sync::watch};

use super::ConfigStatus;
use crate::{
    bpf::attach::Attachment,
    inventory::{self, HostTable},
};

/// Logs every address that appears on or leaves the host, with its state:
/// the audit trail of aliases coming and going.
pub(super) async fn log_host_changes(
    mut host: watch::Receiver<Arc<HostTable>>,
    config: watch::Receiver<ConfigStatus>,
) {
    // The first table is the start-up dump: a baseline, not a change.
    if host.changed().await.is_err() {
        return;
    }
    let mut before = host.borrow_and_update().clone();
    info!(
        "found {} addresses on this host",
        before.addresses().count()
    );
    while host.changed().await.is_ok() {
        let now = host.borrow_and_update().clone();
        let config = config.borrow().config.clone();
        for change in inventory::changes(&before, &now, &config) {
            info!("{change}");
        }
        before = now;
    }
}

/// Relays aya-log records from the kernel side into this process's log.
pub(super) fn forward_kernel_logs(ebpf: &mut aya::Ebpf) {
    let logger = match EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(e) => {
            warn!("kernel-side log messages will not be shown: {e}");
            return;
        }
    };
    // SAFETY: the logger owns the ring buffer's fd, and AsyncFd owns the
    // logger, so the fd outlives its registration.
    let registered =
        unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            warn!(
                "kernel-side log messages will not be shown: {}",
                e.into_parts().1
            );
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}

/// `vb (tc ingress, tc egress), eth0 (…)`
pub(super) fn describe(attachments: &[Attachment]) -> String {
    // (interface, hooks, present), in the order given.
    let mut out: Vec<(&str, Vec<String>, bool)> = Vec::new();
    for a in attachments {
        let hook = format!("{} {}", a.hook, a.direction.hook_side());
        match out.last_mut() {
            Some((iface, hooks, _)) if *iface == a.iface => hooks.push(hook),
            _ => out.push((&a.iface, vec![hook], a.ifindex.is_some())),
        }
    }
    out.iter()
        .map(|(iface, hooks, present)| {
            if *present {
                format!("{iface} ({})", hooks.join(", "))
            } else {
                format!("{iface} (waiting for it to exist)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use common::Direction;

    use super::*;
    use crate::bpf::attach::Hook;

    #[test]
    fn describes_attachments_per_interface() {
        let a = |iface: &str, hook, direction| Attachment {
            iface: iface.into(),
            ifindex: (iface != "late").then_some(7),
            hook,
            direction,
        };
        let attached = [
            a("vb", Hook::Xdp, Direction::Rx),
            a("vb", Hook::Tc, Direction::Tx),
            a("eth0", Hook::Tc, Direction::Rx),
            a("eth0", Hook::Tc, Direction::Tx),
            a("late", Hook::Tc, Direction::Rx),
            a("late", Hook::Tc, Direction::Tx),
        ];
        assert_eq!(
            describe(&attached),
            "vb (xdp ingress, tc egress), eth0 (tc ingress, tc egress), late (waiting for it to exist)"
        );
    }
}
