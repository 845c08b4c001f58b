//! Authentication with real keys: RSA and EC P-256 keys made by `openssl` at test time,
//! JWKS documents on disk or served by a local HTTP server, HS256 secrets in environment
//! variables. Every rejected token is checked for its error code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use intake_api::auth::{AuthError, AuthSetupError, Authenticator, Caller, CallerKind};
use intake_core::config::{ApiKey, ApiSection};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECRET: &str = "an-hs256-secret-of-more-than-thirty-two-bytes";

/// One variable per test that reads a secret, all set before any test reads the
/// environment: `set_var` while another thread reads it is undefined behaviour.
const ENV_VARS: [(&str, &str); 6] = [
    ("INTAKE_AUTH_TEST_HS256_VALID", SECRET),
    ("INTAKE_AUTH_TEST_HS256_CLAIMS", SECRET),
    ("INTAKE_AUTH_TEST_HS256_TIMES", SECRET),
    ("INTAKE_AUTH_TEST_HS256_ISS_AUD", SECRET),
    ("INTAKE_AUTH_TEST_HS256_DEV", SECRET),
    ("INTAKE_AUTH_TEST_SHORT", "short-secret"),
];

fn env(name: &str) -> String {
    static SET: LazyLock<()> = LazyLock::new(|| {
        for (name, value) in ENV_VARS {
            // SAFETY: runs once, before any test goes on to read the environment.
            unsafe { std::env::set_var(name, value) };
        }
    });
    LazyLock::force(&SET);
    name.to_string()
}

