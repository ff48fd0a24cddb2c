//! Bearer-token authentication for people and for internal services alike: a JWT
//! signed with HS256 (shared secret) or RS256 (public key), `sub` = the caller.
//!
//! Who a caller is beyond their own rooms (an operator, an internal service) is
//! decided here too, once per request, so that routes ask the [`Caller`] rather
//! than a list.
//!
//! Following RFC 8725: the algorithm is pinned by configuration (never taken from
//! the token; `alg: none` is never accepted), `exp` and `sub` are required, `nbf`
//! is honoured, and `aud`/`iss` are checked whenever they are configured. `aud` may
//! be a string or an array (RFC 7519 §4.1.3; Kubernetes service-account tokens and
//! most identity providers send an array).

use std::future::Ready;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use domain::OwnerId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
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
    #[error("AUTH_JWT_SECRET must be at least 32 bytes")]
    ShortSecret,
    #[error("AUTH_JWT_SECRET is unusable: {0}")]
    Secret(jsonwebtoken::errors::Error),
    #[error("AUTH_JWT_PUBLIC_KEY is not an RSA public key in PEM: {0}")]
    PublicKey(jsonwebtoken::errors::Error),
    #[error("set only one of AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY")]
    BothKeys,
    #[error("set AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256)")]
    NoKey,
    #[error("dev-token needs AUTH_JWT_SECRET (HS256)")]
    NoSecret,
    #[error("the token cannot be signed: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn from_settings(auth: &AuthSettings) -> Result<Self, AuthError> {
        let (key, algorithm) = match (&auth.auth_jwt_secret, &auth.auth_jwt_public_key) {
            (Some(secret), None) => {
                let secret = secret.expose_secret();
                if secret.len() < 32 {
                    return Err(AuthError::ShortSecret);
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()).map_err(AuthError::Secret)?,
                    Algorithm::HS256,
                )
            }
            (None, Some(pem)) => (
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(AuthError::PublicKey)?,
                Algorithm::RS256,
            ),
            (Some(_), Some(_)) => return Err(AuthError::BothKeys),
            (None, None) => return Err(AuthError::NoKey),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &auth.auth_jwt_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &auth.auth_jwt_issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<OwnerId, ApiError> {
        // Only `sub` is read here; `exp`, `nbf`, `aud` and `iss` are validated by
        // jsonwebtoken from the token itself, whatever their JSON shape.
        #[derive(Deserialize)]
        struct Subject {
            sub: String,
        }
        let data =
            jsonwebtoken::decode::<Subject>(token, &self.key, &self.validation).map_err(|e| {
                tracing::info!(reason = ?e.kind(), "rejected bearer token");
                ApiError::unauthorized("the bearer token is invalid or expired")
            })?;
        OwnerId::parse(&data.claims.sub)
            .map_err(|_| ApiError::unauthorized("the bearer token has no usable subject"))
    }
}

/// The subjects with a role beyond their own rooms.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// May list recordings by status and erase personal data.
    pub operators: Vec<String>,
    /// May call the internal routes (the processing pipeline).
    pub services: Vec<String>,
}

/// Verifies a request's bearer token and tells who the caller is; shared by
/// every worker as app data.
pub struct Authenticator {
    verifier: JwtVerifier,
    roles: Roles,
}

impl Authenticator {
    pub fn new(verifier: JwtVerifier, roles: Roles) -> Self {
        Self { verifier, roles }
    }

    fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        let id = self.verifier.verify(token)?;
        let has = |list: &[String]| list.iter().any(|s| s == id.as_str());
        Ok(Caller {
            operator: has(&self.roles.operators),
            service: has(&self.roles.services),
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

    /// An operator (`AUTH_OPERATOR_SUBJECTS`).
    pub fn is_operator(&self) -> bool {
        self.operator
    }

    /// An internal service (`AUTH_SERVICE_SUBJECTS`).
    pub fn is_service(&self) -> bool {
        self.service
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
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
    let authenticator = req.app_data::<web::Data<Authenticator>>().ok_or_else(|| {
        tracing::error!("the authenticator is not registered");
        ApiError::internal()
    })?;
    authenticator.caller(token.trim())
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
