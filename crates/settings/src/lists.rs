//! Comma-separated settings, turned into lists when they are read (so a bad item
//! is named at start-up, with its key, and no caller splits a string again).

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de::Error};

pub(crate) fn items(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `a, b,c` → `["a", "b", "c"]`; blank items are dropped.
pub fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(items(&raw).map(str::to_owned).collect())
}

/// Secrets, comma-separated (a secret and the one it replaces, during rotation).
/// The whole value is never echoed in an error.
pub fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    let raw = SecretString::deserialize(d)?;
    Ok(items(secrecy::ExposeSecret::expose_secret(&raw))
        .map(|s| SecretString::from(s.to_owned()))
        .collect())
}

/// The longest delay a list of milliseconds may hold: a day.
const MAX_DELAY_MS: u64 = 86_400_000;
/// The shortest: 100 ms.
const MIN_DELAY_MS: u64 = 100;

/// `2000,10000` → 2 s and 10 s: at least one, each 100 ms to a day.
pub fn millis_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let raw = String::deserialize(d)?;
    let delays = items(&raw)
        .map(|item| {
            item.parse::<u64>()
                .ok()
                .filter(|ms| (MIN_DELAY_MS..=MAX_DELAY_MS).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    D::Error::custom(format!(
                        "holds {item:?}, not a number of milliseconds from {MIN_DELAY_MS} to {MAX_DELAY_MS}"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err(D::Error::custom("needs at least one delay"));
    }
    Ok(delays)
}
