//! The upload key template (`{tenant}/{user}/{uuid}-{filename}`): reading a key back into
//! its parts, so stages know the tenant and the original filename, and keys that do not
//! match are rejected as `bad_key`.

/// The parts of a key made from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    pub tenant: String,
    pub user: Option<String>,
    pub uuid: Option<String>,
    pub filename: Option<String>,
}

/// Match `key` against `template`. Placeholders match one or more characters other than
/// `/`, except `{filename}`, which takes the rest of its segment; literal text must match.
pub fn parse_key(template: &str, key: &str) -> Option<KeyParts> {
    let mut parts = KeyParts {
        tenant: String::new(),
        user: None,
        uuid: None,
        filename: None,
    };
    let mut rest_template = template;
    let mut rest_key = key;
    while !rest_template.is_empty() {
        if let Some(after_open) = rest_template.strip_prefix('{') {
            let close = after_open.find('}')?;
            let name = &after_open[..close];
            rest_template = &after_open[close + 1..];
            // The value runs to the next literal text of the template (or the end).
            let literal_end = rest_template.find('{').unwrap_or(rest_template.len());
            let literal = &rest_template[..literal_end];
            let segment_end = rest_key.find('/').unwrap_or(rest_key.len());
            let value_len = if name == "uuid" {
                // A UUID is 36 characters; match it exactly so '-' inside it is not the separator.
                if rest_key.get(..36).is_some_and(uuid_like) {
                    36
                } else {
                    return None;
                }
            } else if literal.is_empty() {
                if name == "filename" {
                    rest_key.len()
                } else {
                    segment_end
                }
            } else {
                let at = rest_key.find(literal)?;
                if name != "filename" && at > segment_end {
                    return None;
                }
                at
            };
            let value = &rest_key[..value_len];
            if value.is_empty() || (name != "filename" && value.contains('/')) {
                return None;
            }
            match name {
                "tenant" => parts.tenant = value.to_owned(),
                "user" => parts.user = Some(value.to_owned()),
                "uuid" => parts.uuid = Some(value.to_owned()),
                "filename" => parts.filename = Some(value.to_owned()),
                _ => return None,
            }
            rest_key = &rest_key[value_len..];
        } else {
            let literal_end = rest_template.find('{').unwrap_or(rest_template.len());
            let literal = &rest_template[..literal_end];
            rest_key = rest_key.strip_prefix(literal)?;
            rest_template = &rest_template[literal_end..];
        }
    }
    (rest_key.is_empty() && !parts.tenant.is_empty()).then_some(parts)
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "{tenant}/{user}/{uuid}-{filename}";
    const UUID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn reads_keys_made_from_the_template() {
        let key = format!("acme/u-1/{UUID}-red flower-2.png");
        let parts = parse_key(TEMPLATE, &key).expect("matches");
        assert_eq!(parts.tenant, "acme");
        assert_eq!(parts.user.as_deref(), Some("u-1"));
        assert_eq!(parts.uuid.as_deref(), Some(UUID));
        assert_eq!(parts.filename.as_deref(), Some("red flower-2.png"));
    }

    #[test]
    fn refuses_keys_that_do_not_match() {
        for key in [
            "acme/u-1/photo.png".to_owned(),
            format!("acme/{UUID}-photo.png"),
            format!("/u-1/{UUID}-photo.png"),
            format!("acme/u-1/{UUID}-"),
            "no-slashes".to_owned(),
            "acme/u-1/not-a-uuid-at-all-but-36-chars-long-x-photo.png".to_owned(),
        ] {
            assert_eq!(parse_key(TEMPLATE, &key), None, "{key}");
        }
    }

    proptest::proptest! {
        /// Keys are user input: no key, however odd its characters, may panic the parser.
        #[test]
        fn never_panics_on_any_key(key in "\\PC{0,80}", prefix in "[a-f0-9-]{0,40}") {
            let _ = parse_key(TEMPLATE, &key);
            let _ = parse_key(TEMPLATE, &format!("t/u/{prefix}{key}"));
        }
    }

    #[test]
    fn a_multibyte_character_at_the_uuid_boundary_is_no_match_not_a_panic() {
        let key = format!("t/u/{}é-x.png", "a".repeat(35));
        assert_eq!(parse_key(TEMPLATE, &key), None);
    }

    #[test]
    fn other_templates_work_too() {
        let parts = parse_key("{tenant}/{uuid}/{filename}", &format!("t/{UUID}/a/b.txt"));
        assert_eq!(parts.and_then(|p| p.filename), Some("a/b.txt".to_owned()));
    }
}
