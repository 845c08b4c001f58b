//! Who is calling: turns a request's `Authorization: Bearer <JWT>` or `X-Api-Key` header
//! into a [`Caller`] (tenant, user, admin), following `[api.auth]` and `[[api.keys]]`.
//!
//! Owns the accepted algorithms (HS256 with a shared secret; RS256 and ES256 with JWKS
//! keys, nothing else), the JWKS refetch when an issuer rotates its keys, service-key
//! checks and development tokens. It knows nothing of routes: handlers call
//! [`Authenticator::authenticate`] and answer with [`AuthError::status`] and
//! [`AuthError::code`].
//!
//! This file holds the [`Authenticator`] (set-up from the config, the choice between a
//! token and a service key, development tokens); beside it: `token` (bearer JWTs: header,
//! keys, claims), `api_key` (service keys), `ids` (what a tenant or user id may be), `keys`
//! (where secrets and public keys come from) and `errors`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header::AUTHORIZATION};
use intake_core::config::{ApiAuth, ApiSection};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::Map;
use tokio::time::Instant;

mod api_key;
mod errors;
mod ids;
mod keys;
mod token;

pub use errors::{AuthError, AuthSetupError};
pub use ids::id_problem;
use keys::{
    PublicKey, ServiceKey, fetch_jwks, load_jwks_file, random_secret, read_secret, service_keys,
};

const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
const MIN_SECRET_BYTES: usize = 32;
const API_KEY_HEADER: &str = "x-api-key";
const ACTING_USER_HEADER: &str = "x-intake-user";

/// An authenticated caller. `tenant` and `user` are safe as S3 key segments (see [`id_problem`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub user: String,
    /// Holds the configured admin role: may read and delete any tenant's files.
    pub admin: bool,
    pub via: CallerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    Token,
    /// A service key of `[[api.keys]]`, by its `name`.
    ApiKey {
        name: String,
    },
}

