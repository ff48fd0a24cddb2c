//! Bearer-token authentication for people and for internal services alike
//! (docs/configuration.md, "Identities").
//!
//! People's tokens are JWTs from one issuer, verified with an HS256 secret (the
//! local run), an RS256 public key, or a JSON Web Key Set that rotates (the
//! `identity` crate). In-cluster services may present their Kubernetes
//! service-account token instead, verified against the cluster's key set; only
//! the service accounts listed in `AUTH_SERVICE_ACCOUNTS` are accepted. Who a
//! caller is beyond their own rooms is decided here too, once per request
//! ([`roles`]), so that routes ask the [`Caller`] rather than a list.
//!
//! Following RFC 8725: the algorithm is the key's (never the token's; `alg:
//! none` is never accepted), `exp` and `sub` are required, `nbf` is honoured,
//! and `aud`/`iss` are checked whenever they are configured (always with a key
//! set). `aud` may be a string or an array (RFC 7519 §4.1.3).

mod roles;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use domain::OwnerId;
pub use identity::MIN_REFETCH;
use identity::{ALGORITHMS, Jwks, KeySet, KeySetSources, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
pub use roles::{Grants, RoleRules};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use settings::{AuthSettings, ExposeSecret};
use web_common::ApiError;

/// Allowed clock skew between the token issuer and us.
const LEEWAY_SECONDS: u64 = 30;

/// The claims of a token this service mints (local development, tests).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// Why the token settings cannot be used, or a token cannot be minted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("AUTH_JWT_SECRET is unusable: {0}")]
    Secret(jsonwebtoken::errors::Error),
    #[error("AUTH_JWT_PUBLIC_KEY is not an RSA public key in PEM: {0}")]
    PublicKey(jsonwebtoken::errors::Error),
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    KeySets(#[from] identity::SourceError),
    #[error("no way to verify tokens: set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL")]
    NoKeys,
    #[error("dev-token needs AUTH_JWT_SECRET (HS256)")]
    NoSecret,
    #[error("the token cannot be signed: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("cannot register the auth metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Which issuer a token is from, which decides what it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IssuerKind {
    People,
    ServiceAccounts,
}

enum Keys {
    Fixed(Arc<KeySet>),
    Jwks(Arc<Jwks>),
}

struct Issuer {
    kind: IssuerKind,
    /// The `iss` its tokens carry, when one is configured.
    iss: Option<String>,
    keys: Keys,
    /// `exp`, `nbf`, `aud`, `iss`, one per algorithm a key may have: built once,
    /// the algorithm being the key's (never the token's).
    validations: Vec<(Algorithm, Validation)>,
}

impl Issuer {
    fn new(kind: IssuerKind, iss: Option<&str>, aud: Option<&str>, keys: Keys) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match aud {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = iss {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        let validations = ALGORITHMS
            .iter()
            .map(|algorithm| {
                let mut v = validation.clone();
                v.algorithms = vec![*algorithm];
                (*algorithm, v)
            })
            .collect();
        Self {
            kind,
            iss: iss.map(str::to_owned),
            keys,
            validations,
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find_map(|(a, v)| (*a == algorithm).then_some(v))
    }

    /// The set holding the token's key, fetched again if the issuer rotated.
    async fn key_set_for(&self, kid: Option<&str>) -> Arc<KeySet> {
        match &self.keys {
            Keys::Fixed(set) => Arc::clone(set),
            Keys::Jwks(jwks) => {
                let set = jwks.current();
                match kid {
                    Some(kid) if !set.has(kid) && jwks.refresh_for(kid).await => jwks.current(),
                    _ => set,
                }
            }
        }
    }
}

/// Verifies a request's bearer token and tells who the caller is; shared by
/// every worker as app data.
pub struct Authenticator {
    people: Issuer,
    /// The cluster's service-account issuer, if configured.
    cluster: Option<Issuer>,
    roles: RoleRules,
    /// `AUTH_SERVICE_ACCOUNTS`: `namespace:name` or `namespace:*`.
    service_accounts: Vec<String>,
    rejected: IntCounter,
}

/// The key sets an [`Authenticator`] keeps fresh, for the caller to supervise.
pub struct KeyRefresh {
    pub sets: Vec<Arc<Jwks>>,
    pub every: Duration,
    /// People's set, which `/readyz` waits for: without it no one can be served.
    /// The cluster's set does not gate readiness (only internal calls need it; its
    /// failures are counted and alerted on).
    people: Option<Arc<Jwks>>,
}

impl KeyRefresh {
    /// Loads every set once, without failing: people's set that cannot be loaded
    /// yet keeps `/readyz` false until its background refresh succeeds.
    pub async fn load_all(&self) {
        for set in &self.sets {
            let _ = set.refresh().await;
        }
    }

    /// Whether people's tokens can be verified (always, with a fixed key).
    pub fn people_loaded(&self) -> bool {
        self.people.as_ref().is_none_or(|s| s.is_loaded())
    }
}

impl Authenticator {
    /// The authenticator, and the key sets to keep fresh in the background.
    pub fn from_settings(
        auth: &AuthSettings,
        access: &crate::settings::AccessSettings,
        registry: &Registry,
    ) -> Result<(Self, KeyRefresh), AuthError> {
        auth.check()?;
        let roles = RoleRules {
            claim: auth.auth_roles_claim.clone(),
            operator_role: auth.auth_operator_role.clone(),
            service_role: auth.auth_service_role.clone(),
            operator_subjects: access.auth_operator_subjects.clone(),
            service_subjects: access.auth_service_subjects.clone(),
        };
        let outcomes = IntCounterVec::new(
            Opts::new(
                "auth_key_set_loads_total",
                "Loads of a JSON Web Key Set, by setting and outcome (ok, failed)",
            ),
            &["source", "outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        let rejected = IntCounter::new(
            "auth_rejected_total",
            "Bearer tokens refused (invalid, expired, unknown key, not allowed)",
        )?;
        registry.register(Box::new(rejected.clone()))?;
        let sources = KeySetSources::from_settings(auth)?;
        let keep = |source| Arc::new(Jwks::new(source, Some(outcomes.clone())));
        let people_set = sources.people.map(keep);
        let people_keys = match (
            &auth.auth_jwt_secret,
            &auth.auth_jwt_public_key,
            &people_set,
        ) {
            (Some(secret), _, _) => Keys::Fixed(Arc::new(KeySet::single(
                DecodingKey::from_secret(secret.expose_secret().as_bytes())
                    .map_err(AuthError::Secret)?,
                Algorithm::HS256,
            ))),
            (None, Some(pem), _) => Keys::Fixed(Arc::new(KeySet::single(
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(AuthError::PublicKey)?,
                Algorithm::RS256,
            ))),
            (None, None, Some(set)) => Keys::Jwks(Arc::clone(set)),
            // `check` requires one of the three.
            (None, None, None) => return Err(AuthError::NoKeys),
        };
        let people = Issuer::new(
            IssuerKind::People,
            auth.auth_jwt_issuer.as_deref(),
            auth.auth_jwt_audience.as_deref(),
            people_keys,
        );
        let cluster_set = sources.service_accounts.map(keep);
        let cluster = match (&auth.auth_service_account_issuer, &cluster_set) {
            (Some(iss), Some(set)) => Some(Issuer::new(
                IssuerKind::ServiceAccounts,
                Some(iss),
                Some(&auth.auth_service_account_audience),
                Keys::Jwks(Arc::clone(set)),
            )),
            _ => None,
        };
        Ok((
            Self {
                people,
                cluster,
                roles,
                service_accounts: auth.auth_service_accounts.clone(),
                rejected,
            },
            KeyRefresh {
                sets: people_set.iter().chain(&cluster_set).cloned().collect(),
                every: Duration::from_secs(auth.auth_jwks_refresh_seconds),
                people: people_set,
            },
        ))
    }

    /// The issuer a token claims to be from. `iss` is read unverified only to
    /// choose the keys; that issuer's validation then requires the same `iss`.
    fn issuer_of(&self, token: &str) -> &Issuer {
        let Some(cluster) = &self.cluster else {
            return &self.people;
        };
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token)
            .ok()
            .and_then(|c| c.iss);
        if cluster.iss.is_some() && cluster.iss == iss {
            cluster
        } else {
            &self.people
        }
    }

    async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        // Anyone can send tokens: refusals are counted, and logged at debug only.
        let rejected = |reason: &dyn std::fmt::Debug| {
            self.rejected.inc();
            tracing::debug!(?reason, "rejected bearer token");
            ApiError::unauthorized("the bearer token is invalid or expired")
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| rejected(e.kind()))?;
        let issuer = self.issuer_of(token);
        let set = issuer.key_set_for(header.kid.as_deref()).await;
        let Some(VerifyingKey { key, algorithm }) = set.find(header.kid.as_deref()) else {
            return Err(rejected(&"no key for the token's kid"));
        };
        let Some(validation) = issuer.validation(*algorithm) else {
            return Err(rejected(&"a key of an unsupported algorithm"));
        };
        // Only `sub` and, when roles come from a claim, that claim are read, so no
        // other claim's shape can make a valid token fail.
        let (subject, claims) = if self.roles.from_claims() {
            let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
                .map_err(|e| rejected(e.kind()))?
                .claims;
            let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
            (subject, Some(claims))
        } else {
            #[derive(Deserialize)]
            struct Subject {
                sub: Option<String>,
            }
            let claims = jsonwebtoken::decode::<Subject>(token, key, validation)
                .map_err(|e| rejected(e.kind()))?
                .claims;
            (claims.sub, None)
        };
        let id = subject
            .and_then(|s| OwnerId::parse(&s).ok())
            .ok_or_else(|| ApiError::unauthorized("the bearer token has no usable subject"))?;
        let grants = match issuer.kind {
            // Any pod may mount a token for our audience: only the listed accounts
            // are services, and no other service account is anyone here.
            IssuerKind::ServiceAccounts
                if roles::service_account_allowed(id.as_str(), &self.service_accounts) =>
            {
                Grants {
                    operator: false,
                    service: true,
                }
            }
            IssuerKind::ServiceAccounts => {
                self.rejected.inc();
                tracing::debug!(
                    subject = id.as_str(),
                    "a service account not in AUTH_SERVICE_ACCOUNTS"
                );
                return Err(ApiError::forbidden(
                    "this service account may not call room-api",
                ));
            }
            IssuerKind::People => self.roles.grants(id.as_str(), claims.as_ref()),
        };
        Ok(Caller {
            operator: grants.operator,
            service: grants.service,
            id,
        })
    }
}

/// Mints an HS256 token (for the local run's printed example and for tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).map_err(AuthError::Sign)?,
    )
    .map_err(AuthError::Sign)
}

