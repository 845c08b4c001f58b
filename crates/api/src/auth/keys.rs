//! Where verification keys come from: the HS256 secret from its environment variable (or a
//! random one for dev tokens), RS256/ES256 keys from a JWKS file or URL, and service keys'
//! hashes from `[[api.keys]]`.

use intake_core::config::ApiSection;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use serde_json::Value;

use super::{AuthSetupError, MIN_SECRET_BYTES, id_problem};

pub(super) struct PublicKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
}

pub(super) struct ServiceKey {
    pub(super) name: String,
    pub(super) tenant: String,
    pub(super) sha256: [u8; 32],
}

pub(super) fn read_secret(var: &str) -> Result<Vec<u8>, AuthSetupError> {
    const PATH: &str = "api.auth.hs256_secret_env";
    let fix = || format!("e.g. `export {var}=$(openssl rand -base64 48)`, or remove {PATH}");
    let Some(secret) = std::env::var_os(var) else {
        return Err(AuthSetupError::config(
            PATH,
            format!("environment variable \"{var}\" is not set"),
            format!("set it to the shared HS256 secret, {}", fix()),
        ));
    };
    let secret = secret.into_encoded_bytes();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(AuthSetupError::config(
            PATH,
            format!(
                "the secret in \"{var}\" is {} bytes; HS256 needs at least {MIN_SECRET_BYTES}",
                secret.len()
            ),
            format!("use a longer secret, {}", fix()),
        ));
    }
    Ok(secret)
}

pub(super) fn random_secret() -> Result<Vec<u8>, AuthSetupError> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        AuthSetupError::config(
            "api.dev_tokens",
            format!("no random bytes for the development signing secret ({e})"),
            "set api.auth.hs256_secret_env to the name of a variable holding a secret",
        )
    })?;
    Ok(secret)
}

pub(super) fn load_jwks_file(path: &str) -> Result<Vec<PublicKey>, AuthSetupError> {
    const PATH: &str = "api.auth.jwks_file";
    let text = std::fs::read(path).map_err(|e| {
        AuthSetupError::config(
            PATH,
            format!("cannot read \"{path}\" ({e})"),
            "save the issuer's JWKS there (paths are relative to the working directory), or use api.auth.jwks_url",
        )
    })?;
    parse_jwks(&text).map_err(|problem| {
        AuthSetupError::config(
            PATH,
            format!("\"{path}\" {problem}"),
            "save the issuer's JWKS document (`{\"keys\": [...]}`) there",
        )
    })
}

pub(super) async fn fetch_jwks(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<PublicKey>, String> {
    let response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("fetching \"{url}\" failed ({e})"))?;
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading \"{url}\" failed ({e})"))?;
    parse_jwks(&body).map_err(|problem| format!("\"{url}\" {problem}"))
}

/// The RS256 and ES256 signing keys of a JWKS document. Other keys (encryption keys,
/// symmetric or unknown types) are skipped: a published `oct` key would let anyone mint tokens.
pub(super) fn parse_jwks(bytes: &[u8]) -> Result<Vec<PublicKey>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("is not JSON ({e})"))?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err("has no \"keys\" list".into());
    };
    let keys: Vec<PublicKey> = entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .filter_map(|jwk| public_key(&jwk))
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "has {} keys but no RS256 or ES256 (P-256) signing key",
            entries.len()
        ));
    }
    Ok(keys)
}

pub(super) fn public_key(jwk: &Jwk) -> Option<PublicKey> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let (alg, wanted) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|a| a != wanted) {
        return None;
    }
    Some(PublicKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

pub(super) fn service_keys(api: &ApiSection) -> Result<Vec<ServiceKey>, AuthSetupError> {
    let mut keys = Vec::with_capacity(api.keys.len());
    for (i, key) in api.keys.iter().enumerate() {
        if let Some(problem) = id_problem(&key.tenant) {
            return Err(AuthSetupError::config(
                format!("api.keys[{i}].tenant"),
                format!("the tenant {problem}"),
                "use the tenant id the key acts for, without '/', '.' or '..' alone, control or invisible format characters",
            ));
        }
        let sha256 = decode_sha256_hex(&key.sha256).ok_or_else(|| {
            AuthSetupError::config(
                format!("api.keys[{i}].sha256"),
                "not 64 hex digits",
                "store the key's SHA-256, e.g. the output of `printf %s \"$KEY\" | sha256sum`",
            )
        })?;
        keys.push(ServiceKey {
            name: key.name.clone(),
            tenant: key.tenant.clone(),
            sha256,
        });
    }
    Ok(keys)
}

pub(super) fn decode_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}