struct Keys {
    rsa: EncodingKey,
    rsa_jwk: Jwk,
    /// The RSA public key as PEM, what a key-confusion attacker uses as an HMAC secret.
    rsa_public_pem: Vec<u8>,
    rsa2: EncodingKey,
    rsa2_jwk: Jwk,
    ec: EncodingKey,
    ec_jwk: Jwk,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out.stdout
    };
    let gen_rsa = |file: &str| {
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            file,
        ]);
        std::fs::read(dir.path().join(file)).unwrap()
    };
    let rsa_pem = gen_rsa("rsa.pem");
    let rsa2_pem = gen_rsa("rsa2.pem");
    let rsa_public_pem = openssl(&["pkey", "-in", "rsa.pem", "-pubout"]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ec.pem",
    ]);
    let ec_pem = std::fs::read(dir.path().join("ec.pem")).unwrap();
    let rsa = EncodingKey::from_rsa_pem(&rsa_pem).unwrap();
    let rsa2 = EncodingKey::from_rsa_pem(&rsa2_pem).unwrap();
    let ec = EncodingKey::from_ec_pem(&ec_pem).unwrap();
    let jwk = |key: &EncodingKey, alg, kid: &str| {
        let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk
    };
    Keys {
        rsa_jwk: jwk(&rsa, Algorithm::RS256, "rsa-1"),
        rsa2_jwk: jwk(&rsa2, Algorithm::RS256, "rsa-2"),
        ec_jwk: jwk(&ec, Algorithm::ES256, "ec-1"),
        rsa,
        rsa2,
        ec,
        rsa_public_pem,
    }
});

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(tenant: &str, user: &str) -> Value {
    json!({"tenant": tenant, "sub": user, "exp": now() + 600})
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn bearer(token: &str) -> HeaderMap {
    headers(&[("authorization", &format!("Bearer {token}"))])
}

fn with_secret(var: &str) -> ApiSection {
    let mut api = ApiSection::default();
    api.auth.hs256_secret_env = Some(env(var));
    api
}

/// `api` with a JWKS file of `keys` in a directory that lives as long as the result.
fn with_jwks_file(keys: &[&Jwk]) -> (ApiSection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let set = JwkSet {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    };
    std::fs::write(&path, serde_json::to_vec(&set).unwrap()).unwrap();
    let mut api = ApiSection::default();
    api.auth.jwks_file = Some(path.to_str().unwrap().into());
    (api, dir)
}

async fn rejects(auth: &Authenticator, headers: &HeaderMap) -> AuthError {
    match auth.authenticate(headers).await {
        Ok(caller) => panic!("accepted as {caller:?}"),
        Err(e) => e,
    }
}

async fn rejects_token(auth: &Authenticator, token: &str, code: &str) -> AuthError {
    let err = rejects(auth, &bearer(token)).await;
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(!err.to_string().contains(token), "echoes the token: {err}");
    err
}

fn token_caller(tenant: &str, user: &str, admin: bool) -> Caller {
    Caller {
        tenant: tenant.into(),
        user: user.into(),
        admin,
        via: CallerKind::Token,
    }
}

#[tokio::test]
async fn hs256_token_names_tenant_user_and_admin() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_VALID"))
        .await
        .unwrap();
    let token = hs256(&claims("acme", "alice"));
    let caller = auth.authenticate(&bearer(&token)).await.unwrap();
    assert_eq!(caller, token_caller("acme", "alice", false));

    let mut admin = claims("acme", "root");
    admin["roles"] = json!(["reader", "intake-admin"]);
    let caller = auth.authenticate(&bearer(&hs256(&admin))).await.unwrap();
    assert_eq!(caller, token_caller("acme", "root", true));

    // The scheme is case-insensitive (RFC 7235).
    let map = headers(&[("authorization", &format!("bearer {token}"))]);
    assert_eq!(auth.authenticate(&map).await.unwrap().tenant, "acme");
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_jwks_file() {
    let keys = &*KEYS;
    let (api, _dir) = with_jwks_file(&[&keys.rsa_jwk, &keys.ec_jwk]);
    let auth = Authenticator::from_config(&api).await.unwrap();

    let rs = sign(
        Algorithm::RS256,
        &keys.rsa,
        Some("rsa-1"),
        &claims("acme", "bob"),
    );
    assert_eq!(
        auth.authenticate(&bearer(&rs)).await.unwrap(),
        token_caller("acme", "bob", false)
    );
    let es = sign(
        Algorithm::ES256,
        &keys.ec,
        Some("ec-1"),
        &claims("globex", "carol"),
    );
    assert_eq!(
        auth.authenticate(&bearer(&es)).await.unwrap(),
        token_caller("globex", "carol", false)
    );
    // Without a kid, every key of the token's type is tried.
    for (alg, key) in [(Algorithm::RS256, &keys.rsa), (Algorithm::ES256, &keys.ec)] {
        let token = sign(alg, key, None, &claims("acme", "dave"));
        assert_eq!(
            auth.authenticate(&bearer(&token)).await.unwrap().user,
            "dave"
        );
    }
    // A key the JWKS does not hold, without a kid: no key matches its signature.
    let stranger = sign(Algorithm::RS256, &keys.rsa2, None, &claims("acme", "eve"));
    let err = rejects_token(&auth, &stranger, "invalid_token").await;
    assert!(err.to_string().contains("signature"), "{err}");
}

#[tokio::test]
async fn roles_may_be_a_string_or_a_list() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_CLAIMS"))
        .await
        .unwrap();
    for (roles, admin) in [
        (json!("intake-admin"), true),
        (json!("reader"), false),
        (json!(["intake-admin"]), true),
        (json!(["reader", "writer"]), false),
        (json!([]), false),
    ] {
        let mut c = claims("acme", "alice");
        c["roles"] = roles.clone();
        let caller = auth.authenticate(&bearer(&hs256(&c))).await.unwrap();
        assert_eq!(caller.admin, admin, "roles {roles}");
    }
    for roles in [json!(42), json!(["intake-admin", 7])] {
        let mut c = claims("acme", "alice");
        c["roles"] = roles;
        let err = rejects_token(&auth, &hs256(&c), "invalid_token").await;
        assert!(err.to_string().contains("`roles`"), "{err}");
    }
}

