//! Reading configuration from the environment through a lookup function, so config parsing is
//! tested with plain maps instead of mutating the process environment.

use std::collections::HashMap;

/// Looks up one variable; `None` when unset. Empty values count as unset.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }
}

impl EnvSource for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).map(|v| v.to_string())
    }
}

/// A setting that could not be parsed: names the variable and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct EnvError {
    pub var: &'static str,
    pub reason: String,
}

impl EnvError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self { var, reason: reason.into() }
    }
}

/// Parses a boolean setting: `1/0`, `true/false`, `yes/no`, `on/off`.
pub fn parse_bool(env: &dyn EnvSource, var: &'static str) -> Result<Option<bool>, EnvError> {
    match env.var(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(EnvError::new(var, format!("expected true or false, got {v:?}"))),
        },
    }
}
