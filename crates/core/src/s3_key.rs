//! Object keys as S3 notifications carry them: form-URL-encoded, `+` for a space and `%XX`
//! for other bytes. Decoding `+` first and then `%XX` is the only correct order (a literal
//! `+` arrives as `%2B`). Invalid escapes are an error, never a panic or a guess: that is
//! why decoding is written here rather than taken from `percent-encoding`, whose decoder
//! passes a malformed escape through unchanged.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Why a notification key could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodeError {
    #[error(
        "key {key:?} has an invalid %-escape at byte {at}: the event is malformed and cannot name an object"
    )]
    BadEscape { key: String, at: usize },
    #[error(
        "key {key:?} does not decode to UTF-8: the event is malformed and cannot name an object"
    )]
    NotUtf8 { key: String },
}

/// Decode a key from an S3 event notification.
pub fn decode_notification_key(encoded: &str) -> Result<String, KeyDecodeError> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| KeyDecodeError::BadEscape {
                        key: encoded.to_owned(),
                        at: i,
                    })?;
                out.push(byte);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| KeyDecodeError::NotUtf8 {
        key: encoded.to_owned(),
    })
}

/// Encode a key for the `x-amz-copy-source` header (`bucket/key?versionId=`): every byte
/// but unreserved characters and `/` as `%XX`.
pub fn encode_copy_source_key(key: &str) -> String {
    utf8_percent_encode(key, COPY_SOURCE_ESCAPED).to_string()
}

/// Bytes escaped in a copy source: all but RFC 3986's unreserved characters and `/`.
const COPY_SOURCE_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_as_s3_encodes_them() {
        let cases = [
            ("red+flower.jpg", "red flower.jpg"),
            ("a%2Bb.png", "a+b.png"),
            ("100%25+done.txt", "100% done.txt"),
            ("t/u/caf%C3%A9+%E6%97%A5%E6%9C%AC.jpg", "t/u/café 日本.jpg"),
            ("plain/key.bin", "plain/key.bin"),
            ("", ""),
            ("%2b%2B", "++"),
        ];
        for (encoded, decoded) in cases {
            assert_eq!(
                decode_notification_key(encoded).as_deref(),
                Ok(decoded),
                "{encoded}"
            );
        }
    }

    /// Form-encode the way S3 does: unreserved bytes kept, space as `+`, the rest `%XX`.
    fn s3_encode(key: &str) -> String {
        key.bytes()
            .map(|b| match b {
                b' ' => "+".to_owned(),
                b if b.is_ascii_alphanumeric() || b"-_.*/".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn decoding_inverts_s3_encoding(key in "\\PC{0,64}") {
            proptest::prop_assert_eq!(decode_notification_key(&s3_encode(&key)), Ok(key));
        }

        #[test]
        fn never_panics_on_arbitrary_input(raw in "[%+a-zA-Z0-9]{0,32}") {
            let _ = decode_notification_key(&raw);
        }
    }

    #[test]
    fn copy_source_keys_round_trip_through_the_decoder() {
        for key in ["t/u/red flower+1 ü.png", "a%b?c&d=e#f", "plain/key.jpg"] {
            let encoded = encode_copy_source_key(key);
            assert!(
                !encoded.contains(' ') && !encoded.contains('?') && !encoded.contains('+'),
                "{encoded}"
            );
            assert_eq!(decode_notification_key(&encoded).as_deref(), Ok(key));
        }
    }

    #[test]
    fn invalid_escapes_are_errors() {
        for encoded in ["bad%", "bad%2", "bad%zz.jpg", "%G0"] {
            assert!(
                matches!(
                    decode_notification_key(encoded),
                    Err(KeyDecodeError::BadEscape { .. })
                ),
                "{encoded}"
            );
        }
        assert!(matches!(
            decode_notification_key("%FF%FE"),
            Err(KeyDecodeError::NotUtf8 { .. })
        ));
    }
}
