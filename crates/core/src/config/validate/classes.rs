//! Content classes (at least one; MIME types well formed and each in one class; sizes S3
//! can hold) and their renditions (renderable types, key-safe unique names, sides and
//! quality in range).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;

/// S3 refuses single objects over 5 TiB.
const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

pub(super) fn check_classes(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    if config.classes.is_empty() {
        problems.push(Problem::new(
            "classes",
            "no content classes: every upload would be rejected",
            "add at least one [classes.<name>] table with `types` and `max_size`",
        ));
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, class) in &config.classes {
        if class.types.is_empty() {
            problems.push(Problem::new(
                format!("classes.{name}.types"),
                "no allowed types",
                "list the detected MIME types this class accepts, e.g. [\"image/jpeg\", \"image/png\"]",
            ));
        }
        for (i, ty) in class.types.iter().enumerate() {
            let path = format!("classes.{name}.types[{i}]");
            let well_formed = ty
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
                && ty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "/.+-".contains(c));
            if !well_formed {
                problems.push(Problem::new(
                    &path,
                    format!("\"{ty}\" is not a MIME type"),
                    "write a lowercase type/subtype, e.g. \"image/jpeg\"",
                ));
            } else if let Some(other) = owner.insert(ty, name) {
                problems.push(Problem::new(
                    &path,
                    format!("type \"{ty}\" is in two classes, {other} and {name}"),
                    "a detected type must map to exactly one class: remove it from one of them",
                ));
            }
        }
        let size = class.max_size.bytes();
        if size == 0 || size > MAX_OBJECT_SIZE {
            problems.push(Problem::new(
                format!("classes.{name}.max_size"),
                format!("max_size {} is out of range", class.max_size),
                "use a size above zero and at most 5TiB (S3's object limit), e.g. \"50MiB\"",
            ));
        }
    }
}

/// Types the thumbnail stage decodes; a class with renditions may hold only these.
pub const RENDERABLE_TYPES: [&str; 6] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
];

/// Largest side of a rendition: a thumbnail stage is not an image converter.
const MAX_RENDITION_SIDE: u32 = 8192;

pub(super) fn check_renditions(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (class_name, class) in &config.classes {
        if class.renditions.is_empty() {
            continue;
        }
        for (i, ty) in class.types.iter().enumerate() {
            if !RENDERABLE_TYPES.contains(&ty.as_str()) {
                problems.push(Problem::new(
                    format!("classes.{class_name}.types[{i}]"),
                    format!("class {class_name} has renditions, but \"{ty}\" cannot be rendered"),
                    format!(
                        "renditions can be made of {}; move \"{ty}\" to a class without renditions",
                        RENDERABLE_TYPES.join(", ")
                    ),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, r) in class.renditions.iter().enumerate() {
            let path = format!("classes.{class_name}.renditions[{i}]");
            let valid_name = !r.name.is_empty()
                && r.name.len() <= 32
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid_name {
                problems.push(Problem::new(
                    format!("{path}.name"),
                    format!("\"{}\" cannot be part of a rendition's key", r.name),
                    "use 1 to 32 lowercase letters, digits, `-` and `_`, e.g. \"thumb\"",
                ));
            } else if !seen.insert(r.name.as_str()) {
                problems.push(Problem::new(
                    format!("{path}.name"),
                    format!(
                        "rendition \"{}\" is defined twice in class {class_name}",
                        r.name
                    ),
                    "give every rendition of a class its own name",
                ));
            }
            for (field, value) in [("width", r.width), ("height", r.height)] {
                if !(1..=MAX_RENDITION_SIDE).contains(&value) {
                    problems.push(Problem::new(
                        format!("{path}.{field}"),
                        format!("{field} {value} is out of range"),
                        format!("use 1 to {MAX_RENDITION_SIDE} pixels"),
                    ));
                }
            }
            if !(1..=100).contains(&r.quality) {
                problems.push(Problem::new(
                    format!("{path}.quality"),
                    format!("quality {} is out of range", r.quality),
                    "use 1 (smallest) to 100 (best); 80 is a good default",
                ));
            }
        }
    }
}
