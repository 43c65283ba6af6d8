//! Interface names, indexes, and the interfaces that carry a default route.
//!
//! The daemon knows names from rtnetlink ([`crate::inventory::HostTable`])
//! and from its own attachments; the kernel is asked directly only where
//! neither exists, through [`Interfaces`]: the attacher resolving the
//! interfaces it was told to watch at each reconcile, and `aliasstat dump`
//! naming each index once.

use std::{
    collections::{BTreeMap, BTreeSet},
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

/// Where interface names and indexes come from: [`Kernel`], or a fixed
/// table in tests.
pub trait Interfaces {
    /// The index of interface `name`, if it exists.
    fn index(&self, name: &str) -> Option<u32>;
    /// The name of interface `index`, if it exists.
    fn name(&self, index: u32) -> Option<String>;
}

/// The interfaces of this network namespace, as the kernel has them now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel;

impl Interfaces for Kernel {
    fn index(&self, name: &str) -> Option<u32> {
        let name = CString::new(name).ok()?;
        // SAFETY: a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        (index != 0).then_some(index)
    }

    fn name(&self, index: u32) -> Option<String> {
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: the buffer is IF_NAMESIZE long, as the call requires.
        let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
        (!name.is_null()).then(|| {
            // SAFETY: on success the buffer holds a NUL-terminated name.
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// The name shown for interface `index` when no name is known: counts
/// outlive the interface they were seen on.
pub fn unnamed(index: u32) -> String {
    format!("if{index}")
}

/// The names of `indexes`, each asked of `source` once; [`unnamed`] for
/// those that are gone.
pub fn names(
    source: &impl Interfaces,
    indexes: impl IntoIterator<Item = u32>,
) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for index in indexes {
        names
            .entry(index)
            .or_insert_with(|| source.name(index).unwrap_or_else(|| unnamed(index)));
    }
    names
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
pub(crate) mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Interfaces by name, counting how often each index was asked for.
    #[derive(Default)]
    pub struct Fixed {
        pub by_name: BTreeMap<String, u32>,
        pub asked: RefCell<Vec<u32>>,
    }

    impl Fixed {
        pub fn new(interfaces: &[(&str, u32)]) -> Self {
            Self {
                by_name: interfaces.iter().map(|&(n, i)| (n.to_owned(), i)).collect(),
                asked: RefCell::default(),
            }
        }
    }

    impl Interfaces for Fixed {
        fn index(&self, name: &str) -> Option<u32> {
            self.by_name.get(name).copied()
        }

        fn name(&self, index: u32) -> Option<String> {
            self.asked.borrow_mut().push(index);
            self.by_name
                .iter()
                .find(|&(_, &i)| i == index)
                .map(|(n, _)| n.clone())
        }
    }

    #[test]
    fn each_index_is_named_once_and_gone_ones_by_number() {
        let source = Fixed::new(&[("eth0", 2), ("vb", 7)]);
        let names = names(&source, [7, 2, 7, 9, 2, 7]);
        let expected: BTreeMap<u32, String> = [(2, "eth0"), (7, "vb"), (9, "if9")]
            .map(|(i, n)| (i, n.to_owned()))
            .into();
        assert_eq!(names, expected);
        assert_eq!(*source.asked.borrow(), [7, 2, 9]);
    }

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
