//! Service keys (`X-Api-Key`): the presented key's SHA-256 against every configured hash
//! in constant time, and the optional `X-Intake-User` naming the user a service acts for.

use axum::http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Authenticator, Caller, CallerKind, id_problem, shown};

/// The user of a service key's calls when it names none.
const SERVICE_USER: &str = "service";

impl Authenticator {
    pub(super) fn check_api_key(
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
}