/// The authenticated caller. Extracting it answers 401 (with `WWW-Authenticate:
/// Bearer`) for a missing, malformed, badly signed or expired token.
#[derive(Debug, Clone)]
pub struct Caller {
    id: OwnerId,
    operator: bool,
    service: bool,
}

impl Caller {
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// An operator (`AUTH_OPERATOR_ROLE` or `AUTH_OPERATOR_SUBJECTS`).
    pub fn is_operator(&self) -> bool {
        self.operator
    }

    /// An internal service: a cluster service account, or a person's token with
    /// `AUTH_SERVICE_ROLE` or in `AUTH_SERVICE_SUBJECTS`.
    pub fn is_service(&self) -> bool {
        self.service
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = bearer_token(req).and_then(|token| {
            let authenticator = req.app_data::<web::Data<Authenticator>>().ok_or_else(|| {
                tracing::error!("the authenticator is not registered");
                ApiError::internal()
            })?;
            Ok((authenticator.clone(), token.to_owned()))
        });
        Box::pin(async move {
            let (authenticator, token) = found?;
            authenticator.caller(&token).await
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_credentials());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "expected `Authorization: Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// A token for `sub`, valid for `hours`, signed with the configured HS256 secret
/// and carrying the configured audience and issuer.
pub fn dev_token(auth: &AuthSettings, sub: &str, hours: u64) -> Result<String, AuthError> {
    let secret = auth.auth_jwt_secret.as_ref().ok_or(AuthError::NoSecret)?;
    // A clock before 1970 gives a token that has already expired.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = now.saturating_add(hours.saturating_mul(3600));
    mint_hs256(
        secret.expose_secret(),
        &Claims {
            sub: sub.to_owned(),
            exp,
            aud: auth.auth_jwt_audience.clone(),
            iss: auth.auth_jwt_issuer.clone(),
        },
    )
}
