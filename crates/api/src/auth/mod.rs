//! Who is calling: turns a request's `Authorization: Bearer <JWT>` or `X-Api-Key` header
//! into a [`Caller`] (tenant, user, admin), following `[api.auth]` and `[[api.keys]]`.
//!
//! Owns the accepted algorithms (HS256 with a shared secret; RS256 and ES256 with JWKS
//! keys, nothing else), the JWKS refetch when an issuer rotates its keys, service-key
//! checks and development tokens. It knows nothing of routes: handlers call
//! [`Authenticator::authenticate`] and answer with [`AuthError::status`] and
//! [`AuthError::code`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use intake_core::config::{ApiAuth, ApiSection};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

mod errors;
mod keys;

pub use errors::{AuthError, AuthSetupError};
use keys::{
    PublicKey, ServiceKey, fetch_jwks, load_jwks_file, random_secret, read_secret, service_keys,
};

/// Rotation needs a refetch, but a stream of made-up `kid`s must not become a stream of
/// requests to the issuer.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(60);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Far above any real token (large group claims reach ~8 KiB); bounds the work a stranger
/// can make us do.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Tenant and user become S3 key segments next to a filename of up to 512 bytes; S3 keys
/// hold 1024.
const MAX_ID_BYTES: usize = 128;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
const MIN_SECRET_BYTES: usize = 32;
const SERVICE_USER: &str = "service";
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

/// Why `value` cannot be a tenant or user id, or `None` when it can. Ids become S3 key
/// segments, URL path segments and log fields: `.` and `..` are path navigation in every
/// URL and file API (a client's `GET /t/../x` is not what it meant), and control and
/// Unicode format characters (zero-width, bidi overrides, BOM: category Cf) make two ids
/// that differ look identical in logs and consoles (`tenant-a\u{200b}`).
pub fn id_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value == "." || value == ".." {
        Some("is '.' or '..', which URLs and paths treat as navigation")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else if value.chars().any(is_format_char) {
        Some(
            "contains an invisible Unicode format character (zero-width, bidi control or byte order mark)",
        )
    } else if value.len() > MAX_ID_BYTES {
        Some("is longer than 128 bytes")
    } else {
        None
    }
}

