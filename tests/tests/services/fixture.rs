//! What the services suite reads of the daemon it tests, on the lab's
//! [`lab::units::UnitLab`].

use std::net::IpAddr;

use aliasstat::services::{AddressServices, ServicesDoc};
use anyhow::{Context, Result};
use lab::{Veth, http};

pub const PEER: &str = lab::svcpeer!();

/// `/api/v1/services` of the daemon in `veth`'s server namespace.
pub fn services(veth: &Veth) -> Result<ServicesDoc> {
    let resp = http::get(
        &veth.server.ns,
        "127.0.0.1:9864".parse()?,
        "/api/v1/services",
    )?;
    anyhow::ensure!(
        resp.status == 200,
        "status {}: {}",
        resp.status,
        resp.text()?
    );
    serde_json::from_str(resp.text()?).context("the /api/v1/services document")
}

/// `[rx_packets, rx_bytes, tx_packets, tx_bytes]` of `unit` on `address`.
pub fn counts(doc: &ServicesDoc, address: IpAddr, unit: &str) -> Option<[u64; 4]> {
    address_of(doc, address)?
        .services
        .iter()
        .find(|s| s.unit.as_deref() == Some(unit))
        .map(|s| [s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes])
}

pub fn address_of(doc: &ServicesDoc, address: IpAddr) -> Option<&AddressServices> {
    doc.addresses.iter().find(|a| a.address == address)
}

/// The units listed for `address`, sorted.
pub fn units(doc: &ServicesDoc, address: IpAddr) -> Vec<String> {
    let mut units: Vec<String> = address_of(doc, address)
        .map(|a| a.services.iter().map(|s| s.label().to_owned()).collect())
        .unwrap_or_default();
    units.sort();
    units
}
