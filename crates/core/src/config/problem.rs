//! What is wrong with a config: [`Problem`] (a field path, its location, what is wrong and
//! how to fix it), [`ConfigError`] (a file that cannot be read, or its problems) and how a
//! problem is shown against its file. Validation produces problems; loading locates them.

use std::fmt;
use std::path::{Path, PathBuf};

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