/// Unicode general category Cf (format characters), per the Unicode Character Database
/// (`DerivedGeneralCategory.txt`, Unicode 16): invisible characters that change how text
/// around them is shown or joined.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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
                let token = bearer_token(&headers[AUTHORIZATION])?;
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

    async fn verify_token(&self, token: &str) -> Result<Caller, AuthError> {
        let (alg, kid) = self.peek_header(token)?;
        let snapshot;
        let mut candidates: Vec<&DecodingKey> = Vec::new();
        if alg == Algorithm::HS256 {
            match &self.inner.hs256 {
                Some((_, key)) => candidates.push(key),
                None => {
                    return Err(AuthError::InvalidToken(format!(
                        "it is signed with HS256, but this server has no shared secret (api.auth.hs256_secret_env); {}",
                        self.what_is_accepted()
                    )));
                }
            }
        } else {
            snapshot = self.public_keys_for(alg, kid.as_deref()).await;
            candidates.extend(
                self.inner
                    .file_keys
                    .iter()
                    .chain(snapshot.iter())
                    .filter(|k| matches_key(k, alg, kid.as_deref()))
                    .map(|k| &k.key),
            );
            if candidates.is_empty() {
                return Err(AuthError::InvalidToken(match kid {
                    Some(kid) => format!(
                        "no {alg:?} key with id \"{}\" in the issuer's JWKS (api.auth.jwks_file / jwks_url); get a new token, or update the JWKS if the issuer rotated its keys",
                        shown(&kid)
                    ),
                    None => format!(
                        "it is signed with {alg:?}, but the JWKS (api.auth.jwks_file / jwks_url) has no {alg:?} key; {}",
                        self.what_is_accepted()
                    ),
                }));
            }
        }
        let validation = self.validation(alg);
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => return self.caller_from_claims(&data.claims),
                // Without a `kid` any key of the type may be the signer: try the next one.
                Err(e) if is_key_mismatch(e.kind()) => continue,
                Err(e) => return Err(self.claim_error(e.into_kind())),
            }
        }
        Err(AuthError::InvalidToken(
            "its signature does not match: it was altered, or signed by a key this server does not trust".into(),
        ))
    }

    fn peek_header(&self, token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
        let malformed = |what: &str| {
            AuthError::InvalidToken(format!(
                "{what}; send the JWT exactly as the identity provider issued it"
            ))
        };
        let mut parts = token.split('.');
        let (Some(head), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "it is not a JWT (three base64url parts separated by '.')",
            ));
        };
        let header: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(head)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| malformed("its header is not base64url-encoded JSON"))?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(malformed("its header has no `alg`")),
        };
        let alg = match alg {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other if other.eq_ignore_ascii_case("none") => {
                return Err(AuthError::InvalidToken(format!(
                    "unsigned tokens (`alg: none`) are never accepted; {}",
                    self.what_is_accepted()
                )));
            }
            other => {
                return Err(AuthError::InvalidToken(format!(
                    "it is signed with \"{}\", which this server does not accept; {}",
                    shown(other),
                    self.what_is_accepted()
                )));
            }
        };
        // RFC 7515 §4.1.11: extensions marked critical must be understood, and none are.
        if header.contains_key("crit") {
            return Err(malformed(
                "its header lists critical extensions (`crit`) this server does not implement",
            ));
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(malformed("its header's `kid` is not a string")),
        };
        Ok((alg, kid))
    }

    /// The fetched keys, refetched first when `kid` is unknown and the last fetch is old
    /// enough: issuers publish a new key before they sign with it.
    async fn public_keys_for(&self, alg: Algorithm, kid: Option<&str>) -> Arc<Vec<PublicKey>> {
        let inner = &self.inner;
        let current = self.fetched();
        let Some(kid) = kid else { return current };
        let known = inner
            .file_keys
            .iter()
            .chain(current.iter())
            .any(|k| matches_key(k, alg, Some(kid)));
        let Some((url, client)) = inner.jwks_url.as_ref().filter(|_| !known) else {
            return current;
        };
        let mut last = inner.last_fetch.lock().await;
        if last.elapsed() >= JWKS_REFETCH_MIN {
            *last = Instant::now();
            match fetch_jwks(client, url).await {
                Ok(keys) => {
                    *inner
                        .fetched_keys
                        .write()
                        .unwrap_or_else(|e| e.into_inner()) = Arc::new(keys)
                }
                Err(problem) => tracing::warn!(
                    url = %url,
                    "JWKS refetch for an unknown key id failed, keeping the previous keys: {problem}; check that the issuer is reachable"
                ),
            }
        }
        // Another request may have refetched while this one waited for the lock.
        self.fetched()
    }

    fn fetched(&self) -> Arc<Vec<PublicKey>> {
        let keys = self.inner.fetched_keys.read();
        Arc::clone(&keys.unwrap_or_else(|e| e.into_inner()))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let auth = &self.inner.auth;
        let mut v = Validation::new(alg);
        v.leeway = u64::from(auth.leeway_secs);
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &auth.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &auth.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            // Otherwise any `aud` in a token would be refused.
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    fn claim_error(&self, kind: ErrorKind) -> AuthError {
        let auth = &self.inner.auth;
        let expected = |v: &Option<String>| v.clone().unwrap_or_default();
        match kind {
            ErrorKind::ExpiredSignature => AuthError::TokenExpired,
            ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: expected(&auth.audience),
            },
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience {
                expected: expected(&auth.audience),
            },
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                expected: expected(&auth.issuer),
            },
            ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthError::WrongIssuer {
                expected: expected(&auth.issuer),
            },
            ErrorKind::MissingRequiredClaim(c) => AuthError::InvalidToken(format!(
                "it has no `{c}` claim; only tokens that expire are accepted, so issue it with `exp`"
            )),
            ErrorKind::InvalidClaimFormat(c) => AuthError::InvalidToken(format!(
                "its `{c}` claim is not a time in seconds since 1970; fix the issuer's token format"
            )),
            _ => AuthError::InvalidToken(
                "its payload is not valid JWT claims; send the JWT exactly as the identity provider issued it".into(),
            ),
        }
    }

    fn caller_from_claims(&self, claims: &Map<String, Value>) -> Result<Caller, AuthError> {
        let auth = &self.inner.auth;
        let tenant = id_claim(claims, &auth.tenant_claim, "tenant")?;
        let user = id_claim(claims, &auth.user_claim, "user")?;
        let bad_roles = || {
            AuthError::InvalidToken(format!(
                "its `{}` claim is neither a string nor a list of strings; fix the issuer's roles claim (api.auth.roles_claim)",
                auth.roles_claim
            ))
        };
        let admin = match claims.get(&auth.roles_claim) {
            None | Some(Value::Null) => false,
            Some(Value::String(role)) => *role == auth.admin_role,
            Some(Value::Array(roles)) => {
                let mut admin = false;
                for role in roles {
                    admin |= role.as_str().ok_or_else(bad_roles)? == auth.admin_role;
                }
                admin
            }
            Some(_) => return Err(bad_roles()),
        };
        Ok(Caller {
            tenant,
            user,
            admin,
            via: CallerKind::Token,
        })
    }

    fn check_api_key(
        &self,
        presented: &HeaderValue,
        acting: Option<&HeaderValue>,
    ) -> Result<Caller, AuthError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every key is compared, so the time taken does not tell which one came close.
        let mut found = None;
        for key in &self.inner.keys {
            if bool::from(key.sha256.ct_eq(&digest)) && found.is_none() {
                found = Some(key);
            }
        }
        let key = found.ok_or(AuthError::UnknownApiKey)?;
        let user = match acting {
            None => SERVICE_USER.to_string(),
            Some(value) => {
                let user = value.to_str().map_err(|_| {
                    AuthError::InvalidUserHeader(
                        "it is not ASCII; send the user id as ASCII".into(),
                    )
                })?;
                if let Some(problem) = id_problem(user) {
                    return Err(AuthError::InvalidUserHeader(format!(
                        "\"{}\" {problem}; name the user the service acts for, without '/', '.' or '..' alone, control or invisible format characters",
                        shown(user)
                    )));
                }
                user.to_string()
            }
        };
        Ok(Caller {
            tenant: key.tenant.clone(),
            user,
            admin: false,
            via: CallerKind::ApiKey {
                name: key.name.clone(),
            },
        })
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