#[tokio::test]
async fn tenant_and_user_claims_must_be_key_segments() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_CLAIMS"))
        .await
        .unwrap();
    let no_tenant = json!({"sub": "alice", "exp": now() + 600});
    let err = rejects_token(&auth, &hs256(&no_tenant), "invalid_token").await;
    assert!(err.to_string().contains("no `tenant` claim"), "{err}");
    assert!(err.to_string().contains("api.auth.tenant_claim"), "{err}");

    let no_user = json!({"tenant": "acme", "exp": now() + 600});
    let err = rejects_token(&auth, &hs256(&no_user), "invalid_token").await;
    assert!(err.to_string().contains("no `sub` claim"), "{err}");

    for (tenant, user, problem) in [
        ("acme/other", "alice", "contains '/'"),
        ("", "alice", "is empty"),
        ("acme", "../alice", "contains '/'"),
        ("acme", "al\nice", "control character"),
    ] {
        let err = rejects_token(&auth, &hs256(&claims(tenant, user)), "invalid_identity").await;
        assert!(err.to_string().contains(problem), "{err}");
    }
    let numeric = json!({"tenant": 42, "sub": "alice", "exp": now() + 600});
    let err = rejects_token(&auth, &hs256(&numeric), "invalid_token").await;
    assert!(err.to_string().contains("not a string"), "{err}");
}

#[tokio::test]
async fn missing_and_malformed_credentials() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_VALID"))
        .await
        .unwrap();
    let err = rejects(&auth, &HeaderMap::new()).await;
    assert_eq!(err.code(), "missing_credentials");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

    for garbage in ["garbage", "a.b.c", "a.b", "....", "e30.e30.e30"] {
        rejects_token(&auth, garbage, "invalid_token").await;
    }
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"] {
        let err = rejects(&auth, &headers(&[("authorization", value)])).await;
        assert_eq!(err.code(), "invalid_token", "{value}: {err}");
    }
    let huge = "a".repeat(20_000);
    let err = rejects_token(&auth, &huge, "invalid_token").await;
    assert!(err.to_string().contains("16 KiB"), "{err}");
}

#[tokio::test]
async fn exp_is_required_and_checked_with_leeway_and_nbf_when_present() {
    let mut api = with_secret("INTAKE_AUTH_TEST_HS256_TIMES");
    api.auth.leeway_secs = 30;
    let auth = Authenticator::from_config(&api).await.unwrap();

    let expired = json!({"tenant": "acme", "sub": "alice", "exp": now() - 120});
    let err = rejects_token(&auth, &hs256(&expired), "token_expired").await;
    assert!(err.to_string().contains("fresh"), "{err}");

    let within_leeway = json!({"tenant": "acme", "sub": "alice", "exp": now() - 10});
    auth.authenticate(&bearer(&hs256(&within_leeway)))
        .await
        .unwrap();

    let no_exp = json!({"tenant": "acme", "sub": "alice"});
    let err = rejects_token(&auth, &hs256(&no_exp), "invalid_token").await;
    assert!(err.to_string().contains("`exp`"), "{err}");

    let future = json!({"tenant": "acme", "sub": "alice", "exp": now() + 600, "nbf": now() + 300});
    rejects_token(&auth, &hs256(&future), "token_not_yet_valid").await;

    let nbf_past = json!({"tenant": "acme", "sub": "alice", "exp": now() + 600, "nbf": now() - 5});
    auth.authenticate(&bearer(&hs256(&nbf_past))).await.unwrap();
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let mut api = with_secret("INTAKE_AUTH_TEST_HS256_ISS_AUD");
    api.auth.issuer = Some("https://login.example.com".into());
    api.auth.audience = Some("intake".into());
    let auth = Authenticator::from_config(&api).await.unwrap();
    let token = |iss: Option<&str>, aud: Option<Value>| {
        let mut c = claims("acme", "alice");
        if let Some(iss) = iss {
            c["iss"] = iss.into();
        }
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        hs256(&c)
    };
    let good = "https://login.example.com";
    auth.authenticate(&bearer(&token(Some(good), Some(json!("intake")))))
        .await
        .unwrap();
    auth.authenticate(&bearer(&token(
        Some(good),
        Some(json!(["other", "intake"])),
    )))
    .await
    .unwrap();

    let err = rejects_token(
        &auth,
        &token(Some(good), Some(json!("billing"))),
        "wrong_audience",
    )
    .await;
    assert!(err.to_string().contains("\"intake\""), "{err}");
    assert!(err.to_string().contains("api.auth.audience"), "{err}");
    rejects_token(&auth, &token(Some(good), None), "wrong_audience").await;

    let err = rejects_token(
        &auth,
        &token(Some("https://evil.example.com"), Some(json!("intake"))),
        "wrong_issuer",
    )
    .await;
    assert!(err.to_string().contains("api.auth.issuer"), "{err}");
    rejects_token(&auth, &token(None, Some(json!("intake"))), "wrong_issuer").await;
}

