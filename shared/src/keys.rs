//! The Lightyear protocol id and private key that the matchmaker signs ConnectTokens with and
//! game servers verify them with.

use std::fmt;
use std::path::Path;

use base64::Engine;

use crate::env::{EnvError, EnvSource};

/// The 32-byte netcode private key. `Debug` never shows it and it cannot be serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes, for handing to Lightyear; never log them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is the all-zero development key.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// The key as 64 lowercase hex characters, the form [`PrivateKey::parse`] reads first: for
    /// handing it to a child process (environment or key file); never log it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex characters or standard/URL-safe base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
            }
            return Ok(Self(out));
        }
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let decoded = engines.iter().find_map(|e| e.decode(text).ok());
        match decoded {
            Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| format!("decodes to {} bytes; the key must be exactly 32", bytes.len())),
            None => Err("is neither 64 hex characters nor base64 of 32 bytes".into()),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_zero() { "PrivateKey(<all-zero development key>)" } else { "PrivateKey(***)" })
    }
}

/// Protocol id plus private key, shared by the matchmaker and every game server of a game.
///
/// | variable | meaning |
/// |---|---|
/// | `LIGHTYEAR_PROTOCOL_ID` | u64, decimal or `0x` hex (default 0 in development) |
/// | `LIGHTYEAR_PRIVATE_KEY` | 32 bytes as 64 hex characters or base64 |
/// | `LIGHTYEAR_PRIVATE_KEY_FILE` | a file holding the key in either form |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightyearKeys {
    pub protocol_id: u64,
    pub private_key: PrivateKey,
}

impl LightyearKeys {
    /// The all-zero development keys: anyone can mint tokens for servers using them.
    pub fn development() -> Self {
        Self { protocol_id: 0, private_key: PrivateKey([0; 32]) }
    }

    /// Whether these are the insecure development keys.
    pub fn is_development(&self) -> bool {
        self.private_key.is_zero()
    }

    /// The `LIGHTYEAR_PROTOCOL_ID` (decimal) and `LIGHTYEAR_PRIVATE_KEY` (hex) variables that
    /// [`LightyearKeys::from_env`] reads back as these keys, for starting a process with them.
    /// The key is then readable in that process's environment: a provider that starts game
    /// servers on a shared host hands it over in a `LIGHTYEAR_PRIVATE_KEY_FILE` instead.
    pub fn to_env(&self) -> [(&'static str, String); 2] {
        [("LIGHTYEAR_PROTOCOL_ID", self.protocol_id.to_string()), ("LIGHTYEAR_PRIVATE_KEY", self.private_key.to_hex())]
    }

    /// Reads the keys from the process environment; see the table on [`LightyearKeys`].
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_source(&crate::env::ProcessEnv)
    }

    /// Reads the keys from any [`EnvSource`]. With nothing configured it returns the
    /// development keys and logs a loud warning; anything configured but malformed is an error.
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, EnvError> {
        let protocol_id = match env.var("LIGHTYEAR_PROTOCOL_ID") {
            Some(text) => Some(parse_u64(text.trim()).ok_or_else(|| {
                EnvError::new("LIGHTYEAR_PROTOCOL_ID", format!("{text:?} is not a u64 (decimal or 0x hex)"))
            })?),
            None => None,
        };
        let key = match (env.var("LIGHTYEAR_PRIVATE_KEY"), env.var("LIGHTYEAR_PRIVATE_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(EnvError::new(
                    "LIGHTYEAR_PRIVATE_KEY_FILE",
                    "set LIGHTYEAR_PRIVATE_KEY or its _FILE, not both",
                ));
            }
            (Some(text), None) => {
                Some(PrivateKey::parse(&text).map_err(|e| EnvError::new("LIGHTYEAR_PRIVATE_KEY", e))?)
            }
            (None, Some(path)) => Some(read_key_file(Path::new(&path))?),
            (None, None) => None,
        };
        match (protocol_id, key) {
            (None, None) => {
                tracing::warn!(
                    "LIGHTYEAR_PRIVATE_KEY is not set: using the ALL-ZERO DEVELOPMENT KEY. Anyone can forge \
                     ConnectTokens for these servers. Set LIGHTYEAR_PROTOCOL_ID and LIGHTYEAR_PRIVATE_KEY in production."
                );
                Ok(Self::development())
            }
            (_, None) => Err(EnvError::new("LIGHTYEAR_PRIVATE_KEY", "is required when LIGHTYEAR_PROTOCOL_ID is set")),
            (id, Some(private_key)) => {
                if private_key.is_zero() {
                    tracing::warn!("LIGHTYEAR_PRIVATE_KEY is all zeros: this is the insecure development key");
                }
                Ok(Self { protocol_id: id.unwrap_or(0), private_key })
            }
        }
    }
}

