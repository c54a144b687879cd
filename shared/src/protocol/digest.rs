use std::fmt;

use serde::{Deserialize, Serialize};

/// SHA-256 digest of a game server's WebTransport certificate: 64 lowercase hex characters,
/// the form Lightyear's WebTransport client expects (wtransport prints colons; we never do).
/// Browsers pin self-signed certificates with it (`serverCertificateHashes`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertDigest(String);

/// A certificate digest that is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate digest must be 64 hex characters (SHA-256), got {0:?}")]
pub struct BadDigest(pub String);

impl CertDigest {
    /// Parses hex, tolerating upper case and the colon-separated form, and normalises it.
    pub fn parse(text: &str) -> Result<Self, BadDigest> {
        let hex: String = text.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(hex))
        } else {
            Err(BadDigest(text.chars().take(80).collect()))
        }
    }

    /// Builds the digest from the 32 raw bytes of a SHA-256 hash.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 64 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CertDigest {
    type Error = BadDigest;
    fn try_from(value: String) -> Result<Self, BadDigest> {
        Self::parse(&value)
    }
}

impl From<CertDigest> for String {
    fn from(value: CertDigest) -> String {
        value.0
    }
}

impl fmt::Display for CertDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CertDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertDigest({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_colon_and_upper_case_forms() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(CertDigest::parse(&colons).unwrap().as_str(), plain);
        assert_eq!(CertDigest::from_bytes(&[0xab; 32]).as_str(), plain);
    }

    #[test]
    fn refuses_wrong_lengths_and_non_hex() {
        assert!(CertDigest::parse("abcd").is_err());
        assert!(CertDigest::parse(&"zz".repeat(32)).is_err());
        assert!(serde_json::from_str::<CertDigest>("\"nope\"").is_err());
    }
}
