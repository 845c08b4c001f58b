//! Why a caller is not authenticated ([`AuthError`], with its status and stable code) and
//! why `[api.auth]` cannot be put to work ([`AuthSetupError`]).

use axum::http::StatusCode;

/// Why a request is not authenticated. Messages never contain the token or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send `Authorization: Bearer <token>` or `X-Api-Key: <key>`")]
    MissingCredentials,
    #[error(
        "more than one credential (Authorization and X-Api-Key, or a repeated header): send exactly one"
    )]
    AmbiguousCredentials,
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    #[error("the bearer token has expired: get a fresh one from the identity provider and retry")]
    TokenExpired,
    #[error(
        "the bearer token is not valid yet (its `nbf` is in the future): check the clock of the machine that issued it"
    )]
    TokenNotYetValid,
    #[error(
        "the bearer token is not for this API: request one whose `aud` includes \"{expected}\" (api.auth.audience)"
    )]
    WrongAudience { expected: String },
    #[error(
        "the bearer token comes from another issuer: use one whose `iss` is \"{expected}\" (api.auth.issuer)"
    )]
    WrongIssuer { expected: String },
    #[error(
        "unknown API key: check the X-Api-Key value, or ask an operator to add its SHA-256 to [[api.keys]]"
    )]
    UnknownApiKey,
    #[error(
        "the bearer token's `{claim}` claim ({what}) {problem}; issue {what} ids without '/', '.' or '..' alone, control or invisible format characters, at most 128 bytes"
    )]
    InvalidIdentity {
        claim: String,
        what: &'static str,
        problem: &'static str,
    },
    #[error("invalid X-Intake-User header: {0}")]
    InvalidUserHeader(String),
}

impl AuthError {
    /// The stable code of the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::AmbiguousCredentials => "ambiguous_credentials",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid => "token_not_yet_valid",
            AuthError::WrongAudience { .. } => "wrong_audience",
            AuthError::WrongIssuer { .. } => "wrong_issuer",
            AuthError::UnknownApiKey => "unknown_api_key",
            AuthError::InvalidIdentity { .. } => "invalid_identity",
            AuthError::InvalidUserHeader(_) => "invalid_user_header",
        }
    }

    /// 400 for a request that contradicts itself, 401 (add `WWW-Authenticate: Bearer`) otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::AmbiguousCredentials | AuthError::InvalidUserHeader(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Why `[api.auth]` / `[[api.keys]]` cannot be put to work.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("{path}: {problem}; {fix}")]
    Config {
        path: String,
        problem: String,
        fix: String,
    },
    #[error(
        "api: no way to authenticate callers; set api.auth.hs256_secret_env, api.auth.jwks_file or api.auth.jwks_url, add [[api.keys]], or (development only) set api.dev_tokens = true"
    )]
    NothingConfigured,
}

impl AuthSetupError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthSetupError::Config { .. } => "auth_config",
            AuthSetupError::NothingConfigured => "no_auth_configured",
        }
    }

    pub(super) fn config(
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        AuthSetupError::Config {
            path: path.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