fn bearer_token(value: &HeaderValue) -> Result<&str, AuthError> {
    let not_bearer = || {
        AuthError::InvalidToken(
            "the Authorization header must be `Bearer <token>`; other schemes are not accepted"
                .into(),
        )
    };
    let value = value.to_str().map_err(|_| not_bearer())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(not_bearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(not_bearer());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::InvalidToken(
            "the Authorization header has no token after `Bearer`; send `Bearer <token>`".into(),
        ));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::InvalidToken(format!(
            "it is {} bytes, more than the 16 KiB accepted; issue smaller tokens (fewer claims)",
            token.len()
        )));
    }
    Ok(token)
}

fn id_claim(
    claims: &Map<String, Value>,
    claim: &str,
    what: &'static str,
) -> Result<String, AuthError> {
    let value = match claims.get(claim) {
        Some(Value::String(value)) => value,
        None | Some(Value::Null) => {
            return Err(AuthError::InvalidToken(format!(
                "it has no `{claim}` claim naming the {what}; issue tokens with it, or set api.auth.{what}_claim to the claim your issuer uses"
            )));
        }
        Some(_) => {
            return Err(AuthError::InvalidToken(format!(
                "its `{claim}` claim ({what}) is not a string; issue it as a string"
            )));
        }
    };
    match id_problem(value) {
        None => Ok(value.clone()),
        Some(problem) => Err(AuthError::InvalidIdentity {
            claim: claim.to_owned(),
            what,
            problem,
        }),
    }
}

fn matches_key(key: &PublicKey, alg: Algorithm, kid: Option<&str>) -> bool {
    key.alg == alg && kid.is_none_or(|kid| key.kid.as_deref() == Some(kid))
}

fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidKeyFormat
    )
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
