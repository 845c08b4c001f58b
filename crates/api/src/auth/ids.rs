//! Which strings may be a tenant or user id: they become S3 key segments, URL path
//! segments and log fields, so path navigation, control characters and invisible format
//! characters are refused.

/// Tenant and user become S3 key segments next to a filename of up to 512 bytes; S3 keys
/// hold 1024.
const MAX_ID_BYTES: usize = 128;

/// Why `value` cannot be a tenant or user id, or `None` when it can. Ids become S3 key
/// segments, URL path segments and log fields: `.` and `..` are path navigation in every
/// URL and file API (a client's `GET /t/../x` is not what it meant), and control and
/// Unicode format characters (zero-width, bidi overrides, BOM: category Cf) make two ids
/// that differ look identical in logs and consoles (`tenant-a\u{200b}`).
pub fn id_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value == "." || value == ".." {
        Some("is '.' or '..', which URLs and paths treat as navigation")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else if value.chars().any(is_format_char) {
        Some(
            "contains an invisible Unicode format character (zero-width, bidi control or byte order mark)",
        )
    } else if value.len() > MAX_ID_BYTES {
        Some("is longer than 128 bytes")
    } else {
        None
    }
}

/// Unicode general category Cf (format characters), per the Unicode Character Database
/// (`DerivedGeneralCategory.txt`, Unicode 16): invisible characters that change how text
/// around them is shown or joined.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}