fn read_key_file(path: &Path) -> Result<PrivateKey, EnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EnvError::new("LIGHTYEAR_PRIVATE_KEY_FILE", format!("{}: {e}", path.display())))?;
    PrivateKey::parse(&text)
        .map_err(|e| EnvError::new("LIGHTYEAR_PRIVATE_KEY_FILE", format!("{}: {e}", path.display())))
}

fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn keys(vars: &[(&str, &str)]) -> Result<LightyearKeys, EnvError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        LightyearKeys::from_source(&map)
    }

    #[test]
    fn development_default_only_when_nothing_is_set() {
        assert!(keys(&[]).unwrap().is_development());
        assert_eq!(keys(&[("LIGHTYEAR_PROTOCOL_ID", "7")]).unwrap_err().var, "LIGHTYEAR_PRIVATE_KEY");
    }

    #[test]
    fn parses_hex_and_base64() {
        let hex = "01".repeat(32);
        let k = keys(&[("LIGHTYEAR_PROTOCOL_ID", "0x10"), ("LIGHTYEAR_PRIVATE_KEY", &hex)]).unwrap();
        assert_eq!(k.protocol_id, 16);
        assert_eq!(k.private_key.expose(), &[1u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode([2u8; 32]);
        let k = keys(&[("LIGHTYEAR_PRIVATE_KEY", &b64)]).unwrap();
        assert_eq!(k.private_key.expose(), &[2u8; 32]);
    }

    #[test]
    fn to_env_is_read_back_as_the_same_keys() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        for original in [
            LightyearKeys { protocol_id: u64::MAX, private_key: PrivateKey::from_bytes(bytes) },
            LightyearKeys { protocol_id: 0, private_key: PrivateKey::from_bytes([0xff; 32]) },
        ] {
            let vars = original.to_env();
            assert_eq!(vars.clone().map(|(name, _)| name), ["LIGHTYEAR_PROTOCOL_ID", "LIGHTYEAR_PRIVATE_KEY"]);
            let vars: Vec<(&str, &str)> = vars.iter().map(|(name, value)| (*name, value.as_str())).collect();
            assert_eq!(keys(&vars).unwrap(), original);
        }
        assert_eq!(PrivateKey::from_bytes(bytes).to_hex().len(), 64);
        assert_eq!(PrivateKey::from_bytes([0xab; 32]).to_hex(), "ab".repeat(32));
    }

    #[test]
    fn malformed_keys_are_errors_that_name_the_variable() {
        let short = base64::engine::general_purpose::STANDARD.encode([2u8; 31]);
        let err = keys(&[("LIGHTYEAR_PRIVATE_KEY", &short)]).unwrap_err();
        assert_eq!(err.var, "LIGHTYEAR_PRIVATE_KEY");
        assert!(err.reason.contains("31 bytes"), "{err}");
        assert_eq!(keys(&[("LIGHTYEAR_PRIVATE_KEY", "not a key!")]).unwrap_err().var, "LIGHTYEAR_PRIVATE_KEY");
        let hex = "01".repeat(32);
        let err = keys(&[("LIGHTYEAR_PROTOCOL_ID", "-1"), ("LIGHTYEAR_PRIVATE_KEY", &hex)]).unwrap_err();
        assert_eq!(err.var, "LIGHTYEAR_PROTOCOL_ID");
    }

    #[test]
    fn reads_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        let k = keys(&[("LIGHTYEAR_PRIVATE_KEY_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(k.private_key.expose(), &[0xab; 32]);
        let err = keys(&[("LIGHTYEAR_PRIVATE_KEY_FILE", "/nonexistent/key")]).unwrap_err();
        assert_eq!(err.var, "LIGHTYEAR_PRIVATE_KEY_FILE");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let hex = "ab".repeat(32);
        let k = keys(&[("LIGHTYEAR_PRIVATE_KEY", &hex)]).unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.contains("ab, ab") && !shown.contains("171"), "{shown}");
        assert!(shown.contains("***"));
    }
}
