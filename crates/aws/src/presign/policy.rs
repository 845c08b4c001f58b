//! The signed POST policy of a browser-style upload (SigV4): the policy document, its base64
//! form (the string to sign), the signature, and the form fields in the order S3 reads them.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use serde_json::json;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What a POST policy grants, and who signs it when.
pub(super) struct PostPolicy<'a> {
    pub(super) bucket: &'a str,
    pub(super) key: &'a str,
    pub(super) content_type: &'a str,
    pub(super) min_size: u64,
    pub(super) max_size: u64,
    pub(super) credentials: &'a Credentials,
    pub(super) region: &'a str,
    pub(super) start: SystemTime,
    pub(super) expires: Duration,
}

/// The form fields of a signed POST policy, in the order they are sent. Every field but the
/// policy and signature is also a condition, as S3 refuses fields the policy does not cover.
pub(super) fn post_fields(p: &PostPolicy<'_>) -> Vec<(String, String)> {
    let start = time::OffsetDateTime::from(p.start);
    let end = time::OffsetDateTime::from(p.start + p.expires);
    let date = format!(
        "{:04}{:02}{:02}",
        start.year(),
        u8::from(start.month()),
        start.day()
    );
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        start.hour(),
        start.minute(),
        start.second()
    );
    let expiration = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        end.year(),
        u8::from(end.month()),
        end.day(),
        end.hour(),
        end.minute(),
        end.second()
    );
    let credential = format!(
        "{}/{date}/{}/s3/aws4_request",
        p.credentials.access_key_id(),
        p.region
    );
    let mut fields = vec![
        ("key".to_owned(), p.key.to_owned()),
        ("Content-Type".to_owned(), p.content_type.to_owned()),
        ("x-amz-algorithm".to_owned(), ALGORITHM.to_owned()),
        ("x-amz-credential".to_owned(), credential.clone()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let mut conditions = vec![
        json!({ "bucket": p.bucket }),
        json!(["eq", "$key", p.key]),
        json!(["eq", "$Content-Type", p.content_type]),
        json!(["content-length-range", p.min_size, p.max_size]),
        json!({ "x-amz-algorithm": ALGORITHM }),
        json!({ "x-amz-credential": credential }),
        json!({ "x-amz-date": amz_date }),
    ];
    if let Some(token) = p.credentials.session_token() {
        fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
        conditions.push(json!({ "x-amz-security-token": token }));
    }
    let policy = json!({ "expiration": expiration, "conditions": conditions });
    // The string to sign is the base64 of the policy exactly as sent in the form.
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let key = aws_sigv4::sign::v4::generate_signing_key(
        p.credentials.secret_access_key(),
        p.start,
        p.region,
        "s3",
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(key, policy.as_bytes());
    fields.push(("policy".to_owned(), policy));
    fields.push(("x-amz-signature".to_owned(), signature));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn policy_of(fields: &[(String, String)]) -> serde_json::Value {
        let policy = &fields.iter().find(|(k, _)| k == "policy").unwrap().1;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(policy)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn policy(credentials: &Credentials) -> Vec<(String, String)> {
        post_fields(&PostPolicy {
            bucket: "b",
            key: "t/u/k.png",
            content_type: "image/png",
            min_size: 1,
            max_size: 100,
            credentials,
            region: "eu-west-1",
            // 2015-12-29T00:00:00Z
            start: UNIX_EPOCH + Duration::from_secs(1_451_347_200),
            expires: Duration::from_secs(36 * 3600),
        })
    }

    #[test]
    fn a_post_policy_binds_bucket_key_type_size_and_signer() {
        let credentials = Credentials::new("AKID", "secret", None, None, "test");
        let fields = policy(&credentials);
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "Content-Type",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "policy",
                "x-amz-signature"
            ]
        );
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(
            field("x-amz-credential"),
            "AKID/20151229/eu-west-1/s3/aws4_request"
        );
        assert_eq!(field("x-amz-date"), "20151229T000000Z");
        assert_eq!(field("x-amz-signature").len(), 64);
        assert_eq!(
            policy_of(&fields),
            json!({
                "expiration": "2015-12-30T12:00:00.000Z",
                "conditions": [
                    {"bucket": "b"},
                    ["eq", "$key", "t/u/k.png"],
                    ["eq", "$Content-Type", "image/png"],
                    ["content-length-range", 1, 100],
                    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                    {"x-amz-credential": "AKID/20151229/eu-west-1/s3/aws4_request"},
                    {"x-amz-date": "20151229T000000Z"},
                ]
            })
        );
    }

    #[test]
    fn a_session_token_is_a_field_and_a_condition() {
        let credentials = Credentials::new("ASIA", "secret", Some("tok".into()), None, "test");
        let fields = policy(&credentials);
        assert!(fields.contains(&("x-amz-security-token".into(), "tok".into())));
        let conditions = policy_of(&fields)["conditions"].clone();
        assert!(
            conditions
                .as_array()
                .unwrap()
                .contains(&json!({"x-amz-security-token": "tok"})),
            "{conditions}"
        );
    }
}
