//! `--nats-replicas`, `--lease-secs`, `--replica-name` and the embedded nats-server's binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{ConfigError, bad};
use crate::fence::ReplicaName;

/// One copy of each bucket: a single nats-server.
const DEFAULT_NATS_REPLICAS: u8 = 1;
/// Joins wait at most this long for a standby after the owner dies.
const DEFAULT_LEASE_SECS: u64 = 5;

/// How the matchmaker's state is kept in NATS, and how replicas share a namespace.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "NATS and replicas")]
pub struct ReplicaArgs {
    /// Copies of every JetStream KV bucket: 1 on a single nats-server, 3 on a three-node
    /// cluster (any one node can then be lost without losing a record). Applied when the
    /// matchmaker creates or updates the buckets at start.
    #[arg(long, env = "BEVYGAP_NATS_REPLICAS", default_value_t = DEFAULT_NATS_REPLICAS, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
    /// Seconds the namespace lease lasts without renewal (2 to 60): how long, at most, joins
    /// wait for another replica after the owning one dies (see `ownership`). Renewed every
    /// second.
    #[arg(long, env = "BEVYGAP_LEASE_SECS", default_value_t = DEFAULT_LEASE_SECS, value_parser = clap::value_parser!(u64).range(2..=60))]
    pub lease_secs: u64,
    /// This replica's name in the lease, the presence list and the admin view (default: the
    /// host name and process id).
    #[arg(long, env = "BEVYGAP_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// nats-server binary for the embedded server started when NATS_URL is unset.
    #[arg(long, env = "BEVYGAP_NATS_SERVER_BIN", default_value = "nats-server")]
    pub nats_server_bin: PathBuf,
}

/// Validated settings of the matchmaker's NATS state and its place among replicas.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// Copies of every KV bucket.
    pub nats_replicas: usize,
    /// How long the namespace lease lasts unrenewed.
    pub lease_ttl: Duration,
    /// This replica's name.
    pub replica_name: ReplicaName,
    /// The embedded nats-server's binary.
    pub nats_server_bin: PathBuf,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            nats_replicas: usize::from(DEFAULT_NATS_REPLICAS),
            lease_ttl: Duration::from_secs(DEFAULT_LEASE_SECS),
            replica_name: ReplicaName::generated(),
            nats_server_bin: PathBuf::from("nats-server"),
        }
    }
}

impl ReplicaArgs {
    /// Checks the replica name (clap has checked the ranges).
    pub fn validate(self) -> Result<ReplicaSettings, ConfigError> {
        let replica_name = match self.replica_name.filter(|n| !n.is_empty()) {
            Some(name) => {
                ReplicaName::new(name).map_err(|e| bad("--replica-name / BEVYGAP_REPLICA_NAME", e.to_string()))?
            }
            None => ReplicaName::generated(),
        };
        Ok(ReplicaSettings {
            nats_replicas: usize::from(self.nats_replicas),
            lease_ttl: Duration::from_secs(self.lease_secs),
            replica_name,
            nats_server_bin: self.nats_server_bin,
        })
    }
}
