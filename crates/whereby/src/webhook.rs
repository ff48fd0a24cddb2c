//! Whereby webhook signatures: `Whereby-Signature: t=<unix seconds>,v1=<hex>`, where
//! v1 is HMAC-SHA256 over `t + "." + <the raw body bytes>` keyed with the webhook
//! secret. Verification works on the raw bytes (never a re-serialisation), compares
//! in constant time, accepts any of several `v1` entries and any of several secrets
//! (rotation), and bounds the timestamp's age in both directions.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "Whereby-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. The variants name the reason for metrics and logs;
/// none of them carries the expected signature or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

impl SignatureError {
    /// A short label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::Malformed => "signature_malformed",
            Self::Stale => "signature_stale",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value Whereby would send for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let tag = mac(secret.as_bytes(), &t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// A parsed header: one timestamp (kept as sent, since the HMAC covers its text)
/// and every `v1` signature, hex-decoded.
struct Parsed<'a> {
    timestamp_text: &'a str,
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

/// The longest header accepted: a timestamp and [`MAX_SIGNATURES`] entries fit in
/// well under 1 KiB. Anything longer is refused before any HMAC is computed.
pub const MAX_HEADER_LEN: usize = 1024;
/// The most `v1` entries accepted (a rotation needs two).
pub const MAX_SIGNATURES: usize = 8;

fn parse(header: &str) -> Result<Parsed<'_>, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.split_once('=').ok_or(SignatureError::Malformed)?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "t" => {
                if timestamp.is_some()
                    || value.is_empty()
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    // Duplicate, empty, signed, fractional or non-numeric `t`.
                    return Err(SignatureError::Malformed);
                }
                let seconds = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed)?;
                timestamp = Some((value, seconds));
            }
            "v1" => {
                if value.len() != 64 || signatures.len() == MAX_SIGNATURES {
                    return Err(SignatureError::Malformed);
                }
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?);
            }
            // Other schemes (a future v2, say) are ignored, as in Stripe's scheme.
            _ => {}
        }
    }
    let (timestamp_text, timestamp) = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(Parsed {
        timestamp_text,
        timestamp,
        signatures,
    })
}

/// Checks a webhook. `secrets` are tried in turn (current and previous during a
/// rotation); `now` and `tolerance_secs` bound the timestamp in both directions.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    SignatureHeader::check(header, now, tolerance_secs)?.verify(body, secrets)
}

/// A signature header that is well formed and fresh: everything that can be
/// checked before the body is read (a receiver refuses the rest without reading
/// or buffering a byte of the body).
pub struct SignatureHeader<'a>(Parsed<'a>);

impl<'a> SignatureHeader<'a> {
    pub fn check(
        header: Option<&'a str>,
        now: i64,
        tolerance_secs: i64,
    ) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        if header.trim().is_empty() {
            return Err(SignatureError::Missing);
        }
        let parsed = parse(header)?;
        if now.abs_diff(parsed.timestamp) > tolerance_secs.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        Ok(Self(parsed))
    }

    /// Whether any entry is the HMAC of `body` under any of `secrets`. One pass
    /// over the body per secret; each entry then costs a finalisation of a copy of
    /// that state and a constant-time comparison.
    pub fn verify(&self, body: &[u8], secrets: &[&[u8]]) -> Result<(), SignatureError> {
        let parsed = &self.0;
        let matched = secrets.iter().any(|secret| {
            let state = mac(secret, parsed.timestamp_text, body);
            parsed
                .signatures
                .iter()
                .any(|signature| state.clone().verify_slice(signature).is_ok())
        });
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_BODY: &str = r#"{"id":"evt_1","apiVersion":"1.0","createdAt":"2020-11-24T14:23:11.000Z","type":"room.session.started","data":{"meetingId":"134","roomName":"/af0b7b66-c738-4981-887a-ad416754f32d","subdomain":"example","roomSessionId":null}}"#;
    const VECTOR_SIG: &str = "7d699d3c1dc14e956e4ae3fa50021afd46986dead172652b97dae927cfa3f7a5";

    #[test]
    fn known_test_vector() {
        assert_eq!(
            sign("test_secret", 1_606_227_791, VECTOR_BODY.as_bytes()),
            format!("t=1606227791,v1={VECTOR_SIG}")
        );
        let header = format!("t=1606227791,v1={VECTOR_SIG}");
        assert_eq!(
            verify(
                Some(&header),
                VECTOR_BODY.as_bytes(),
                &[b"test_secret"],
                1_606_227_791,
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn stuffed_headers_are_refused_before_any_mac() {
        let body = b"{}";
        let good = sign("s", 100, body);
        let entry = &good[good.find("v1=").unwrap_or(0)..];
        // Eight entries with the right one last: accepted.
        let eight = format!("t=100{}", format!(",{entry}").repeat(8));
        assert!(eight.len() <= MAX_HEADER_LEN);
        assert_eq!(verify(Some(&eight), body, &[b"s"], 100, 5), Ok(()));
        // A ninth: refused, however good the entries.
        let nine = format!("t=100{}", format!(",{entry}").repeat(9));
        assert_eq!(
            verify(Some(&nine), body, &[b"s"], 100, 5),
            Err(SignatureError::Malformed)
        );
        // Over 1 KiB of padding: refused.
        let long = format!("{good},x={}", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(
            verify(Some(&long), body, &[b"s"], 100, 5),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn every_entry_is_compared_against_every_secret() {
        let body = b"{\"id\":\"e\"}";
        let old = sign("old-secret", 100, body);
        let new = sign("new-secret", 100, body);
        let header = format!(
            "t=100,v1={},{}",
            "0".repeat(64),
            &old[old.find("v1=").unwrap_or(0)..]
        );
        assert_eq!(
            verify(Some(&header), body, &[b"new-secret", b"old-secret"], 100, 5),
            Ok(())
        );
        assert_eq!(
            verify(Some(&new), body, &[b"old-secret"], 100, 5),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn non_ascii_bodies_are_verified_over_their_raw_bytes() {
        let body = "{\"id\":\"e\",\"data\":{\"displayName\":\"Zoë\"}}";
        let header = sign("whsec-test-0123456789", 1_700_000_000, body.as_bytes());
        assert!(
            verify(
                Some(&header),
                body.as_bytes(),
                &[b"whsec-test-0123456789"],
                1_700_000_000,
                60
            )
            .is_ok()
        );
        let escaped = "{\"id\":\"e\",\"data\":{\"displayName\":\"Zo\\u00eb\"}}";
        assert_eq!(
            verify(
                Some(&header),
                escaped.as_bytes(),
                &[b"whsec-test-0123456789"],
                1_700_000_000,
                60
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
