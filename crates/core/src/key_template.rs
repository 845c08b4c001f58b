//! The upload key template (`{tenant}/{user}/{uuid}-{filename}`): filling it for a new
//! upload (the API), with the user's filename made safe for a key, and reading a key back
//! into its parts, so stages know the tenant and the original filename, and keys that do
//! not match are rejected as `bad_key`.

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

/// The key of a new upload: `template` with its placeholders filled. The caller passes a
/// sanitised filename ([`sanitize_filename`]) and tenant and user ids without `/`.
pub fn fill_key(template: &str, tenant: &str, user: &str, uuid: &str, filename: &str) -> String {
    template
        .replace("{tenant}", tenant)
        .replace("{user}", user)
        .replace("{uuid}", uuid)
        .replace("{filename}", filename)
}

/// The printable characters [`sanitize_filename`] replaces with `_`: quotes, shell
/// metacharacters (`$ ( ) ; & ! | < > * ? [ ] ~ # %` and the backtick), and what S3 or
/// URLs treat specially (`: { } ^`). docs/api.md lists the same set.
pub const UNSAFE_FILENAME_CHARS: &str = "\"'`$();&!|<>*?[]~#%:{}^";

/// Why a filename cannot be used, even after sanitising.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilenameError {
    #[error("the filename is empty once path parts, control characters and dots are removed")]
    Empty,
}

