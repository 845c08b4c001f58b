//! Reading `pipeline.toml`: parse, validate, and give every problem its `file:line:column`
//! from the document, beside the field path, what is wrong and how to fix it.

use std::path::Path;

use super::pipeline::PipelineConfig;
use super::problem::{ConfigError, Problem};
use super::validate::validate;

impl PipelineConfig {
    /// Read, parse and validate a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parse and validate config text; `file` is only used in messages.
    pub fn from_toml(text: &str, file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref().to_owned();
        let invalid = |problems| ConfigError::Invalid {
            file: file.clone(),
            problems,
        };
        let config = parse(text).map_err(|p| invalid(vec![p]))?;
        let mut problems = validate(&config);
        if problems.is_empty() {
            return Ok(config);
        }
        let document = toml_edit::Document::parse(text).ok();
        for problem in &mut problems {
            problem.location = document
                .as_ref()
                .and_then(|doc| locate(doc.as_table(), &problem.path))
                .map(|offset| line_col(text, offset));
        }
        Err(invalid(problems))
    }
}

fn parse(text: &str) -> Result<PipelineConfig, Problem> {
    let deserializer = toml::de::Deserializer::parse(text)
        .map_err(|e| from_toml_error(text, String::new(), &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        from_toml_error(text, path, e.inner())
    })
}

fn from_toml_error(text: &str, path: String, err: &toml::de::Error) -> Problem {
    let message = err.message().trim().to_owned();
    let help = if message.starts_with("unknown field") {
        "remove the key or fix its spelling; docs/configuration.md lists every key"
    } else if message.starts_with("missing field") {
        "add the field; docs/configuration.md shows it with an example"
    } else if message.contains("duplicate key") {
        "each key may appear once per table: remove or rename one of them"
    } else {
        "see docs/configuration.md for the expected form of this field"
    };
    Problem {
        location: err.span().map(|span| line_col(text, span.start)),
        path,
        message,
        help: help.into(),
    }
}

/// Byte offset of the value at `path` (or the nearest table that exists on the way).
fn locate(root: &toml_edit::Table, path: &str) -> Option<usize> {
    let mut item: Option<&toml_edit::Item> = None;
    let mut best = root.span().map(|s| s.start);
    for segment in split_path(path) {
        let next = match (item, segment) {
            (None, Segment::Key(k)) => root.get(k),
            (Some(it), Segment::Key(k)) => it.get(k),
            (Some(it), Segment::Index(i)) => it.get(i),
            (None, Segment::Index(_)) => None,
        };
        match next {
            Some(n) => {
                best = span_of(n).or(best);
                item = Some(n);
            }
            None => break,
        }
    }
    best
}

fn span_of(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::Value(v) => v.span().map(|s| s.start),
        toml_edit::Item::Table(t) => t.span().map(|s| s.start),
        toml_edit::Item::ArrayOfTables(a) => a.span().map(|s| s.start),
        toml_edit::Item::None => None,
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let mut segments = Vec::new();
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                segments.push(Segment::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
        segments
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