#[tokio::test]
async fn an_audience_in_the_token_is_fine_when_none_is_configured() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_VALID"))
        .await
        .unwrap();
    let mut c = claims("acme", "alice");
    c["aud"] = json!("anything");
    auth.authenticate(&bearer(&hs256(&c))).await.unwrap();
}

#[tokio::test]
async fn tampered_unsigned_and_foreign_algorithm_tokens_are_rejected() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_VALID"))
        .await
        .unwrap();
    // The payload of one token with the signature of another.
    let honest = hs256(&claims("acme", "alice"));
    let other = hs256(&claims("globex", "alice"));
    let parts: Vec<&str> = honest.split('.').collect();
    let other_payload = other.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    let err = rejects_token(&auth, &tampered, "invalid_token").await;
    assert!(err.to_string().contains("signature"), "{err}");

    // `alg: none`, built by hand, with and without a signature part.
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let payload = b64(&claims("acme", "alice"));
    for alg in ["none", "None", "NONE"] {
        let head = b64(&json!({"alg": alg, "typ": "JWT"}));
        let err = rejects_token(&auth, &format!("{head}.{payload}."), "invalid_token").await;
        assert!(err.to_string().contains("alg: none"), "{err}");
        rejects_token(
            &auth,
            &format!("{head}.{payload}.{}", parts[2]),
            "invalid_token",
        )
        .await;
    }

    // A critical header extension this server does not implement.
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["exp-hint".into()]);
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let crit = jsonwebtoken::encode(&header, &claims("acme", "alice"), &secret).unwrap();
    let err = rejects_token(&auth, &crit, "invalid_token").await;
    assert!(err.to_string().contains("`crit`"), "{err}");

    // HS512 with the very secret HS256 uses: a valid signature, an algorithm not accepted.
    let hs512 = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        &claims("acme", "alice"),
    );
    let err = rejects_token(&auth, &hs512, "invalid_token").await;
    assert!(err.to_string().contains("\"HS512\""), "{err}");

    // No JWKS here, so RS256 is refused before any key is looked for.
    let rs = sign(Algorithm::RS256, &KEYS.rsa, None, &claims("acme", "alice"));
    let err = rejects_token(&auth, &rs, "invalid_token").await;
    assert!(err.to_string().contains("RS256"), "{err}");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_when_only_a_jwks_is_configured() {
    let keys = &*KEYS;
    let (api, _dir) = with_jwks_file(&[&keys.rsa_jwk]);
    let auth = Authenticator::from_config(&api).await.unwrap();
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&keys.rsa_public_pem),
        Some("rsa-1"),
        &claims("acme", "mallory"),
    );
    let err = rejects_token(&auth, &confused, "invalid_token").await;
    assert!(err.to_string().contains("no shared secret"), "{err}");
    // And an RS256 header on an HMAC signature does not verify against the RSA key.
    let mut forged: Vec<String> = confused.split('.').map(str::to_string).collect();
    forged[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"rsa-1"}"#);
    rejects_token(&auth, &forged.join("."), "invalid_token").await;
}

#[tokio::test]
async fn an_unknown_kid_is_named_in_the_error() {
    let keys = &*KEYS;
    let (api, _dir) = with_jwks_file(&[&keys.rsa_jwk, &keys.ec_jwk]);
    let auth = Authenticator::from_config(&api).await.unwrap();
    let token = sign(
        Algorithm::RS256,
        &keys.rsa2,
        Some("rotated-7"),
        &claims("acme", "alice"),
    );
    let err = rejects_token(&auth, &token, "invalid_token").await;
    assert!(err.to_string().contains("\"rotated-7\""), "{err}");
    // A kid of a key of the other type does not match either.
    let token = sign(
        Algorithm::ES256,
        &keys.ec,
        Some("rsa-1"),
        &claims("acme", "alice"),
    );
    rejects_token(&auth, &token, "invalid_token").await;
}

