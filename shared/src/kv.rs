//! Creating and opening the JetStream KV buckets.
//!
//! Only the matchmaker provisions (it needs JetStream admin rights); game servers open the
//! existing buckets, so credentials shipped inside a game-server image need none.

use std::time::Duration;

use async_nats::jetstream::{self, kv};

use crate::naming::{Bucket, NatsNames};

/// A bucket could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    #[error("cannot create or update KV bucket {bucket}: {source}")]
    Provision {
        bucket: String,
        #[source]
        source: async_nats::jetstream::context::CreateKeyValueError,
    },
    #[error("cannot open KV bucket {bucket} (has the matchmaker provisioned this namespace?): {source}")]
    Open {
        bucket: String,
        #[source]
        source: async_nats::jetstream::context::KeyValueError,
    },
}

/// How long a server record lives without a heartbeat before it expires.
pub const SERVER_RECORD_TTL: Duration = Duration::from_secs(30);
/// How long a player record lives without being refreshed by its server.
pub const PLAYER_RECORD_TTL: Duration = Duration::from_secs(120);

/// The configuration each bucket needs: history, expiry and whether expiries leave a marker
/// that watchers see (how the matchmaker notices a server whose heartbeat stopped).
pub fn bucket_config(names: &NatsNames, bucket: Bucket) -> kv::Config {
    let (description, max_age, markers) = match bucket {
        Bucket::Servers => ("Bevygap game servers, kept alive by heartbeats", SERVER_RECORD_TTL, true),
        Bucket::Clients => ("Bevygap client id -> grant, for admission", Duration::from_secs(24 * 3600), false),
        Bucket::Players => ("Bevygap connected players per server", PLAYER_RECORD_TTL, true),
        Bucket::Sessions => ("Bevygap game sessions", Duration::from_secs(24 * 3600), false),
        Bucket::Requests => ("Bevygap join requests by id, for idempotent retries", Duration::from_secs(600), false),
    };
    kv::Config {
        bucket: names.bucket(bucket),
        description: description.to_string(),
        history: 1,
        max_age,
        max_value_size: 16 * 1024,
        storage: jetstream::stream::StorageType::File,
        limit_markers: markers.then_some(Duration::from_secs(5)),
        ..Default::default()
    }
}

/// The matchmakers' lease bucket ([`NatsNames::lease_bucket`]). Nothing in it expires within
/// a lease's life (a NATS leader election must not end a lease): replicas judge liveness by
/// revisions and timestamps; a day's age only clears out replicas long gone.
pub fn lease_bucket_config(names: &NatsNames, replicas: usize) -> kv::Config {
    kv::Config {
        bucket: names.lease_bucket(),
        description: "Bevygap matchmaker replicas: the namespace lease and who is present".to_string(),
        history: 1,
        max_age: Duration::from_secs(24 * 3600),
        max_value_size: 1024,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Creates (or updates) the lease bucket; matchmakers only.
pub async fn provision_leases(
    js: &jetstream::Context,
    names: &NatsNames,
    replicas: usize,
) -> Result<kv::Store, KvError> {
    let config = lease_bucket_config(names, replicas);
    let bucket = config.bucket.clone();
    js.create_or_update_key_value(config).await.map_err(|source| KvError::Provision { bucket, source })
}

/// Handles on every bucket of one namespace.
#[derive(Clone, Debug)]
pub struct KvStores {
    pub servers: kv::Store,
    pub clients: kv::Store,
    pub players: kv::Store,
    pub sessions: kv::Store,
    pub requests: kv::Store,
}

impl KvStores {
    /// Creates every bucket, or updates its config if it exists; safe to call on every start.
    /// One replica (a single nats-server).
    pub async fn provision(js: &jetstream::Context, names: &NatsNames) -> Result<Self, KvError> {
        Self::provision_replicated(js, names, 1).await
    }

    /// [`provision`](Self::provision) with `replicas` copies of every bucket (3 on a
    /// three-node cluster: any one node may be lost without losing a record or stopping).
    pub async fn provision_replicated(
        js: &jetstream::Context,
        names: &NatsNames,
        replicas: usize,
    ) -> Result<Self, KvError> {
        let one = |bucket| async move {
            let config = kv::Config { num_replicas: replicas.max(1), ..bucket_config(names, bucket) };
            let name = config.bucket.clone();
            js.create_or_update_key_value(config).await.map_err(|source| KvError::Provision { bucket: name, source })
        };
        Ok(Self {
            servers: one(Bucket::Servers).await?,
            clients: one(Bucket::Clients).await?,
            players: one(Bucket::Players).await?,
            sessions: one(Bucket::Sessions).await?,
            requests: one(Bucket::Requests).await?,
        })
    }

    /// Opens the existing buckets without admin rights.
    pub async fn open(js: &jetstream::Context, names: &NatsNames) -> Result<Self, KvError> {
        let one = |bucket| async move {
            let name = names.bucket(bucket);
            js.get_key_value(&name).await.map_err(|source| KvError::Open { bucket: name, source })
        };
        Ok(Self {
            servers: one(Bucket::Servers).await?,
            clients: one(Bucket::Clients).await?,
            players: one(Bucket::Players).await?,
            sessions: one(Bucket::Sessions).await?,
            requests: one(Bucket::Requests).await?,
        })
    }
}
