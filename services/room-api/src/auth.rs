//! Bearer-token authentication for people and for internal services alike: a JWT
//! signed with HS256 (shared secret) or RS256 (public key), `sub` = the caller.
//!
//! Following RFC 8725: the algorithm is pinned by configuration (never taken from
//! the token; `alg: none` is never accepted), `exp` and `sub` are required, and
//! `aud`/`iss` are checked whenever they are configured.

use std::{future::Ready, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use domain::OwnerId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use settings::{AuthSettings, ExposeSecret};
use web_common::ApiError;

use crate::startup::AppState;

/// Allowed clock skew between the token issuer and us.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn from_settings(auth: &AuthSettings) -> Result<Self, String> {
        let (key, algorithm) = match (&auth.auth_jwt_secret, &auth.auth_jwt_public_key) {
            (Some(secret), None) => {
                let secret = secret.expose_secret();
                if secret.len() < 32 {
                    return Err("AUTH_JWT_SECRET must be at least 32 bytes".to_owned());
                }
                (
                    DecodingKey::from_secret(secret.as_bytes())
                        .map_err(|e| format!("AUTH_JWT_SECRET is unusable: {e}"))?,
                    Algorithm::HS256,
                )
            }
            (None, Some(pem)) => (
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    format!("AUTH_JWT_PUBLIC_KEY is not an RSA public key in PEM: {e}")
                })?,
                Algorithm::RS256,
            ),
            (Some(_), Some(_)) => {
                return Err("set only one of AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY".to_owned());
            }
            (None, None) => {
                return Err("set AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256)".to_owned());
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
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
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
                tracing::info!(reason = ?e.kind(), "rejected bearer token");
                ApiError::unauthorized("the bearer token is invalid or expired")
            })?;
        OwnerId::parse(&data.claims.sub)
            .map_err(|_| ApiError::unauthorized("the bearer token has no usable subject"))
    }
}

/// Mints an HS256 token (for the local run's printed example and for tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, String> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())
}

/// The authenticated caller. Extracting it answers 401 (with `WWW-Authenticate:
/// Bearer`) for a missing, malformed, badly signed or expired token.
#[derive(Debug, Clone)]
pub struct Caller(pub OwnerId);

impl Caller {
    pub fn id(&self) -> &str {
        self.0.as_str()
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
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
        tracing::error!("application state missing");
        ApiError::internal()
    })?;
    state.verifier.verify(token.trim()).map(Caller)
}

/// Shared handle to the verifier, built once at start-up.
pub type SharedVerifier = Arc<JwtVerifier>;

/// A token for `sub`, valid for `hours`, signed with the configured HS256 secret
/// and carrying the configured audience and issuer.
pub fn dev_token(auth: &AuthSettings, sub: &str, hours: u64) -> Result<String, String> {
    let secret = auth
        .auth_jwt_secret
        .as_ref()
        .ok_or("dev-token needs AUTH_JWT_SECRET (HS256)")?;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        + hours * 3600;
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