/// Ids that look like another id, or like path navigation, are refused wherever an id
/// enters: token claims, X-Intake-User, the tenant of a configured API key.
const BAD_IDS: [(&str, &str); 10] = [
    (".", "'.' or '..'"),
    ("..", "'.' or '..'"),
    ("tenant-a\u{200b}", "invisible Unicode format character"),
    ("\u{feff}tenant-a", "invisible Unicode format character"),
    ("ten\u{202e}ant", "invisible Unicode format character"),
    (
        "tenant\u{2066}a\u{2069}",
        "invisible Unicode format character",
    ),
    ("ten\u{ad}ant", "invisible Unicode format character"),
    ("a\u{200d}b", "invisible Unicode format character"),
    ("bell\u{7}", "control character"),
    ("del\u{7f}", "control character"),
];
const GOOD_IDS: [&str; 5] = ["tenant-a", "a.b", "...", "ünïcødé", "user_42"];

#[tokio::test]
async fn ids_refuse_dot_segments_controls_and_invisible_format_characters() {
    for (id, problem) in BAD_IDS {
        assert_eq!(
            intake_api::auth::id_problem(id).map(|p| p.contains(problem)),
            Some(true),
            "{id:?}"
        );
    }
    for id in GOOD_IDS {
        assert_eq!(intake_api::auth::id_problem(id), None, "{id:?}");
    }

    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_CLAIMS"))
        .await
        .unwrap();
    for (id, problem) in BAD_IDS {
        for (tenant, user, claim) in [(id, "alice", "`tenant`"), ("acme", id, "`sub`")] {
            let err = rejects_token(&auth, &hs256(&claims(tenant, user)), "invalid_identity").await;
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
            let message = err.to_string();
            assert!(
                message.contains(problem) && message.contains(claim),
                "{message}"
            );
        }
    }
    for id in GOOD_IDS {
        let caller = auth
            .authenticate(&bearer(&hs256(&claims(id, id))))
            .await
            .unwrap();
        assert_eq!((caller.tenant.as_str(), caller.user.as_str()), (id, id));
    }

    let key = "svc-key-0123456789";
    let with_key_tenant = |tenant: &str| ApiSection {
        keys: vec![ApiKey {
            name: "backend".into(),
            tenant: tenant.into(),
            sha256: hex(&Sha256::digest(key.as_bytes())),
        }],
        ..ApiSection::default()
    };
    let service = Authenticator::from_config(&with_key_tenant("acme"))
        .await
        .unwrap();
    for (id, problem) in BAD_IDS {
        // Control characters cannot be in a header at all; non-ASCII ids are refused as
        // not ASCII before their characters are looked at.
        if let Ok(value) = HeaderValue::from_str(id) {
            let mut sent = headers(&[("x-api-key", key)]);
            sent.insert("x-intake-user", value);
            let err = rejects(&service, &sent).await;
            assert_eq!(err.code(), "invalid_user_header", "{id:?}");
            let why = if id.is_ascii() { problem } else { "not ASCII" };
            assert!(err.to_string().contains(why), "{err}");
        }
        let err = Authenticator::from_config(&with_key_tenant(id))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("api.keys[0].tenant:") && message.contains(problem),
            "{message}"
        );
    }
}

