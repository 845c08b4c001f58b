//! Reading `pipeline.toml`: parse, validate, and turn every problem into a message with
//! `file:line:column`, the field path, what is wrong and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::PipelineConfig;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path, e.g. `stages.scan.on.clean` or `lifecycle.transitions[0].after_days`.
    pub path: String,
    /// 1-based line and column of the field (or of its table when the field is missing).
    pub location: Option<(usize, usize)>,
    pub message: String,
    pub help: String,
}

impl Problem {
    pub(crate) fn new(
        path: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            location: None,
            message: message.into(),
            help: help.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline config {}: {source}; check the path, or pass --config FILE", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(file, problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems found, empty for a read error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(file: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.display_in(file).to_string());
    }
    out
}

/// A problem shown against its file: `pipeline.toml:12:7: stages.scan.on.clean: ...`.
pub struct ProblemInFile<'a> {
    problem: &'a Problem,
    file: &'a Path,
}

impl Problem {
    pub fn display_in<'a>(&'a self, file: &'a Path) -> ProblemInFile<'a> {
        ProblemInFile {
            problem: self,
            file,
        }
    }
}

impl fmt::Display for ProblemInFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.problem;
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = p.location {
            write!(f, ":{line}:{col}")?;
        }
        if !p.path.is_empty() {
            write!(f, ": {}", p.path)?;
        }
        write!(f, ": {}", p.message)?;
        if !p.help.is_empty() {
            write!(f, "\n  help: {}", p.help)?;
        }
        Ok(())
    }
}

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
        let mut problems = super::validate::validate(&config);
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
