//! The CLI's layout rules, checked on its sources: a subcommand (a module under
//! `src/commands/`) uses only `crate::common`, the local stack in `crate::devstack` (`up`
//! and `bench` only) and library crates, never another subcommand or `main.rs`; and the
//! ledger's environment variable is read in one place.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("reading a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `crate::…` path a file names (in `use` lines and inline), as its first segment.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let segment: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            found.push(segment);
            rest = after;
        }
    }
    found
}

#[test]
fn subcommands_use_only_common_devstack_and_libraries() {
    let commands = src().join("commands");
    let mut problems = Vec::new();
    for file in sources(&commands) {
        let relative = file.strip_prefix(&commands).unwrap();
        let subcommand = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if subcommand == "mod" {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for segment in crate_paths(&text) {
            let allowed = segment == "common"
                || (segment == "devstack" && (subcommand == "up" || subcommand == "bench"));
            if !allowed {
                problems.push(format!("{}: uses crate::{segment}", relative.display()));
            }
        }
        if text.contains("super::super") {
            problems.push(format!(
                "{}: reaches out with super::super",
                relative.display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layout broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_a_sideways_import() {
    assert_eq!(
        crate_paths("use crate::commands::run::start;\nlet x = crate::common::load();"),
        ["commands", "common"]
    );
    assert!(crate_paths("// crate::commands in a comment").is_empty());
}

#[test]
fn the_ledger_variable_is_read_in_one_file() {
    let readers: Vec<PathBuf> = sources(&src())
        .into_iter()
        .filter(|f| {
            fs::read_to_string(f)
                .unwrap()
                .contains("\"INTAKE_DATABASE_URL\"")
        })
        .collect();
    assert_eq!(readers, [src().join("common/mod.rs")]);
}
