//! Interface names, indexes, and the interfaces that carry a default route.

use std::{
    collections::BTreeSet,
    ffi::{CStr, CString},
    fs, io,
};

#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    #[error("failed to read the routing table `{path}`")]
    Routes {
        path: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no interface carries a default route; name the interfaces to watch with --interface")]
    NoDefaultRoute,
}

/// The index of interface `name` in this network namespace.
pub fn index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// The name of interface `index` in this network namespace, or `if<index>`
/// for one that is gone (counts outlive the interface they were seen on).
pub fn name(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer is IF_NAMESIZE long, as the call requires.
    let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if name.is_null() {
        format!("if{index}")
    } else {
        // SAFETY: on success the buffer holds a NUL-terminated name.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Interfaces with an IPv4 or IPv6 default route, sorted and deduplicated.
pub fn with_default_route() -> Result<Vec<String>, InterfaceError> {
    let mut found = BTreeSet::new();
    found.extend(default_ipv4(&read("/proc/net/route")?));
    // A host without IPv6 has no such file; that is not an error.
    if let Ok(v6) = fs::read_to_string("/proc/net/ipv6_route") {
        found.extend(default_ipv6(&v6));
    }
    if found.is_empty() {
        return Err(InterfaceError::NoDefaultRoute);
    }
    Ok(found.into_iter().collect())
}

fn read(path: &'static str) -> Result<String, InterfaceError> {
    fs::read_to_string(path).map_err(|source| InterfaceError::Routes { path, source })
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, hex fields.
fn default_ipv4(table: &str) -> impl Iterator<Item = String> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
    })
}

/// `dest dest_len src src_len next_hop metric refcnt use flags iface`.
fn default_ipv6(table: &str) -> impl Iterator<Item = String> + '_ {
    const ANY: &str = "00000000000000000000000000000000";
    table.lines().filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // The loopback "unreachable" default has no next hop and lives on lo.
        (f.len() == 10 && f[0] == ANY && f[1] == "00" && f[4] != ANY && f[9] != "lo")
            .then(|| f[9].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_default_routes() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
            eth1\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
            eth2\t00000000\t0103A8C0\t0003\t0\t0\t200\t000000FF\t0\t0\t0\n";
        assert_eq!(default_ipv4(table).collect::<Vec<_>>(), ["eth0", "eth1"]);
    }

    #[test]
    fn ipv6_default_routes() {
        let any = "00000000000000000000000000000000";
        let table = format!(
            "{any} 00 {any} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n\
             20010db8000000000000000000000000 40 {any} 00 {any} 00000100 00000001 00000000 00000001     eth0\n\
             {any} 00 {any} 00 {any} ffffffff 00000001 00000000 00200200       lo\n"
        );
        assert_eq!(default_ipv6(&table).collect::<Vec<_>>(), ["eth0"]);
    }
}
