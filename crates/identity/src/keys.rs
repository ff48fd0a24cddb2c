//! Verification keys for one issuer: a fixed key (an HS256 secret, an RS256 PEM)
//! or a JSON Web Key Set, fetched from a URL and/or read from a file, with the
//! key for a token selected by its `kid`.
//!
//! A key set is refreshed in the background and, at most once per
//! [`MIN_REFETCH`], when a token names a `kid` it does not hold (the issuer has
//! rotated). A failed or empty fetch keeps the last good set, so an identity
//! provider's outage does not log everyone out. The algorithm is the key's (its
//! `alg`, else its type and curve), never the token's.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use prometheus::IntCounterVec;
use tokio_util::sync::CancellationToken;

/// Each fetch of a key set is bounded by this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set larger than this is refused (a normal one is a few KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Keys kept from one set; the rest are ignored.
const MAX_KEYS: usize = 64;
/// A token with an unknown `kid` triggers a fetch at most this often, so that
/// made-up `kid`s cannot turn requests into fetches.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// After a failed background fetch, the next is tried this soon (doubling up to
/// the refresh interval).
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// One key and the one algorithm it verifies.
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

/// The keys of one issuer.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyingKey>,
    /// The key used for tokens without a `kid`: a fixed key, or a set's only key.
    default: Option<VerifyingKey>,
}

impl KeySet {
    pub fn single(key: DecodingKey, algorithm: Algorithm) -> Self {
        Self {
            by_kid: HashMap::new(),
            default: Some(VerifyingKey { key, algorithm }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.default.is_none()
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + usize::from(self.default.is_some())
    }

    /// The key named `kid`; the set's one unnamed key (a fixed key) otherwise.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid.and_then(|kid| self.by_kid.get(kid)) {
            Some(key) => Some(key),
            None if self.by_kid.is_empty() => self.default.as_ref(),
            None => None,
        }
    }

    pub fn has(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The usable signature keys of a JWKS document. Encryption keys, symmetric
    /// keys (a published secret is no secret) and keys of unknown types are
    /// skipped one by one; a document that is not a key set is an error.
    pub fn parse(document: &[u8]) -> Result<(Self, usize), KeySetError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(document).map_err(|_| KeySetError::NotAKeySet)?;
        let mut set = Self::default();
        let mut unnamed = Vec::new();
        let mut skipped = 0;
        for value in document.keys.into_iter().take(MAX_KEYS) {
            match usable(value) {
                Some((Some(kid), key)) => {
                    set.by_kid.insert(kid, key);
                }
                Some((None, key)) => unnamed.push(key),
                None => skipped += 1,
            }
        }
        // A key without a `kid` is only unambiguous when it is the only key.
        if set.by_kid.is_empty() && unnamed.len() == 1 {
            set.default = unnamed.pop();
        } else {
            skipped += unnamed.len();
        }
        Ok((set, skipped))
    }

    /// This set's keys and, for any `kid` it lacks, the keys of `other`.
    fn merged_with(mut self, other: Self) -> Self {
        for (kid, key) in other.by_kid {
            self.by_kid.entry(kid).or_insert(key);
        }
        if self.default.is_none() && self.by_kid.is_empty() {
            self.default = other.default;
        }
        self
    }
}

