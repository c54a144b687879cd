//! Identifiers, tokens, timestamps and links in Edgegap's observed formats.

use rand::Rng;

/// Deployment `request_id`: 12 lowercase hex chars (`835d0d69f2fc`).
pub fn request_id() -> String {
    hex(6)
}

/// Session id: 12 hex chars + `-S` (`a1cb46bc7f15-S`).
pub fn session_id() -> String {
    format!("{}-S", hex(6))
}

/// `ARBITRIUM_CONTEXT_TOKEN` / `ARBITRIUM_DELETE_TOKEN`: 32 hex chars.
pub fn token() -> String {
    hex(16)
}

/// Random small integer for context security numbers and access point ids.
pub fn small_number() -> u32 {
    rand::rng().random_range(1..10_000)
}

fn hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// Edgegap timestamp: `2024-10-09 14:03:24.975285` (UTC, space, microseconds).
pub fn timestamp_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// `link` of a port: `<fqdn>:<external>`, scheme-prefixed for HTTP/WS.
pub fn port_link(fqdn: &str, external: u16, protocol: &str, tls_upgrade: bool) -> String {
    let scheme = match (protocol.to_ascii_uppercase().as_str(), tls_upgrade) {
        ("HTTP", false) => "http://",
        ("HTTP", true) => "https://",
        ("WS", false) => "ws://",
        ("WS", true) => "wss://",
        _ => "",
    };
    format!("{scheme}{fqdn}:{external}")
}

/// Name suffix of `ARBITRIUM_PORT_<NAME>_*`: upper-cased, non-alphanumerics
/// replaced by `_` (Edgegap's exact sanitising is undocumented).
pub fn env_port_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_edgegap() {
        let id = request_id();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(session_id().ends_with("-S"));
        assert_eq!(token().len(), 32);
        let ts = timestamp_now();
        assert_eq!(ts.len(), "2024-10-09 14:03:24.975285".len(), "{ts}");
        assert_eq!(&ts[10..11], " ");
        assert_eq!(port_link("x.pr.edgegap.net", 31587, "HTTP", true), "https://x.pr.edgegap.net:31587");
        assert_eq!(port_link("x.pr.edgegap.net", 30898, "UDP", false), "x.pr.edgegap.net:30898");
        assert_eq!(env_port_name("server port"), "SERVER_PORT");
    }
}
