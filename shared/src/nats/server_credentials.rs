//! Per-server NATS credentials, enforced by nats-server through *auth callout*.
//!
//! With one shared game-server user (`assets/nats/bevygap.conf`) any game server, or anyone
//! holding the credentials baked into its image, may write every key of the `servers` and
//! `players` buckets. Here each game server gets its own short credentials instead, and NATS
//! itself confines it to its own records:
//!
//! 1. When the matchmaker launches a server it [`issue`]s a user/password pair: the user is
//!    the server id, the password (about 60 characters, so it fits Edgegap's 255-byte
//!    environment values) is `v1.<valid_until>.<HMAC-SHA256>` under a secret only the
//!    matchmaker holds ([`ServerCredentialKey`]). They reach the server as `NATS_USER` and
//!    `NATS_PASSWORD`, like any other credentials; nothing else changes on the server.
//! 2. nats-server, configured with `auth_callout` (`assets/nats/bevygap-per-server.conf`), asks
//!    the callout service ([`AuthCallout`], run by the matchmaker as the `auth` user) about every
//!    connection that is not a static user. The service [`verify`]s the password, and answers
//!    with a user JWT, signed by the issuer account key, whose permissions are
//!    [`game_server_permissions`] for *that* server id only.
//!
//! No state is kept: the password proves itself, and expires on its own (`valid_until`, also the
//! JWT's expiry, after which NATS disconnects the server). Stopped servers' credentials keep
//! working until then; pick `valid_until` near the server's longest life (its WebTransport
//! certificate lasts at most 14 days).
//!
//! Limitation: a KV watch creates its consumer with the filter in the request body, not the
//! subject, so permissions cannot confine a server's grant *watch* to its own grants; reads of
//! other servers' grants (client ids, session ids, never tokens) stay possible. Writes, grant
//! reads by key, control subjects and inboxes are confined.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use ring::hmac;
use serde_json::{Value, json};

use crate::Secret;
use crate::naming::{Bucket, NatsNames, ServerId};

/// The subject nats-server sends authorization requests to (in the callout account).
pub const AUTH_CALLOUT_SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// Queue group of the callout service, so several matchmaker replicas share the requests.
pub const AUTH_CALLOUT_QUEUE: &str = "bevygap-auth-callout";

const PASSWORD_VERSION: &str = "v1";

/// Why credentials or an authorization request were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The credential key is not 32 bytes as 64 hex characters.
    #[error("the server credential key must be 32 bytes as 64 hex characters")]
    Key,
    /// The issuer seed is not an account nkey seed (`SA…`).
    #[error("the auth callout issuer must be an account nkey seed (SA…)")]
    Issuer,
    /// The user is not a valid server id.
    #[error("the user is not a server id")]
    User,
    /// The password is not of the form Bevygap issues.
    #[error("malformed server password")]
    Malformed,
    /// The password was not issued for this user and namespace with this key.
    #[error("wrong server password")]
    BadSignature,
    /// The password's validity ended (Unix seconds).
    #[error("the server password expired at {0}")]
    Expired(u64),
    /// The authorization request from nats-server could not be read.
    #[error("unreadable authorization request: {0}")]
    Request(String),
}

/// The matchmaker's secret for minting and checking per-server passwords. `Debug` hides it.
#[derive(Clone)]
pub struct ServerCredentialKey([u8; 32]);

impl ServerCredentialKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from 64 hex characters (as `BEVYGAP_SERVER_CREDENTIAL_KEY` would hold it).
    pub fn from_hex(text: &str) -> Result<Self, CredentialError> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err(CredentialError::Key);
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| CredentialError::Key)?;
        }
        Ok(Self(bytes))
    }

    fn mac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

impl std::fmt::Debug for ServerCredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCredentialKey(***)")
    }
}