/// Checks credentials against `[api.auth]` and `[[api.keys]]`. Cheap to clone; share it.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    hs256: Option<(EncodingKey, DecodingKey)>,
    dev_tokens: bool,
    file_keys: Vec<PublicKey>,
    fetched_keys: RwLock<Arc<Vec<PublicKey>>>,
    jwks_url: Option<(String, reqwest::Client)>,
    /// Held across a fetch, so concurrent requests with a new `kid` share one refetch.
    last_fetch: tokio::sync::Mutex<Instant>,
    auth: ApiAuth,
    keys: Vec<ServiceKey>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Authenticator")
            .field("hs256", &inner.hs256.is_some())
            .field("dev_tokens", &inner.dev_tokens)
            .field("jwks_file_keys", &inner.file_keys.len())
            .field("jwks_url", &inner.jwks_url.as_ref().map(|(url, _)| url))
            .field("api_keys", &inner.keys.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Reads the secret env var, the JWKS file, fetches the JWKS URL once; dev_tokens
    /// without any HS256 secret gets a random per-process secret.
    pub async fn from_config(api: &ApiSection) -> Result<Authenticator, AuthSetupError> {
        let auth = &api.auth;
        let secret = match &auth.hs256_secret_env {
            Some(var) => Some(read_secret(var)?),
            None if api.dev_tokens => Some(random_secret()?),
            None => None,
        };
        let hs256 = secret.map(|s| (EncodingKey::from_secret(&s), DecodingKey::from_secret(&s)));
        let file_keys = match &auth.jwks_file {
            Some(path) => load_jwks_file(path)?,
            None => Vec::new(),
        };
        let mut fetched = Vec::new();
        let jwks_url = match &auth.jwks_url {
            Some(url) => {
                let client = reqwest::Client::builder()
                    .timeout(JWKS_FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| {
                        AuthSetupError::config(
                            "api.auth.jwks_url",
                            format!("no HTTP client for the JWKS ({e})"),
                            "use api.auth.jwks_file with a saved copy of the JWKS instead",
                        )
                    })?;
                fetched = fetch_jwks(&client, url).await.map_err(|problem| {
                    AuthSetupError::config(
                        "api.auth.jwks_url",
                        problem,
                        "check the URL and that this machine can reach the issuer, then restart",
                    )
                })?;
                Some((url.clone(), client))
            }
            None => None,
        };
        let keys = service_keys(api)?;
        if hs256.is_none() && file_keys.is_empty() && jwks_url.is_none() && keys.is_empty() {
            return Err(AuthSetupError::NothingConfigured);
        }
        Ok(Authenticator {
            inner: Arc::new(Inner {
                hs256,
                dev_tokens: api.dev_tokens,
                file_keys,
                fetched_keys: RwLock::new(Arc::new(fetched)),
                jwks_url,
                last_fetch: tokio::sync::Mutex::new(Instant::now()),
                auth: auth.clone(),
                keys,
            }),
        })
    }

    /// From request headers: `Authorization: Bearer <jwt>` or `X-Api-Key: <key>` (+ optional
    /// `X-Intake-User` naming the user a service acts for, default "service").
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let bearers = headers.get_all(AUTHORIZATION).iter().count();
        let keys = headers.get_all(API_KEY_HEADER).iter().count();
        let acting = headers.get(ACTING_USER_HEADER);
        match (bearers, keys) {
            (0, 0) => Err(AuthError::MissingCredentials),
            (1, 0) => {
                if acting.is_some() {
                    return Err(AuthError::InvalidUserHeader(
                        "it only applies to X-Api-Key; a token names its own user, so remove the header".into(),
                    ));
                }
                let token = token::bearer_token(&headers[AUTHORIZATION])?;
                self.verify_token(token).await
            }
            (0, 1) => self.check_api_key(&headers[API_KEY_HEADER], acting),
            _ => Err(AuthError::AmbiguousCredentials),
        }
    }

    /// Only when dev_tokens: an HS256 token for tenant/user (admin adds the admin role),
    /// valid for `ttl`; returns (token, expires_at unix secs). It signs what it is given:
    /// check `tenant` and `user` with [`id_problem`] first.
    pub fn dev_token(
        &self,
        tenant: &str,
        user: &str,
        admin: bool,
        ttl: Duration,
    ) -> Option<(String, i64)> {
        let inner = &self.inner;
        if !inner.dev_tokens {
            return None;
        }
        let (signing, _) = inner.hs256.as_ref()?;
        let auth = &inner.auth;
        let now = unix_now();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let roles: Vec<&str> = if admin {
            vec![&auth.admin_role]
        } else {
            vec![]
        };
        let mut claims = Map::new();
        claims.insert(auth.tenant_claim.clone(), tenant.into());
        claims.insert(auth.user_claim.clone(), user.into());
        claims.insert(auth.roles_claim.clone(), roles.into());
        // Registered claims last, so a claim name configured as e.g. "exp" cannot break them.
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), expires_at.into());
        if let Some(iss) = &auth.issuer {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = &auth.audience {
            claims.insert("aud".into(), aud.as_str().into());
        }
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, signing).ok()?;
        Some((token, expires_at))
    }

    fn what_is_accepted(&self) -> String {
        let inner = &self.inner;
        let mut algs = Vec::new();
        if inner.hs256.is_some() {
            algs.push("HS256");
        }
        if !inner.file_keys.is_empty() || inner.jwks_url.is_some() {
            algs.extend(["RS256", "ES256"]);
        }
        match algs.is_empty() {
            true => "this server only accepts service keys (X-Api-Key)".into(),
            false => format!("use a token signed with {}", algs.join(" or ")),
        }
    }
}

/// An attacker-chosen header value, short and printable, for a message.
fn shown(value: &str) -> String {
    let short: String = value.chars().take(64).collect();
    short.escape_debug().to_string()
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}
