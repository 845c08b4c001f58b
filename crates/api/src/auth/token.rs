//! Bearer tokens: the `Authorization` header's shape, the JWT header (only HS256, RS256 and
//! ES256; never `alg: none` or `crit`), the key that may have signed it (refetching the
//! JWKS when an issuer rotates its keys), the registered claims and the tenant, user and
//! roles claims that make a [`Caller`].

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::keys::{PublicKey, fetch_jwks};
use super::{AuthError, Authenticator, Caller, CallerKind, id_problem, shown};

/// Rotation needs a refetch, but a stream of made-up `kid`s must not become a stream of
/// requests to the issuer.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(60);
/// Far above any real token (large group claims reach ~8 KiB); bounds the work a stranger
/// can make us do.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

impl Authenticator {
    pub(super) async fn verify_token(&self, token: &str) -> Result<Caller, AuthError> {
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
}

pub(super) fn bearer_token(value: &HeaderValue) -> Result<&str, AuthError> {
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