/// One game server's NATS credentials: hand them to it as `NATS_USER` / `NATS_PASSWORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCredentials {
    /// The server id.
    pub user: String,
    /// `v1.<valid_until>.<mac>`; never logged (`Secret`).
    pub password: Secret,
}

impl ServerCredentials {
    /// The environment variables that carry them to the game server.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [("NATS_USER", self.user.clone()), ("NATS_PASSWORD", self.password.expose().to_string())]
    }
}

fn signed_text(names: &NatsNames, server_id: &str, valid_until: u64) -> String {
    format!("bevygap-server-credential/{PASSWORD_VERSION}/{}/{server_id}/{valid_until}", names.namespace())
}

/// Mints the credentials of `server_id` in `names`' namespace, valid until `valid_until` (Unix
/// seconds).
pub fn issue(
    key: &ServerCredentialKey,
    names: &NatsNames,
    server_id: &ServerId,
    valid_until: u64,
) -> ServerCredentials {
    let tag = hmac::sign(&key.mac_key(), signed_text(names, server_id.as_str(), valid_until).as_bytes());
    let password = format!("{PASSWORD_VERSION}.{valid_until}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    ServerCredentials { user: server_id.to_string(), password: Secret::new(password) }
}

/// Checks credentials presented at `now` (Unix seconds): the server id they are for, and until
/// when they are valid.
pub fn verify(
    key: &ServerCredentialKey,
    names: &NatsNames,
    user: &str,
    password: &str,
    now: u64,
) -> Result<(ServerId, u64), CredentialError> {
    let server_id = ServerId::new(user).map_err(|_| CredentialError::User)?;
    let mut parts = password.splitn(3, '.');
    let (Some(PASSWORD_VERSION), Some(valid_until), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CredentialError::Malformed);
    };
    let valid_until: u64 = valid_until.parse().map_err(|_| CredentialError::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| CredentialError::Malformed)?;
    hmac::verify(&key.mac_key(), signed_text(names, server_id.as_str(), valid_until).as_bytes(), &mac)
        .map_err(|_| CredentialError::BadSignature)?;
    if now >= valid_until {
        return Err(CredentialError::Expired(valid_until));
    }
    Ok((server_id, valid_until))
}

/// NATS subject permissions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
}

/// Everything one game server does, and nothing for any other server: open the buckets, read
/// its own grants by key, watch grants (see the module docs), write `servers.<id>` and
/// `players.<id>.*`, receive its control commands (and answer requests: `resp`), and read its
/// own inbox ([`NatsNames::game_server_inbox_prefix`]).
pub fn game_server_permissions(names: &NatsNames, server_id: &ServerId) -> Permissions {
    let stream = |bucket| format!("KV_{}", names.bucket(bucket));
    let kv = |bucket| format!("$KV.{}", names.bucket(bucket));
    let mut publish: Vec<String> = Bucket::ALL.iter().map(|b| format!("$JS.API.STREAM.INFO.{}", stream(*b))).collect();
    publish.extend([
        format!("$JS.API.DIRECT.GET.{}.{}.{server_id}.>", stream(Bucket::Clients), kv(Bucket::Clients)),
        format!("$JS.API.CONSUMER.CREATE.{}", stream(Bucket::Clients)),
        format!("$JS.API.CONSUMER.DELETE.{}.*", stream(Bucket::Clients)),
        format!("$JS.FC.{}.>", stream(Bucket::Clients)),
        format!("{}.{server_id}", kv(Bucket::Servers)),
        format!("{}.{server_id}.>", kv(Bucket::Players)),
    ]);
    let subscribe =
        vec![format!("{}.>", names.game_server_inbox_prefix(server_id)), names.server_control_subject(server_id)];
    Permissions { publish, subscribe }
}

/// The auth callout service: answers nats-server's authorization requests for game servers
/// presenting [`issue`]d credentials with a user JWT scoped to their server id. Run it on a
/// connection of the callout account's `auth` user ([`AuthCallout::serve`]).
pub struct AuthCallout {
    issuer: nkeys::KeyPair,
    key: ServerCredentialKey,
    names: NatsNames,
    account: String,
}

