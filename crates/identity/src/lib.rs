//! The keys bearer tokens are verified with (see README.md).

pub mod keys;

use std::{path::PathBuf, time::Duration};

pub use keys::{ALGORITHMS, Jwks, KeySet, KeySetError, KeySetSource, MIN_REFETCH, VerifyingKey};
use settings::AuthSettings;

/// Why a key set's source cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("AUTH_SERVICE_ACCOUNT_JWKS_CA_FILE: {0}")]
    CaFile(String),
    #[error("the HTTP client for key sets cannot be built: {0}")]
    HttpClient(String),
}

/// Where the key sets of the configured issuers come from.
pub struct KeySetSources {
    /// People's issuer, when it uses a key set (not a fixed key).
    pub people: Option<KeySetSource>,
    /// The cluster's service-account issuer, when configured.
    pub service_accounts: Option<KeySetSource>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl KeySetSources {
    /// From the settings (checked already by `AuthSettings::check`).
    pub fn from_settings(auth: &AuthSettings) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| SourceError::HttpClient(e.to_string()))?;
        let people = auth.uses_jwks().then(|| KeySetSource {
            name: "AUTH_JWKS_URL",
            task: "key_set_refresh",
            url: auth.auth_jwks_url.clone(),
            file: auth.auth_jwks_file.as_ref().map(PathBuf::from),
            token_file: None,
            http: http.clone(),
        });
        let service_accounts = match &auth.auth_service_account_issuer {
            None => None,
            Some(_) => {
                let http = match &auth.auth_service_account_jwks_ca_file {
                    None => http,
                    Some(path) => {
                        let pem = std::fs::read(path)
                            .map_err(|e| SourceError::CaFile(format!("cannot read {path}: {e}")))?;
                        let ca = reqwest::Certificate::from_pem(&pem)
                            .map_err(|e| SourceError::CaFile(format!("{path}: {e}")))?;
                        reqwest::Client::builder()
                            .connect_timeout(CONNECT_TIMEOUT)
                            .add_root_certificate(ca)
                            .build()
                            .map_err(|e| SourceError::HttpClient(e.to_string()))?
                    }
                };
                Some(KeySetSource {
                    name: "AUTH_SERVICE_ACCOUNT_JWKS_URL",
                    task: "service_account_key_set_refresh",
                    url: auth.auth_service_account_jwks_url.clone(),
                    file: auth
                        .auth_service_account_jwks_file
                        .as_ref()
                        .map(PathBuf::from),
                    token_file: auth
                        .auth_service_account_jwks_token_file
                        .as_ref()
                        .map(PathBuf::from),
                    http,
                })
            }
        };
        Ok(Self {
            people,
            service_accounts,
        })
    }
}