/// Every algorithm a [`VerifyingKey`] can have: what [`usable`] gives for a key
/// set, and the two fixed-key modes (HS256, RS256).
pub const ALGORITHMS: [Algorithm; 10] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn usable(value: serde_json::Value) -> Option<(Option<String>, VerifyingKey)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
        (AlgorithmParameters::RSA(_), Some(alg)) => match alg {
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::RS384 => Algorithm::RS384,
            KeyAlgorithm::RS512 => Algorithm::RS512,
            KeyAlgorithm::PS256 => Algorithm::PS256,
            KeyAlgorithm::PS384 => Algorithm::PS384,
            KeyAlgorithm::PS512 => Algorithm::PS512,
            _ => return None,
        },
        (AlgorithmParameters::EllipticCurve(p), alg) => match (&p.curve, alg) {
            (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => Algorithm::ES256,
            (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => Algorithm::ES384,
            _ => return None,
        },
        (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            Algorithm::EdDSA
        }
        // Symmetric and unsupported key types (the enum is non-exhaustive).
        _ => return None,
    };
    debug_assert!(ALGORITHMS.contains(&algorithm));
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let kid = jwk.common.key_id.filter(|k| !k.is_empty());
    Some((kid, VerifyingKey { key, algorithm }))
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("not a JSON Web Key Set")]
    NotAKeySet,
    #[error("no usable signature key")]
    Empty,
    #[error("cannot read {0}: {1}")]
    File(String, std::io::Error),
    #[error("the fetch failed: {0}")]
    Fetch(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// Where one issuer's key set comes from.
pub struct KeySetSource {
    /// Which setting this is, for logs and metrics (`AUTH_JWKS_URL`, say).
    pub name: &'static str,
    /// Its refresh loop's name, for the supervisor and `/readyz`.
    pub task: &'static str,
    pub url: Option<String>,
    pub file: Option<PathBuf>,
    /// Sent as a bearer token with each fetch, read anew each time (projected
    /// tokens are rotated by the kubelet).
    pub token_file: Option<PathBuf>,
    pub http: reqwest::Client,
}

/// A key set kept current: the last good set, replaced by each good fetch.
pub struct Jwks {
    source: KeySetSource,
    current: RwLock<Arc<KeySet>>,
    /// When a token's unknown `kid` last caused a fetch; held across every
    /// fetch, so that concurrent requests with an unknown `kid` wait for one.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
    /// Loads by source and outcome, when counted (a service; not the CLI).
    outcomes: Option<IntCounterVec>,
}

impl Jwks {
    pub fn new(source: KeySetSource, outcomes: Option<IntCounterVec>) -> Self {
        Self {
            source,
            current: RwLock::default(),
            last_on_demand: tokio::sync::Mutex::new(None),
            outcomes,
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .map(|set| Arc::clone(&set))
            .unwrap_or_default()
    }

    pub fn task(&self) -> &'static str {
        self.source.task
    }

    /// Whether a good set has been loaded.
    pub fn is_loaded(&self) -> bool {
        !self.current().is_empty()
    }

    /// Fetches and reads the set now; keeps the last good one on failure.
    pub async fn refresh(&self) -> Result<usize, KeySetError> {
        let _one_at_a_time = self.last_on_demand.lock().await;
        self.load().await
    }

    /// Refreshes for a token whose `kid` is unknown, unless a fetch was tried
    /// within [`MIN_REFETCH`]; true when the set now holds `kid`.
    pub async fn refresh_for(&self, kid: &str) -> bool {
        {
            let mut last = self.last_on_demand.lock().await;
            // Another request may have fetched it while this one waited.
            if self.current().has(kid) {
                return true;
            }
            if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
                return false;
            }
            *last = Some(Instant::now());
            let _ = self.load().await;
        }
        self.current().has(kid)
    }

    async fn load(&self) -> Result<usize, KeySetError> {
        let result = self.read_sources().await;
        let outcome = match &result {
            Ok(set) if !set.is_empty() => "ok",
            _ => "failed",
        };
        if let Some(outcomes) = &self.outcomes {
            outcomes
                .with_label_values(&[self.source.name, outcome])
                .inc();
        }
        match result {
            Ok(set) if !set.is_empty() => {
                let keys = set.len();
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(set);
                }
                tracing::debug!(source = self.source.name, keys, "key set loaded");
                Ok(keys)
            }
            Ok(_) => {
                tracing::warn!(
                    source = self.source.name,
                    "the key set has no usable key; keeping the last good set"
                );
                Err(KeySetError::Empty)
            }
            Err(e) => {
                tracing::warn!(source = self.source.name, error = %e, "cannot load the key set; keeping the last good set");
                Err(e)
            }
        }
    }

    async fn read_sources(&self) -> Result<KeySet, KeySetError> {
        let mut set = KeySet::default();
        if let Some(url) = &self.source.url {
            let body = self.fetch(url).await?;
            set = self.parsed(&body)?;
        }
        if let Some(path) = &self.source.file {
            let body = read_bounded(path).await?;
            set = set.merged_with(self.parsed(&body)?);
        }
        Ok(set)
    }

    fn parsed(&self, body: &[u8]) -> Result<KeySet, KeySetError> {
        let (set, skipped) = KeySet::parse(body)?;
        if skipped > 0 {
            tracing::info!(
                source = self.source.name,
                skipped,
                "key set entries skipped (encryption, symmetric or unsupported keys)"
            );
        }
        Ok(set)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, KeySetError> {
        let mut request = self.source.http.get(url).timeout(FETCH_TIMEOUT);
        if let Some(path) = &self.source.token_file {
            let token = read_bounded(path).await?;
            let token = String::from_utf8_lossy(&token);
            request = request.bearer_auth(token.trim());
        }
        let fetch = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| KeySetError::Fetch(e.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(KeySetError::Status(response.status().as_u16()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| KeySetError::Fetch(e.without_url().to_string()))?
            {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(KeySetError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| KeySetError::Fetch("timed out".to_owned()))?
    }

    /// Keeps the set fresh until `shutdown`: every `every`, and sooner (from
    /// [`FIRST_RETRY`], doubling) while fetches fail.
    pub async fn keep_fresh(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut wait = if self.is_loaded() { every } else { FIRST_RETRY };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.refresh().await {
                Ok(_) => every,
                Err(_) => (wait * 2).clamp(FIRST_RETRY, every),
            };
        }
    }
}

/// A file's content, at most [`MAX_BODY_BYTES`] (read through a limit: the file may
/// grow while it is read).
async fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, KeySetError> {
    use tokio::io::AsyncReadExt;
    let name = path.display().to_string();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| KeySetError::File(name.clone(), e))?;
    let mut body = Vec::new();
    file.take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .await
        .map_err(|e| KeySetError::File(name, e))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(KeySetError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_encryption_and_unknown_keys_are_skipped_one_by_one() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"s","k":"c2VjcmV0"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"sXch","e":"AQAB"},
            {"kty":"XYZ","kid":"x"},
            {"kty":"EC","kid":"p521","crv":"P-521","x":"AQ","y":"AQ"},
            {"kty":"RSA","kid":"a","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}
        ]}"#;
        let (set, skipped) = KeySet::parse(doc).expect("a key set");
        assert_eq!(skipped, 4);
        assert_eq!(set.len(), 1);
        assert!(set.has("a"));
        assert_eq!(
            set.find(Some("a")).map(|k| k.algorithm),
            Some(Algorithm::RS256)
        );
        assert!(set.find(None).is_none(), "a named key is not the default");
    }

    #[test]
    fn one_unnamed_key_is_the_default_and_two_are_ambiguous() {
        let key = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let (one, _) = KeySet::parse(format!(r#"{{"keys":[{key}]}}"#).as_bytes()).expect("set");
        assert_eq!(one.find(None).map(|k| k.algorithm), Some(Algorithm::ES256));
        let (two, skipped) =
            KeySet::parse(format!(r#"{{"keys":[{key},{key}]}}"#).as_bytes()).expect("set");
        assert!(two.is_empty());
        assert_eq!(skipped, 2);
        assert!(matches!(
            KeySet::parse(b"[1,2]"),
            Err(KeySetError::NotAKeySet)
        ));
    }
}
