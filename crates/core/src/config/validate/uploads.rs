//! `[uploads]`: a key template with known placeholders that starts with the tenant and
//! keeps uploads apart by `{uuid}`, and CORS origins that are origins.

use super::suggestion;
use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;

const KEY_PLACEHOLDERS: [&str; 4] = ["tenant", "user", "uuid", "filename"];

pub(super) fn check_uploads(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let template = &config.uploads.key_template;
    let path = "uploads.key_template";
    let mut rest = template.as_str();
    let mut found = Vec::new();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            problems.push(Problem::new(
                path,
                "unclosed `{` in key template",
                "close every placeholder, e.g. {tenant}",
            ));
            return;
        };
        let name = &rest[open + 1..open + close];
        if !KEY_PLACEHOLDERS.contains(&name) {
            problems.push(Problem::new(
                path,
                format!("unknown placeholder {{{name}}}"),
                format!(
                    "{}placeholders are {{tenant}}, {{user}}, {{uuid}}, {{filename}}",
                    suggestion(name, KEY_PLACEHOLDERS)
                ),
            ));
        }
        found.push(name);
        rest = &rest[open + close + 1..];
    }
    if !template.starts_with("{tenant}/") {
        problems.push(Problem::new(
            path,
            format!("\"{template}\" does not start with \"{{tenant}}/\""),
            "tenant isolation relies on the tenant being the first key segment: start the template with {tenant}/",
        ));
    }
    if !found.contains(&"uuid") {
        problems.push(Problem::new(
            path,
            "the key template has no {uuid}: two uploads of the same name would overwrite each other",
            "include {uuid}, e.g. \"{tenant}/{user}/{uuid}-{filename}\"",
        ));
    }
    for (i, origin) in config.uploads.cors_origins.iter().enumerate() {
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        let host = origin.split_once("://").map_or("", |(_, h)| h);
        if !scheme_ok || host.is_empty() || host.contains('/') || origin.contains('*') {
            problems.push(Problem::new(
                format!("uploads.cors_origins[{i}]"),
                format!("\"{origin}\" is not an origin"),
                "write scheme://host[:port] with no path and no wildcard, e.g. \"https://app.example.com\"",
            ));
        }
    }
}