#[tokio::test]
async fn api_keys_name_their_tenant_and_may_act_for_a_user() {
    let key = "svc-key-0123456789";
    let api = ApiSection {
        keys: vec![
            ApiKey {
                name: "other".into(),
                tenant: "globex".into(),
                sha256: hex(&Sha256::digest(b"another-key")),
            },
            ApiKey {
                name: "billing-backend".into(),
                tenant: "acme".into(),
                sha256: hex(&Sha256::digest(key.as_bytes())),
            },
        ],
        ..ApiSection::default()
    };
    let auth = Authenticator::from_config(&api).await.unwrap();

    let caller = auth
        .authenticate(&headers(&[("x-api-key", key)]))
        .await
        .unwrap();
    let service = Caller {
        tenant: "acme".into(),
        user: "service".into(),
        admin: false,
        via: CallerKind::ApiKey {
            name: "billing-backend".into(),
        },
    };
    assert_eq!(caller, service);

    let caller = auth
        .authenticate(&headers(&[("x-api-key", key), ("x-intake-user", "alice")]))
        .await
        .unwrap();
    assert_eq!(
        caller,
        Caller {
            user: "alice".into(),
            ..service
        }
    );

    let err = rejects(&auth, &headers(&[("x-api-key", "svc-key-0123456780")])).await;
    assert_eq!(err.code(), "unknown_api_key");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(!err.to_string().contains("svc-key"), "{err}");

    let err = rejects(
        &auth,
        &headers(&[("x-api-key", key), ("x-intake-user", "a/b")]),
    )
    .await;
    assert_eq!(
        (err.code(), err.status()),
        ("invalid_user_header", StatusCode::BAD_REQUEST)
    );

    let err = rejects(
        &auth,
        &headers(&[("x-api-key", key), ("authorization", "Bearer x.y.z")]),
    )
    .await;
    assert_eq!(
        (err.code(), err.status()),
        ("ambiguous_credentials", StatusCode::BAD_REQUEST)
    );

    // With no HS256 secret and no JWKS, a token has nothing to verify against.
    let err = rejects_token(&auth, &hs256(&claims("acme", "a")), "invalid_token").await;
    assert!(err.to_string().contains("X-Api-Key"), "{err}");
}

#[tokio::test]
async fn x_intake_user_is_refused_with_a_token() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_VALID"))
        .await
        .unwrap();
    let token = hs256(&claims("acme", "alice"));
    let map = headers(&[
        ("authorization", &format!("Bearer {token}")),
        ("x-intake-user", "bob"),
    ]);
    let err = rejects(&auth, &map).await;
    assert_eq!(err.code(), "invalid_user_header");
}

#[tokio::test]
async fn dev_tokens_round_trip_with_a_random_or_configured_secret() {
    let api = ApiSection {
        dev_tokens: true,
        ..ApiSection::default()
    };
    let auth = Authenticator::from_config(&api).await.unwrap();
    let (token, expires_at) = auth
        .dev_token("acme", "alice", true, Duration::from_secs(3600))
        .unwrap();
    assert!((expires_at - (now() + 3600)).abs() <= 2, "{expires_at}");
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap(),
        token_caller("acme", "alice", true)
    );
    let (token, _) = auth
        .dev_token("acme", "bob", false, Duration::from_secs(60))
        .unwrap();
    assert!(!auth.authenticate(&bearer(&token)).await.unwrap().admin);

    // The random secret is per process... and per authenticator: another one refuses it.
    let other = Authenticator::from_config(&api).await.unwrap();
    rejects_token(&other, &token, "invalid_token").await;

    // With a configured secret, issuer and audience, dev tokens carry them.
    let mut api = with_secret("INTAKE_AUTH_TEST_HS256_DEV");
    api.dev_tokens = true;
    api.auth.issuer = Some("https://login.example.com".into());
    api.auth.audience = Some("intake".into());
    api.auth.tenant_claim = "org".into();
    let auth = Authenticator::from_config(&api).await.unwrap();
    let (token, _) = auth
        .dev_token("acme", "carol", false, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap(),
        token_caller("acme", "carol", false)
    );
    let mut c = json!({"org": "acme", "sub": "carol", "exp": now() + 60});
    c["iss"] = "https://login.example.com".into();
    c["aud"] = "intake".into();
    auth.authenticate(&bearer(&hs256(&c))).await.unwrap();
}

#[tokio::test]
async fn dev_tokens_are_none_when_off() {
    let auth = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_HS256_DEV"))
        .await
        .unwrap();
    assert!(
        auth.dev_token("acme", "alice", false, Duration::from_secs(60))
            .is_none()
    );
}