/// A user's filename made safe to put in a key and a `Content-Disposition`: only the last
/// path segment is kept (`../../etc/passwd` → `passwd`, `C:\x\a.png` → `a.png`); control
/// characters, invisible format characters (zero-width, bidi controls, BOM), quotes and
/// the characters S3 or shells treat specially ([`UNSAFE_FILENAME_CHARS`]) become `_`;
/// spaces stay; leading dots and spaces go (no hidden files, no `..`); runs of `_`
/// collapse; a name longer than `max_bytes` is shortened in the middle of its stem,
/// keeping the extension, on a character boundary.
pub fn sanitize_filename(raw: &str, max_bytes: usize) -> Result<String, FilenameError> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(last.len());
    for c in last.chars() {
        let safe = !c.is_control()
            && !UNSAFE_FILENAME_CHARS.contains(c)
            && !matches!(
                c,
                '\u{feff}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            );
        let c = if safe { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out
        .trim_start_matches(['.', ' ', '_'])
        .trim_end_matches(['.', ' '])
        .to_owned();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '_') {
        return Err(FilenameError::Empty);
    }
    Ok(shorten(&trimmed, max_bytes.max(8)))
}

/// `name` cut to at most `max_bytes`, keeping a short extension when at least one
/// character of the stem still fits beside it (a name must never become its extension,
/// which would start with a dot).
fn shorten(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_owned();
    }
    let floor = |s: &str, at: usize| {
        let mut cut = at.min(s.len());
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        cut
    };
    if let Some(dot) = name.rfind('.')
        && dot > 0
        && name.len() - dot <= 16
    {
        let (stem, ext) = name.split_at(dot);
        let cut = floor(stem, max_bytes.saturating_sub(ext.len()));
        if cut > 0 {
            return format!("{}{ext}", &stem[..cut]);
        }
    }
    // The first character is not a dot (the caller trimmed those) and is at most 4 bytes,
    // so with max_bytes >= 8 this keeps at least one character.
    name[..floor(name, max_bytes)].to_owned()
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
    fn filled_keys_parse_back_to_their_parts() {
        let name = sanitize_filename("../../Red Flower (2).PNG", 200).unwrap();
        let key = fill_key(TEMPLATE, "acme", "u-1", UUID, &name);
        assert_eq!(key, format!("acme/u-1/{UUID}-Red Flower _2_.PNG"));
        let parts = parse_key(TEMPLATE, &key).unwrap();
        assert_eq!(parts.filename.as_deref(), Some("Red Flower _2_.PNG"));
    }

    #[test]
    fn sanitising_keeps_the_last_segment_and_drops_what_is_unsafe() {
        let clean = |raw| sanitize_filename(raw, 200).unwrap();
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("C:\\Users\\me\\photo.jpg"), "photo.jpg");
        assert_eq!(clean("..hidden"), "hidden");
        assert_eq!(clean("a\u{0}b\nc\u{7f}.txt"), "a_b_c_.txt");
        assert_eq!(clean("invoice\u{202e}gpj.exe"), "invoice_gpj.exe");
        assert_eq!(clean("what?*<>|.pdf"), "what_.pdf");
        assert_eq!(clean("  spaced name.txt  "), "spaced name.txt");
        assert_eq!(clean("ünïcødé 写真.jpg"), "ünïcødé 写真.jpg");
        for empty in ["", "..", "../..", "/", "\u{0}\u{1}", " . ", "dir/"] {
            assert_eq!(
                sanitize_filename(empty, 200),
                Err(FilenameError::Empty),
                "{empty:?}"
            );
        }
    }

    /// What docs/api.md promises, character by character: every listed character becomes
    /// `_` (runs collapse), and ordinary punctuation, spaces and letters stay.
    #[test]
    fn every_unsafe_character_becomes_an_underscore() {
        let cases: &[(&str, &str)] = &[
            ("invoice $(rm -rf ~).pdf", "invoice _rm -rf _.pdf"),
            ("a;b&c.txt", "a_b_c.txt"),
            ("hello!.txt", "hello_.txt"),
            ("`whoami`.sh", "whoami_.sh"),
            ("x|y<z>.txt", "x_y_z_.txt"),
            ("a*b?[c].txt", "a_b_c_.txt"),
            ("a~#%.txt", "a_.txt"),
            ("c:{d}^e.txt", "c_d_e.txt"),
            ("say \"hi\" 'there'.txt", "say _hi_ _there_.txt"),
            ("Red Flower (2).PNG", "Red Flower _2_.PNG"),
            ("tab\there.txt", "tab_here.txt"),
            ("zero\u{200b}width\u{feff}.txt", "zero_width_.txt"),
            ("a-b_c.d+e,f=g@h.txt", "a-b_c.d+e,f=g@h.txt"),
            ("spaced name.txt", "spaced name.txt"),
            ("写真 ü.jpg", "写真 ü.jpg"),
        ];
        for &(raw, want) in cases {
            assert_eq!(sanitize_filename(raw, 200).as_deref(), Ok(want), "{raw:?}");
        }
        for c in UNSAFE_FILENAME_CHARS.chars() {
            assert_eq!(
                sanitize_filename(&format!("a{c}b.txt"), 200).as_deref(),
                Ok("a_b.txt"),
                "{c:?}"
            );
        }
    }

    #[test]
    fn long_names_are_shortened_keeping_the_extension() {
        let long = format!("{}.jpeg", "é".repeat(300));
        let short = sanitize_filename(&long, 200).unwrap();
        assert!(short.len() <= 200, "{}", short.len());
        assert!(short.ends_with(".jpeg"));
        let no_ext = "x".repeat(500);
        assert_eq!(sanitize_filename(&no_ext, 100).unwrap().len(), 100);
    }

    proptest::proptest! {
        /// Whatever a client sends, the result is a single safe key segment within the limit.
        #[test]
        fn sanitised_names_are_always_safe(raw in "\\PC{0,300}", max in 8usize..300) {
            if let Ok(name) = sanitize_filename(&raw, max) {
                proptest::prop_assert!(name.len() <= max);
                proptest::prop_assert!(!name.contains('/') && !name.contains('\\'));
                proptest::prop_assert!(!name.starts_with('.'));
                proptest::prop_assert!(!name.chars().any(char::is_control));
                let key = fill_key(TEMPLATE, "t", "u", UUID, &name);
                proptest::prop_assert_eq!(
                    parse_key(TEMPLATE, &key).and_then(|p| p.filename),
                    Some(name)
                );
            }
        }
    }

    #[test]
    fn other_templates_work_too() {
        let parts = parse_key("{tenant}/{uuid}/{filename}", &format!("t/{UUID}/a/b.txt"));
        assert_eq!(parts.and_then(|p| p.filename), Some("a/b.txt".to_owned()));
    }
}
