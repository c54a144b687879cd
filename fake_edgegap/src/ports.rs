//! Real free ports on 127.0.0.1 for deployments.
//!
//! Edgegap maps an external port to the container's internal port. Locally
//! there is no NAT, so a deployment's process must bind the port players
//! connect to: the fake reports `internal == external`, a port that was free
//! when the deployment was created (not the app version's declared port,
//! which several local deployments could not share).

use std::collections::BTreeSet;
use std::io;
use std::net::{TcpListener, UdpSocket};

use crate::config::FakePort;
use crate::state::{DeployState, PortRec, World};

/// Picks a free port per declared port, avoiding ports of live deployments.
pub fn allocate(world: &World, declared: &[FakePort]) -> io::Result<Vec<PortRec>> {
    let mut taken: BTreeSet<u16> = world
        .deployments
        .values()
        .filter(|d| d.state != DeployState::Terminated)
        .flat_map(|d| d.ports.iter().map(|p| p.external))
        .collect();
    let mut out = Vec::with_capacity(declared.len());
    for port in declared {
        let number = free_port(&port.protocol, &taken)?;
        taken.insert(number);
        out.push(PortRec {
            name: port.name.clone(),
            internal: number,
            external: number,
            protocol: port.protocol.clone(),
            tls_upgrade: port.tls_upgrade,
        });
    }
    Ok(out)
}

fn free_port(protocol: &str, taken: &BTreeSet<u16>) -> io::Result<u16> {
    for _ in 0..50 {
        let port = if protocol.eq_ignore_ascii_case("UDP") {
            UdpSocket::bind(("127.0.0.1", 0))?.local_addr()?.port()
        } else {
            TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port()
        };
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free port found"))
}
