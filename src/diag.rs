//! Diagnostics: the `file:line:col: message` errors that `studiod check`
//! prints and that config/profile/scene validation collects *all at once*.
//!
//! Validation never stops at the first problem: every stage pushes into a
//! [`Diagnostics`] and the caller decides whether the result is usable.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one file, positioned at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
    }
}

impl Diagnostic {
    /// As `file:line:col: message`, but safe to hand to a client: the file
    /// relative to `base` (the config file's folder), or only its name when
    /// it lies elsewhere, and `base` itself cut out of the message; never
    /// the server's absolute paths.
    pub fn for_client(&self, base: &Path) -> String {
        format!("{}:{}:{}: {}", client_path(&self.file, base), self.line, self.col, client_text(&self.message, base))
    }
}

/// `path` relative to `base`, else its file name only (see [`Diagnostic::for_client`]).
pub fn client_path(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// `text` with every mention of `base`'s absolute path cut down to a path relative to it.
pub fn client_text(text: &str, base: &Path) -> String {
    let base = base.display().to_string();
    if base.is_empty() || base == "/" {
        return text.to_string();
    }
    let prefix = format!("{}/", base.trim_end_matches('/'));
    text.replace(&prefix, "").replace(base.trim_end_matches('/'), ".")
}

/// Every diagnostic for a client, one a line, sorted (see [`Diagnostic::for_client`]).
pub fn for_client(diags: &[Diagnostic], base: &Path) -> String {
    diags.iter().map(|d| d.for_client(base)).collect::<Vec<_>>().join("\n")
}

/// A source file kept in memory so byte spans can be turned into line:col.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> std::io::Result<Source> {
        Ok(Source { path: path.to_path_buf(), text: std::fs::read_to_string(path)? })
    }

    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        Source { path: path.into(), text: text.into() }
    }

    /// 1-based (line, col) of a byte offset; col counts characters, like editors do.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    pub fn diag(&self, span: Option<Range<usize>>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = span.map(|s| self.line_col(s.start)).unwrap_or((1, 1));
        Diagnostic { file: self.path.clone(), line, col, message: message.into() }
    }
}

/// An ordered collection of problems found so far.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Sorted by file, then position, and without exact repeats.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort();
        self.0.dedup();
        self.0
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.clone().sorted() {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_paths_are_relative_to_the_config_folder() {
        let base = Path::new("/etc/studiod");
        let d = Diagnostic {
            file: "/etc/studiod/scenes/x.toml".into(),
            line: 2,
            col: 3,
            message: "see /etc/studiod/device-profiles/cameras/a.toml".into(),
        };
        assert_eq!(d.for_client(base), "scenes/x.toml:2:3: see device-profiles/cameras/a.toml");
        let out = Diagnostic { file: "/usr/share/studiod/p.toml".into(), line: 1, col: 1, message: "bad /etc/studiod".into() };
        assert_eq!(out.for_client(base), "p.toml:1:1: bad .");
    }

    #[test]
    fn line_col_is_one_based_and_counts_chars() {
        let s = Source::new("a.toml", "ab\ncé d\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(s.line_col(6), (2, 3));
    }
}
