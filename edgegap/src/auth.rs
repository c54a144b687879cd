//! Credentials: the account API key and the per-deployment raw tokens.
//!
//! Both kinds are secrets that end up in long-running processes whose state is
//! logged and `Debug`-printed (Bevy resources, tracing spans), so neither type
//! implements `Display` and both redact themselves in `Debug`.

use std::fmt;

use crate::error::EdgegapError;

/// The literal prefix Edgegap expects in front of an account API token.
const TOKEN_PREFIX: &str = "token ";

/// An Edgegap account API key, sent as `authorization: token <key>`.
///
/// Operators configure the key either bare (`a1b2…`) or with the prefix
/// (`token a1b2…`, as bevygap's `.env` files do); both are accepted and
/// normalised so that the header is always sent exactly once-prefixed
/// (Edgegap rejects `token token <key>`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Parses a configured key, accepting it with or without the `token ` prefix.
    ///
    /// Fails on an empty key, a doubled prefix or whitespace inside the key,
    /// which would otherwise only show up as a 401 at run time.
    pub fn parse(configured: &str) -> Result<Self, EdgegapError> {
        let trimmed = configured.trim();
        let bare = match trimmed.get(..TOKEN_PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(TOKEN_PREFIX) => trimmed[TOKEN_PREFIX.len()..].trim_start(),
            _ => trimmed,
        };
        // "token " trims to "token": a prefix with no key.
        if bare.is_empty() || bare.eq_ignore_ascii_case(TOKEN_PREFIX.trim_end()) {
            return Err(EdgegapError::InvalidConfig("the Edgegap API key is empty".into()));
        }
        if bare.chars().any(char::is_whitespace) {
            return Err(EdgegapError::InvalidConfig(
                "the Edgegap API key contains whitespace (a doubled `token ` prefix?)".into(),
            ));
        }
        Ok(Self(bare.to_owned()))
    }

    /// The value of the `authorization` header for account endpoints.
    pub(crate) fn header_value(&self) -> String {
        format!("{TOKEN_PREFIX}{}", self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A raw per-deployment token (`ARBITRIUM_CONTEXT_TOKEN`, `ARBITRIUM_DELETE_TOKEN`).
///
/// In-container endpoints take it verbatim in the `authorization` header, with
/// no `token ` prefix. Redacted in `Debug` like [`ApiKey`].
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(String);

impl RawToken {
    /// Wraps a token exactly as Edgegap injected it.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The header value: the token itself.
    pub(crate) fn header_value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_key_with_or_without_prefix() {
        let bare = ApiKey::parse("a1b2-c3").expect("bare key");
        let prefixed = ApiKey::parse("token a1b2-c3").expect("prefixed key");
        assert_eq!(bare, prefixed);
        assert_eq!(bare.header_value(), "token a1b2-c3");
        assert_eq!(ApiKey::parse("  Token a1b2-c3\n").expect("padded").header_value(), "token a1b2-c3");
    }

    #[test]
    fn rejects_empty_and_doubled_prefix() {
        assert!(ApiKey::parse("").is_err());
        assert!(ApiKey::parse("token ").is_err());
        assert!(ApiKey::parse("token token abc").is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKey::parse("token supersecret123").expect("key");
        let token = RawToken::new("rawsecret456");
        let shown = format!("{key:?} {token:?} {:?}", Some(&key));
        assert!(!shown.contains("supersecret123"), "{shown}");
        assert!(!shown.contains("rawsecret456"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
