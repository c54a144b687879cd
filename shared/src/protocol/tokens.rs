use std::fmt;

use serde::{Deserialize, Serialize};

// Reflected as opaque values (their validated string), so BRP can show them but cannot write an
// unvalidated one: deserialising goes through `TryFrom<String>`.
#[cfg(feature = "bevy")]
use bevy::reflect::{ReflectDeserialize, ReflectSerialize};

/// Why a name, version or id from a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{field} contains {ch:?}; only {allowed} are allowed")]
    BadChar { field: &'static str, ch: char, allowed: &'static str },
    #[error("{field} is {len} characters long; at least {min} are required")]
    TooShort { field: &'static str, len: usize, min: usize },
    #[error("{field} must start with a letter or digit")]
    BadStart { field: &'static str },
}

fn check(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Result<(), TokenError> {
    if value.is_empty() {
        return Err(TokenError::Empty { field });
    }
    let len = value.chars().count();
    if len > max {
        return Err(TokenError::TooLong { field, len, max });
    }
    if len < min {
        return Err(TokenError::TooShort { field, len, min });
    }
    if let Some(ch) = value.chars().find(|c| !ok(*c)) {
        return Err(TokenError::BadChar { field, ch, allowed });
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(TokenError::BadStart { field });
    }
    Ok(())
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[cfg_attr(
            feature = "bevy",
            derive(bevy::reflect::Reflect),
            reflect(opaque, Debug, PartialEq, Hash, Serialize, Deserialize),
            type_path = "bevygap"
        )]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; the error names the field and what is wrong with it.
            pub fn new(value: impl Into<String>) -> Result<Self, TokenError> {
                let value = value.into();
                check($field, &value, $min, $max, $allowed, $ok)?;
                Ok(Self(value))
            }

            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TokenError;
            fn try_from(value: String) -> Result<Self, TokenError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = TokenError;
            fn from_str(s: &str) -> Result<Self, TokenError> {
                Self::new(s)
            }
        }
    };
}

token_type!(
    /// A game's name: 1–64 of `A-Z a-z 0-9 _ -`, starting with a letter or digit. Safe as a NATS
    /// key or subject token as it is.
    GameName, "game", 1, 64, "letters, digits, '_' and '-'", name_char
);

token_type!(
    /// A game build's version: 1–32 of `A-Z a-z 0-9 _ - .`. Dots are common in versions but
    /// separate tokens in NATS subjects, so [`GameVersion::key_token`] escapes them.
    GameVersion, "version", 1, 32, "letters, digits, '_', '-' and '.'",
    |c| name_char(c) || c == '.'
);

token_type!(
    /// A client-chosen id that makes a join idempotent: a retry with the same id resumes the
    /// same request instead of placing the player twice. 8–64 of `A-Z a-z 0-9 _ -` (a UUID fits).
    RequestId, "request_id", 8, 64, "letters, digits, '_' and '-'", name_char
);

token_type!(
    /// A placement hint such as `eu` or `us-east`; providers that cannot place by region ignore it.
    Region, "region", 1, 32, "letters, digits, '_' and '-'", name_char
);

token_type!(
    /// Players sending the same party id are placed on the same server when seats allow.
    PartyId, "party", 1, 64, "letters, digits, '_' and '-'", name_char
);

impl GameVersion {
    /// The version as one NATS key/subject token: `.` becomes `=2E`. `=` cannot occur in a
    /// version, so the mapping is reversible and `1.0` and `1_0` never collide.
    pub fn key_token(&self) -> String {
        self.0.replace('.', "=2E")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        assert_eq!(GameName::new("space-ships_2").unwrap().as_str(), "space-ships_2");
        assert_eq!(GameVersion::new("1.2.3-beta").unwrap().key_token(), "1=2E2=2E3-beta");
    }

    #[test]
    fn refuses_injection_and_says_why() {
        assert_eq!(
            GameName::new("a.b").unwrap_err(),
            TokenError::BadChar { field: "game", ch: '.', allowed: "letters, digits, '_' and '-'" }
        );
        assert!(matches!(GameName::new("a b"), Err(TokenError::BadChar { ch: ' ', .. })));
        assert!(matches!(GameName::new("a>"), Err(TokenError::BadChar { ch: '>', .. })));
        assert!(matches!(GameVersion::new("1\r\n"), Err(TokenError::BadChar { .. })));
        assert!(matches!(GameVersion::new("*"), Err(TokenError::BadChar { ch: '*', .. })));
        assert_eq!(GameName::new("").unwrap_err(), TokenError::Empty { field: "game" });
        assert!(matches!(GameVersion::new(".1"), Err(TokenError::BadStart { field: "version" })));
        let long = "x".repeat(65);
        assert_eq!(GameName::new(long).unwrap_err(), TokenError::TooLong { field: "game", len: 65, max: 64 });
        assert_eq!(
            GameName::new("bad name").unwrap_err().to_string(),
            "game contains ' '; only letters, digits, '_' and '-' are allowed"
        );
    }

    #[test]
    fn request_ids_have_a_minimum_length() {
        assert_eq!(RequestId::new("abc").unwrap_err(), TokenError::TooShort { field: "request_id", len: 3, min: 8 });
        assert!(RequestId::new("0123456789abcdef").is_ok());
        assert!(serde_json::from_str::<RequestId>("\"abc\"").is_err());
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<GameName>("\"a.b\"").unwrap_err().to_string();
        assert!(err.contains("game contains '.'"), "{err}");
        assert_eq!(serde_json::from_str::<GameName>("\"ok\"").unwrap().as_str(), "ok");
    }
}