#[tokio::test]
async fn setup_errors_name_the_config_path_and_the_fix() {
    let err = Authenticator::from_config(&ApiSection::default())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthSetupError::NothingConfigured));
    assert!(err.to_string().contains("no way to authenticate"), "{err}");
    assert!(
        err.to_string().contains("api.auth.hs256_secret_env"),
        "{err}"
    );

    let mut api = ApiSection::default();
    api.auth.jwks_file = Some("/nonexistent/intake/jwks.json".into());
    let err = Authenticator::from_config(&api).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("api.auth.jwks_file: "), "{text}");
    assert!(text.contains("/nonexistent/intake/jwks.json"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    for (body, problem) in [
        ("not json", "is not JSON"),
        (r#"{"issuer": "x"}"#, "no \"keys\""),
        (
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}]}"#,
            "no RS256 or ES256",
        ),
    ] {
        std::fs::write(&path, body).unwrap();
        api.auth.jwks_file = Some(path.to_str().unwrap().into());
        let text = Authenticator::from_config(&api)
            .await
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("api.auth.jwks_file: "), "{text}");
        assert!(text.contains(problem), "{text}");
    }

    let mut api = ApiSection::default();
    api.auth.hs256_secret_env = Some("INTAKE_AUTH_TEST_NEVER_SET".into());
    let text = Authenticator::from_config(&api)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("api.auth.hs256_secret_env: "), "{text}");
    assert!(
        text.contains("\"INTAKE_AUTH_TEST_NEVER_SET\" is not set"),
        "{text}"
    );
    assert!(text.contains("openssl rand"), "{text}");

    let text = Authenticator::from_config(&with_secret("INTAKE_AUTH_TEST_SHORT"))
        .await
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("api.auth.hs256_secret_env: "), "{text}");
    assert!(text.contains("at least 32"), "{text}");
    assert!(!text.contains("short-secret"), "echoes the secret: {text}");

    let mut api = ApiSection::default();
    api.auth.jwks_url = Some("http://127.0.0.1:9/jwks.json".into());
    let text = Authenticator::from_config(&api)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("api.auth.jwks_url: "), "{text}");

    let api = ApiSection {
        keys: vec![ApiKey {
            name: "k".into(),
            tenant: "acme".into(),
            sha256: "xyz".into(),
        }],
        ..ApiSection::default()
    };
    let text = Authenticator::from_config(&api)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("api.keys[0].sha256: "), "{text}");
}

/// A JWKS endpoint whose document the test swaps, counting how often it is fetched.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

async fn jwks_server(keys: &[&Jwk]) -> JwksServer {
    let doc = Arc::new(Mutex::new(json!({"keys": keys})));
    let hits = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (doc.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (doc, hits) = (served.clone(), counted.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(doc.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer { url, doc, hits }
}

#[tokio::test]
async fn jwks_url_keys_are_refetched_at_most_once_a_minute_for_an_unknown_kid() {
    let keys = &*KEYS;
    let server = jwks_server(&[&keys.rsa_jwk]).await;
    let mut api = ApiSection::default();
    api.auth.jwks_url = Some(server.url.clone());
    let auth = Authenticator::from_config(&api).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    let old = sign(
        Algorithm::RS256,
        &keys.rsa,
        Some("rsa-1"),
        &claims("acme", "alice"),
    );
    auth.authenticate(&bearer(&old)).await.unwrap();

    // The issuer rotates: the new key is published, the old one withdrawn.
    *server.doc.lock().unwrap() = json!({"keys": [&keys.rsa2_jwk]});
    let new = sign(
        Algorithm::RS256,
        &keys.rsa2,
        Some("rsa-2"),
        &claims("acme", "bob"),
    );
    // Fetched moments ago at startup: no refetch yet.
    rejects_token(&auth, &new, "invalid_token").await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    assert_eq!(auth.authenticate(&bearer(&new)).await.unwrap().user, "bob");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // The withdrawn key is gone, and a known kid never causes a fetch.
    rejects_token(&auth, &old, "invalid_token").await;
    auth.authenticate(&bearer(&new)).await.unwrap();
    // Another unknown kid right after the refetch does not fetch again.
    let unknown = sign(
        Algorithm::RS256,
        &keys.rsa2,
        Some("rsa-3"),
        &claims("acme", "bob"),
    );
    rejects_token(&auth, &unknown, "invalid_token").await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);

    // A failed refetch keeps the keys it had.
    *server.doc.lock().unwrap() = json!({"nothing": []});
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    rejects_token(&auth, &unknown, "invalid_token").await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
    auth.authenticate(&bearer(&new)).await.unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
