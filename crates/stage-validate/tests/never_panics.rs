//! Property: `judge` and `detect_type` return a verdict for any input, never panic, and a
//! pass is always consistent with the rules (non-empty, allowed type, within the limit).

use intake_core::PipelineConfig;
use intake_stage_validate::{HEAD_BYTES, Rules, Upload, Verdict, detect_type, judge};
use proptest::prelude::*;

fn rules() -> Rules {
    let config = PipelineConfig::from_toml(include_str!("../../../pipeline.toml"), "pipeline.toml")
        .expect("the shipped pipeline.toml is valid");
    Rules::from_config(&config)
}

/// Keys shaped like the template (so parsing gets deep) as well as arbitrary strings.
fn keys() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (
            ".{0,8}",
            ".{0,8}",
            "[0-9a-f-]{30,40}",
            ".{0,40}",
            prop::sample::select(vec![
                "", ".png", ".JPG", ".txt", ".pdf", ".exe", ".zip", ".tar.gz", "."
            ])
        )
            .prop_map(|(t, u, id, mid, ext)| format!("{t}/{u}/{id}{mid}{ext}")),
        (".{0,4}", "\\PC{30,40}").prop_map(|(t, rest)| format!("{t}/u/{rest}")),
    ]
}

/// Arbitrary bytes, often behind a real signature so `infer`'s deeper parsers (OLE
/// compound files, zip-based office formats, MP4 boxes) see malformed input.
fn heads() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<&'static [u8]> = vec![
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"GIF89a",
        b"%PDF-",
        b"PK\x03\x04",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\x00\x00\x00\x18ftyp",
        b"\x7fELF",
        b"MZ",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"II*\x00",
    ];
    (
        prop::sample::select(prefixes),
        prop::collection::vec(any::<u8>(), 0..HEAD_BYTES + 16),
    )
        .prop_map(|(prefix, rest)| [prefix, &rest[..]].concat())
}

fn declared() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        prop::sample::select(vec![
            "image/png",
            "text/plain; charset=utf-8",
            "application/octet-stream",
            ";",
            ""
        ])
        .prop_map(|s| Some(s.to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn judge_never_panics(key in keys(), size in prop_oneof![Just(0u64), 1u64..100_000_000, any::<u64>()], declared in declared(), head in heads()) {
        let rules = rules();
        let upload = Upload { key: &key, size, declared_type: declared.as_deref(), head: &head };
        match judge(&rules, &upload) {
            Verdict::Passed { detected_type, class, .. } => {
                prop_assert!(size > 0);
                prop_assert_eq!(Some(detected_type.clone()), detect_type(&head));
                let (_, types, max) = rules.classes.iter().find(|(name, ..)| *name == class).expect("a configured class");
                prop_assert!(types.contains(&detected_type));
                prop_assert!(size <= *max);
            }
            Verdict::Rejected { detail, .. } => prop_assert!(!detail.is_empty()),
        }
    }
}
