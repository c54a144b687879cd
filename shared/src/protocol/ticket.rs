//! What a join says about its player for match rules: the mode (a profile of the game), the
//! attributes the rules compare, and measured latencies per location. Bounded and checked
//! here, so a request can never make the matchmaker hold or compare unbounded data.
//!
//! Attributes are the player's claims: the client sends them. A game with a backend should
//! have them come from it once player identity exists.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Most numbers, strings or lists a ticket carries, each.
pub const MAX_ATTRIBUTES: usize = 16;
/// Most values in one list attribute.
pub const MAX_LIST_VALUES: usize = 32;
/// Most locations a ticket measured.
pub const MAX_LOCATIONS: usize = 16;
/// Longest name (mode, attribute, location) and longest string value, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Highest latency accepted, in milliseconds.
pub const MAX_LATENCY_MS: f64 = 10_000.0;

/// The attributes of a ticket, as the wire carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketAttributes {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numbers: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub strings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, BTreeSet<String>>,
}

impl TicketAttributes {
    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.strings.is_empty() && self.lists.is_empty()
    }

    /// Checks every bound; the message names the offending field.
    pub fn check(&self) -> Result<(), String> {
        for (what, count) in [
            ("attributes.numbers", self.numbers.len()),
            ("attributes.strings", self.strings.len()),
            ("attributes.lists", self.lists.len()),
        ] {
            if count > MAX_ATTRIBUTES {
                return Err(format!("{what} has {count} entries, more than {MAX_ATTRIBUTES}"));
            }
        }
        for (name, value) in &self.numbers {
            check_name("attributes.numbers", name)?;
            if !value.is_finite() {
                return Err(format!("attributes.numbers.{name} is not a finite number"));
            }
        }
        for (name, value) in &self.strings {
            check_name("attributes.strings", name)?;
            if value.len() > MAX_NAME_BYTES {
                return Err(format!("attributes.strings.{name} is longer than {MAX_NAME_BYTES} bytes"));
            }
        }
        for (name, values) in &self.lists {
            check_name("attributes.lists", name)?;
            if values.len() > MAX_LIST_VALUES {
                return Err(format!("attributes.lists.{name} has more than {MAX_LIST_VALUES} values"));
            }
            if values.iter().any(|v| v.len() > MAX_NAME_BYTES) {
                return Err(format!("attributes.lists.{name} has a value longer than {MAX_NAME_BYTES} bytes"));
            }
        }
        Ok(())
    }
}

/// Checks measured latencies: few locations, named like regions, each 0 to
/// [`MAX_LATENCY_MS`] milliseconds.
pub fn check_latencies(latencies: &BTreeMap<String, f64>) -> Result<(), String> {
    if latencies.len() > MAX_LOCATIONS {
        return Err(format!("latencies has {} locations, more than {MAX_LOCATIONS}", latencies.len()));
    }
    for (location, ms) in latencies {
        check_name("latencies", location)?;
        if !(ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(ms)) {
            return Err(format!("latencies.{location} must be 0 to {MAX_LATENCY_MS} ms"));
        }
    }
    Ok(())
}

/// A mode (profile) name: what profiles are named with.
pub fn check_mode(mode: &str) -> Result<(), String> {
    check_name("mode", mode)
}

/// A name of letters, digits, `_` and `-`, 1 to [`MAX_NAME_BYTES`] bytes.
fn check_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{field} has a bad name {name:?} (letters, digits, _ and -, at most {MAX_NAME_BYTES} bytes)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_name_the_field() {
        let mut a = TicketAttributes::default();
        a.numbers.insert("elo".into(), 1200.0);
        a.lists.insert("maps".into(), ["dust".to_string()].into());
        assert!(a.check().is_ok());
        a.numbers.insert("bad name".into(), 1.0);
        assert!(a.check().unwrap_err().contains("attributes.numbers"));
        a.numbers.remove("bad name");
        a.numbers.insert("nan".into(), f64::NAN);
        assert!(a.check().unwrap_err().contains("attributes.numbers.nan"));
        a.numbers.clear();
        a.lists.insert("many".into(), (0..40).map(|i| i.to_string()).collect());
        assert!(a.check().unwrap_err().contains("attributes.lists.many"));
        let too_many: BTreeMap<String, f64> = (0..20).map(|i| (format!("l{i}"), 10.0)).collect();
        assert!(check_latencies(&too_many).unwrap_err().contains("latencies"));
        assert!(check_latencies(&[("eu".to_string(), -1.0)].into()).unwrap_err().contains("latencies.eu"));
        assert!(check_latencies(&[("eu".to_string(), 42.0)].into()).is_ok());
        assert!(check_mode("duel").is_ok() && check_mode("").is_err() && check_mode("a.b").is_err());
    }
}
