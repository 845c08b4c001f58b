//! Unique names per test, so tests can run in parallel against one LocalStack.

/// A pipeline name no other test uses: `it-` and a UUID v7 in 32 lowercase hex digits (35
/// characters, short enough for every derived bucket and queue name).
///
/// ```
/// let name = intake_testkit::unique_pipeline_name();
/// assert!(name.starts_with("it-") && name.len() == 35);
/// ```
pub fn unique_pipeline_name() -> String {
    format!("it-{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid_prefixes() {
        let a = unique_pipeline_name();
        let b = unique_pipeline_name();
        assert_ne!(a, b);
        assert!(
            a.len() <= 40
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
    }
}
