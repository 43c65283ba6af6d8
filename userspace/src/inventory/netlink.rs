//! rtnetlink: a one-shot dump of links and addresses, and a live watch that
//! keeps a [`HostTable`] current.

use std::{sync::Arc, time::Duration};

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
/// then apply events. A lost subscription (the kernel drops events when the
/// socket's buffer overflows) starts over with a fresh dump.
pub async fn watch(tx: watch::Sender<Arc<HostTable>>) {
    loop {
        if let Err(e) = follow(&tx).await {
            warn!("address discovery restarts in 1 s: {e}");
        } else {
            warn!("rtnetlink event stream ended; address discovery restarts in 1 s");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(tx: &watch::Sender<Arc<HostTable>>) -> Result<(), NetlinkError> {
    // Subscribing before the dump means no change can fall between the two:
    // events that raced the dump are queued and re-applied on top of it.
    let (connection, handle, mut events) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(NetlinkError::Socket)?;
    let task = tokio::spawn(connection);
    let mut table = dump_into(&handle, HostTable::default()).await?;
    tx.send_replace(Arc::new(table.clone()));
    while let Some((msg, _)) = events.next().await {
        if let NetlinkPayload::InnerMessage(msg) = msg.payload {
            table.apply(&msg);
            // Drain what is already queued so a burst (1000 addresses
            // added at once) publishes once, not a thousand times.
            while let Ok(Some((more, _))) =
                tokio::time::timeout(Duration::ZERO, events.next()).await
            {
                if let NetlinkPayload::InnerMessage(more) = more.payload {
                    table.apply(&more);
                }
            }
            tx.send_replace(Arc::new(table.clone()));
        }
    }
    task.abort();
    Ok(())
}
