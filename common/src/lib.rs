//! Types shared by the eBPF programs and the `aliasstat` binary.
//!
//! Everything here is `no_std` so that the kernel side can use it; the `user`
//! feature adds the conversions and trait impls that only user space needs.
#![cfg_attr(not(feature = "user"), no_std)]

pub mod key;
pub mod names;
pub mod peer;
pub mod service;
pub mod wire;

pub use key::{
    Addr4Key, Addr6Key, AddrKey, Counters, DIRECTION_BIT, Direction, Family, OtherKey, OtherKind,
    if_dir,
};
#[cfg(feature = "user")]
pub use service::ServiceCell;
pub use service::{Service4Key, Service6Key};
