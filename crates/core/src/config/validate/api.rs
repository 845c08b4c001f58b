//! `[api]`: an address to listen on, presigned URL lifetimes and part sizes S3 accepts,
//! request and filename limits, one JWKS source, claim names, service keys (hex SHA-256,
//! each once) and positive stream and rate limits.

use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;

/// Seven days: the longest SigV4 presigned URLs S3 accepts.
const MAX_PRESIGN_SECS: u32 = 7 * 24 * 3600;

const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub(super) fn check_api(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let api = &config.api;
    if api.bind.parse::<std::net::SocketAddr>().is_err() {
        problems.push(Problem::new(
            "api.bind",
            format!("\"{}\" is not an address to listen on", api.bind),
            "use IP:PORT, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
        ));
    }
    for (field, secs) in [
        ("upload_url_ttl_secs", api.upload_url_ttl_secs),
        ("download_url_ttl_secs", api.download_url_ttl_secs),
    ] {
        if secs == 0 || secs > MAX_PRESIGN_SECS {
            problems.push(Problem::new(
                format!("api.{field}"),
                format!("{secs} s is outside what S3 accepts for a presigned URL"),
                "use 1 to 604800 (7 days), e.g. 900",
            ));
        }
    }
    let part = api.multipart_part_size.0;
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part) {
        problems.push(Problem::new(
            "api.multipart_part_size",
            format!("{} is outside S3's part sizes", api.multipart_part_size),
            "use 5MiB to 5GiB, e.g. \"16MiB\"",
        ));
    }
    if api.multipart_threshold.0 < MIN_PART_SIZE {
        problems.push(Problem::new(
            "api.multipart_threshold",
            format!(
                "{} is below S3's smallest part (5 MiB)",
                api.multipart_threshold
            ),
            "use at least \"5MiB\", e.g. \"64MiB\"",
        ));
    }
    if api.max_filename_bytes < 16 || api.max_filename_bytes > 512 {
        problems.push(Problem::new(
            "api.max_filename_bytes",
            format!("{} bytes", api.max_filename_bytes),
            "use 16 to 512 (S3 keys hold at most 1024 bytes), e.g. 200",
        ));
    }
    if api.body_limit.0 < 1024 {
        problems.push(Problem::new(
            "api.body_limit",
            format!("{} cannot hold a request", api.body_limit),
            "use at least \"1KiB\", e.g. \"256KiB\"",
        ));
    }
    let auth = &api.auth;
    if auth.jwks_file.is_some() && auth.jwks_url.is_some() {
        problems.push(Problem::new(
            "api.auth.jwks_url",
            "both jwks_file and jwks_url are set",
            "keep one of them",
        ));
    }
    if let Some(url) = &auth.jwks_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(Problem::new(
            "api.auth.jwks_url",
            format!("\"{url}\" is not an http(s) URL"),
            "use the issuer's JWKS address, e.g. \"https://login.example.com/.well-known/jwks.json\"",
        ));
    }
    for (field, claim) in [
        ("tenant_claim", &auth.tenant_claim),
        ("user_claim", &auth.user_claim),
        ("roles_claim", &auth.roles_claim),
    ] {
        if claim.is_empty() {
            problems.push(Problem::new(
                format!("api.auth.{field}"),
                "an empty claim name",
                "name the token claim, e.g. \"tenant\"",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in api.keys.iter().enumerate() {
        let path = format!("api.keys[{i}]");
        if key.tenant.is_empty() || key.tenant.contains('/') {
            problems.push(Problem::new(
                format!("{path}.tenant"),
                format!("\"{}\" is not a tenant", key.tenant),
                "use the tenant id the key acts for, without '/'",
            ));
        }
        let hex = key.sha256.len() == 64
            && key
                .sha256
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !hex {
            problems.push(Problem::new(
                format!("{path}.sha256"),
                "not 64 lowercase hex digits",
                "store the key's SHA-256, e.g. the output of `printf %s \"$KEY\" | sha256sum`",
            ));
        } else if !seen.insert(key.sha256.as_str()) {
            problems.push(Problem::new(
                format!("{path}.sha256"),
                "the same key is listed twice",
                "give every service its own key",
            ));
        }
    }
    for (field, value) in [
        ("max_event_streams", api.max_event_streams),
        (
            "max_event_streams_per_tenant",
            api.max_event_streams_per_tenant,
        ),
    ] {
        if value == 0 {
            problems.push(Problem::new(
                format!("api.{field}"),
                "0 would refuse every event stream",
                "use a positive number, e.g. 16 (clients that get 429 too_many_streams poll GET /v1/files/{id} instead)",
            ));
        }
    }
    if api.max_event_streams_per_tenant > api.max_event_streams {
        problems.push(Problem::new(
            "api.max_event_streams_per_tenant",
            format!(
                "{} is more than the whole process allows (api.max_event_streams = {})",
                api.max_event_streams_per_tenant, api.max_event_streams
            ),
            "use at most api.max_event_streams",
        ));
    }
    let limits = &api.rate_limits;
    for (field, value) in [
        ("per_ip_per_minute", limits.per_ip_per_minute),
        ("per_tenant_per_minute", limits.per_tenant_per_minute),
        ("burst", limits.burst),
    ] {
        if value == 0 {
            problems.push(Problem::new(
                format!("api.rate_limits.{field}"),
                "0 would refuse every request",
                "use a positive number, e.g. 600",
            ));
        }
    }
}