impl std::fmt::Debug for AuthCallout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCallout")
            .field("issuer", &self.issuer.public_key())
            .field("names", &self.names)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl AuthCallout {
    /// A service signing with the account nkey `issuer_seed` (`SA…`; its public key is the
    /// `auth_callout.issuer` of the nats-server configuration), checking passwords with `key`,
    /// and placing game servers in the NATS account `account` (the namespace's account).
    pub fn new(
        issuer_seed: &Secret,
        key: ServerCredentialKey,
        names: NatsNames,
        account: impl Into<String>,
    ) -> Result<Self, CredentialError> {
        let issuer = nkeys::KeyPair::from_seed(issuer_seed.expose().trim()).map_err(|_| CredentialError::Issuer)?;
        if !issuer.public_key().starts_with('A') {
            return Err(CredentialError::Issuer);
        }
        Ok(Self { issuer, key, names, account: account.into() })
    }

    /// The issuer's public key (`A…`), for `auth_callout.issuer`.
    pub fn issuer_public_key(&self) -> String {
        self.issuer.public_key()
    }

    /// Answers every authorization request until the subscription ends. Refusals are answered
    /// too (nats-server then refuses the connection at once) and logged without the password.
    pub async fn serve(self, client: async_nats::Client) -> Result<(), async_nats::SubscribeError> {
        let mut requests = client.queue_subscribe(AUTH_CALLOUT_SUBJECT, AUTH_CALLOUT_QUEUE.into()).await?;
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else { continue };
            match self.respond(&request.payload, unix_now()) {
                Ok(response) => {
                    if let Err(e) = client.publish(reply, response.into()).await {
                        tracing::warn!("cannot answer an authorization request: {e}");
                    }
                }
                Err(e) => tracing::warn!("ignoring an authorization request: {e}"),
            }
        }
        Ok(())
    }

    /// The signed response to one authorization request (the JWT nats-server sent) at `now`:
    /// a user JWT for a valid game-server password, else a refusal. Errors only when the
    /// request itself cannot be read or is not signed by a nats-server.
    pub fn respond(&self, request: &[u8], now: u64) -> Result<String, CredentialError> {
        let claims = verified_claims(request)?;
        let nats = &claims["nats"];
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let user_nkey = text(&nats["user_nkey"]);
        let server = text(&nats["server_id"]["id"]);
        if user_nkey.is_empty() || server.is_empty() {
            return Err(CredentialError::Request("no user_nkey or server id".into()));
        }
        let options = &nats["connect_opts"];
        let (user, password) = (text(&options["user"]), text(&options["pass"]));
        let outcome = verify(&self.key, &self.names, &user, &password, now);
        let body = match outcome {
            Ok((server_id, valid_until)) => {
                tracing::info!("authorizing game server {server_id} on NATS");
                json!({ "jwt": self.user_jwt(&user_nkey, &server_id, valid_until, now), "type": "authorization_response", "version": 2 })
            }
            Err(e) => {
                tracing::warn!("refusing NATS user {:?}: {e}", user.chars().take(64).collect::<String>());
                json!({ "error": e.to_string(), "type": "authorization_response", "version": 2 })
            }
        };
        let response = json!({
            "jti": jti(),
            "iat": now,
            "iss": self.issuer.public_key(),
            "sub": user_nkey,
            "aud": server,
            "nats": body,
        });
        Ok(encode_jwt(&self.issuer, &response))
    }

    fn user_jwt(&self, user_nkey: &str, server_id: &ServerId, valid_until: u64, now: u64) -> String {
        let permissions = game_server_permissions(&self.names, server_id);
        let claims = json!({
            "jti": jti(),
            "iat": now,
            "exp": valid_until,
            "iss": self.issuer.public_key(),
            "sub": user_nkey,
            "aud": self.account,
            "name": server_id.as_str(),
            "nats": {
                "pub": { "allow": permissions.publish },
                "sub": { "allow": permissions.subscribe },
                "resp": { "max": 1 },
                "subs": -1,
                "data": -1,
                "payload": -1,
                "type": "user",
                "version": 2,
            },
        });
        encode_jwt(&self.issuer, &claims)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A unique JWT id.
fn jti() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A NATS JWT (`ed25519-nkey`) of `claims`, signed by `signer`.
fn encode_jwt(signer: &nkeys::KeyPair, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    // Signing with a key pair made from a seed cannot fail.
    let signature = signer.sign(signing_input.as_bytes()).unwrap_or_default();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The claims of a JWT signed by its issuer, a nats-server (`N…`) for requests.
fn verified_claims(jwt: &[u8]) -> Result<Value, CredentialError> {
    let bad = |what: &str| CredentialError::Request(what.to_string());
    let text = std::str::from_utf8(jwt).map_err(|_| bad("not UTF-8"))?.trim();
    let mut parts = text.split('.');
    let (Some(header), Some(body), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT"));
    };
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).map_err(|_| bad("claims not base64"))?)
        .map_err(|_| bad("claims not JSON"))?;
    let issuer = claims["iss"].as_str().unwrap_or_default();
    if !issuer.starts_with('N') {
        return Err(bad("not issued by a nats-server"));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad("signature not base64"))?;
    nkeys::KeyPair::from_public_key(issuer)
        .and_then(|key| key.verify(format!("{header}.{body}").as_bytes(), &signature))
        .map_err(|_| bad("bad signature"))?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Namespace;

    fn key() -> ServerCredentialKey {
        ServerCredentialKey::from_bytes([7; 32])
    }

    fn names(ns: &str) -> NatsNames {
        Namespace::new(ns).unwrap().names()
    }

    #[test]
    fn passwords_prove_server_namespace_and_validity() {
        let id = ServerId::new("edgegap-835d0d69f2fc").unwrap();
        let credentials = issue(&key(), &names("spaceships"), &id, 2_000_000_000);
        assert_eq!(credentials.user, "edgegap-835d0d69f2fc");
        let password = credentials.password.expose();
        assert!(password.len() < 80 && credentials.user.len() + password.len() < 255, "fits Edgegap's env limit");
        assert_eq!(
            verify(&key(), &names("spaceships"), &credentials.user, password, 1_900_000_000),
            Ok((id, 2_000_000_000))
        );
        let wrong = |user: &str, password: &str, ns: &str, now| verify(&key(), &names(ns), user, password, now);
        assert_eq!(wrong("edgegap-other", password, "spaceships", 0), Err(CredentialError::BadSignature));
        assert_eq!(wrong(&credentials.user, password, "othergame", 0), Err(CredentialError::BadSignature));
        assert_eq!(
            wrong(&credentials.user, password, "spaceships", 2_000_000_000),
            Err(CredentialError::Expired(2_000_000_000))
        );
        let later = password.replacen("2000000000", "2100000000", 1);
        assert_eq!(wrong(&credentials.user, &later, "spaceships", 0), Err(CredentialError::BadSignature));
        assert_eq!(wrong(&credentials.user, "hunter2", "spaceships", 0), Err(CredentialError::Malformed));
        assert_eq!(wrong("a.b", password, "spaceships", 0), Err(CredentialError::User));
        let other_key = ServerCredentialKey::from_bytes([8; 32]);
        assert!(verify(&other_key, &names("spaceships"), &credentials.user, password, 0).is_err());
        assert!(!format!("{credentials:?}{:?}", key()).contains(&password[3..]), "Debug hides secrets");
    }

    #[test]
    fn keys_parse_from_hex() {
        assert!(ServerCredentialKey::from_hex(&"ab".repeat(32)).is_ok());
        assert_eq!(ServerCredentialKey::from_hex("abc").unwrap_err(), CredentialError::Key);
        assert_eq!(ServerCredentialKey::from_hex(&"zz".repeat(32)).unwrap_err(), CredentialError::Key);
    }

    #[test]
    fn permissions_name_only_the_servers_own_subjects() {
        let names = names("spaceships");
        let p = game_server_permissions(&names, &ServerId::new("srv-1").unwrap());
        assert!(p.publish.contains(&"$KV.bevygap_spaceships_servers.srv-1".to_string()));
        assert!(p.publish.contains(&"$KV.bevygap_spaceships_players.srv-1.>".to_string()));
        assert!(p.subscribe.contains(&"bevygap.spaceships.server.srv-1.control".to_string()));
        assert!(p.subscribe.contains(&"_INBOX_bevygap_spaceships_gameserver.srv-1.>".to_string()));
        let all = [p.publish.clone(), p.subscribe.clone()].concat();
        assert!(all.iter().all(|s| !s.contains("srv-2")));
        assert!(all.iter().all(|s| !s.ends_with("servers.>") && !s.ends_with("players.>")), "{all:?}");
    }

    /// A request as nats-server signs it, answered and read back.
    #[test]
    fn answers_a_signed_request_with_a_scoped_user_jwt() {
        let issuer = nkeys::KeyPair::new_account();
        let seed = Secret::new(issuer.seed().unwrap());
        let callout = AuthCallout::new(&seed, key(), names("spaceships"), "bevygap_spaceships").unwrap();
        let server = nkeys::KeyPair::new_server();
        let user = nkeys::KeyPair::new_user().public_key();
        let id = ServerId::new("srv-1").unwrap();
        let credentials = issue(&key(), &names("spaceships"), &id, 2_000_000_000);
        let request = |pass: &str| {
            encode_jwt(
                &server,
                &json!({
                    "iss": server.public_key(), "aud": "nats-authorization-request", "sub": callout.issuer_public_key(),
                    "nats": { "user_nkey": user, "server_id": { "id": "NSERVERID" },
                              "connect_opts": { "user": "srv-1", "pass": pass }, "type": "authorization_request", "version": 2 }
                }),
            )
        };
        let read = |jwt: &str| -> Value {
            let claims = verified_claims_any(jwt);
            assert_eq!(claims["iss"], callout.issuer_public_key());
            claims
        };
        let response = read(&callout.respond(request(credentials.password.expose()).as_bytes(), 1_000).unwrap());
        assert_eq!((response["sub"].as_str(), response["aud"].as_str()), (Some(user.as_str()), Some("NSERVERID")));
        let user_jwt = read(response["nats"]["jwt"].as_str().expect("a user JWT"));
        assert_eq!(
            (user_jwt["sub"].as_str(), user_jwt["aud"].as_str()),
            (Some(user.as_str()), Some("bevygap_spaceships"))
        );
        assert_eq!(user_jwt["exp"], 2_000_000_000u64);
        let allowed = user_jwt["nats"]["pub"]["allow"].as_array().unwrap();
        assert!(allowed.iter().any(|s| s == "$KV.bevygap_spaceships_servers.srv-1"));

        let refused = read(&callout.respond(request("v1.1.AAAA").as_bytes(), 1_000).unwrap());
        assert_eq!(refused["nats"]["error"], "wrong server password");
        assert!(refused["nats"].get("jwt").is_none());
        let forged = encode_jwt(&nkeys::KeyPair::new_account(), &json!({"iss": server.public_key()}));
        assert!(callout.respond(forged.as_bytes(), 1_000).is_err(), "requests must be signed by their server");
    }

    fn verified_claims_any(jwt: &str) -> Value {
        let parts: Vec<&str> = jwt.split('.').collect();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let signer = nkeys::KeyPair::from_public_key(claims["iss"].as_str().unwrap()).unwrap();
        signer
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap();
        claims
    }
}
