//! rtnetlink: a one-shot dump of links and addresses, and a live watch that
//! keeps a [`HostTable`] current.

use std::{ops::ControlFlow, sync::Arc, time::Duration};

use futures::{StreamExt as _, TryStreamExt as _};
use log::warn;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::watch;

use super::HostTable;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("failed to open an rtnetlink socket")]
    Socket(#[source] std::io::Error),
    #[error("failed to dump the host's {what} over rtnetlink")]
    Dump {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
}

/// Every link and address on the host right now.
pub async fn dump() -> Result<HostTable, NetlinkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    let table = dump_into(&handle, HostTable::default()).await;
    task.abort();
    table
}

async fn dump_into(handle: &Handle, mut table: HostTable) -> Result<HostTable, NetlinkError> {
    // Links first, so addresses find their interface names.
    let mut links = handle.link().get().execute();
    while let Some(link) = links
        .try_next()
        .await
        .map_err(|source| NetlinkError::Dump {
            what: "links",
            source,
        })?
    {
        table.apply(&RouteNetlinkMessage::NewLink(link));
    }
    let mut addresses = handle.address().get().execute();
    while let Some(addr) = addresses
        .try_next()
        .await
        .map_err(|source| NetlinkError::Dump {
            what: "addresses",
            source,
        })?
    {
        table.apply(&RouteNetlinkMessage::NewAddress(addr));
    }
    Ok(table)
}

/// Keeps `tx` current for as long as the process runs: subscribe, dump,
/// then apply events. When the kernel drops events because the socket's
/// buffer overflowed (a burst of thousands of address changes while the
/// daemon was busy or stopped), it starts over at once with a fresh dump;
/// a failure starts over after a second.
pub async fn watch(tx: watch::Sender<Arc<HostTable>>) {
    loop {
        match follow(&tx).await {
            Ok(Resync::Overrun) => {
                warn!(
                    "rtnetlink events were lost (socket buffer overrun); re-reading every address"
                );
                continue;
            }
            Ok(Resync::Ended) => {
                warn!("rtnetlink event stream ended; address discovery restarts in 1 s");
            }
            Err(e) => warn!("address discovery restarts in 1 s: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Why [`follow`] stopped following.
enum Resync {
    /// The kernel dropped events: the table may be stale.
    Overrun,
    /// The connection closed.
    Ended,
}

async fn follow(tx: &watch::Sender<Arc<HostTable>>) -> Result<Resync, NetlinkError> {
    // Subscribing before the dump means no change can fall between the two:
    // events that raced the dump are queued and re-applied on top of it.
    let (connection, _, mut events) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    // The dump goes over a connection of its own, closed after it: the
    // queue that held its replies goes with it instead of staying grown
    // for as long as this one follows events.
    let mut table = Arc::new(dump().await?);
    tx.send_replace(table.clone());
    let outcome = loop {
        let Some((msg, _)) = events.next().await else {
            break Resync::Ended;
        };
        // A change is made on a copy (the channel holds the version
        // before) that then takes its place: between changes there is one
        // table, shared with its readers, not a second private one.
        let editing = Arc::make_mut(&mut table);
        if let ControlFlow::Break(resync) = apply(editing, msg.payload) {
            break resync;
        }
        // Drain what is already queued so a burst (1000 addresses added at
        // once) publishes once, not a thousand times.
        let mut drained = ControlFlow::Continue(());
        while let Ok(Some((more, _))) = tokio::time::timeout(Duration::ZERO, events.next()).await {
            drained = apply(editing, more.payload);
            if drained.is_break() {
                break;
            }
        }
        if let ControlFlow::Break(resync) = drained {
            break resync;
        }
        tx.send_replace(table.clone());
    };
    task.abort();
    Ok(outcome)
}

/// Applies one event; stops following when it is the kernel saying events
/// were lost.
fn apply(
    table: &mut HostTable,
    payload: NetlinkPayload<RouteNetlinkMessage>,
) -> ControlFlow<Resync> {
    match payload {
        NetlinkPayload::InnerMessage(msg) => table.apply(&msg),
        NetlinkPayload::Overrun(_) => return ControlFlow::Break(Resync::Overrun),
        _ => {}
    }
    ControlFlow::Continue(())
}
