//! Live compiler feedback: the [`LanguageFeedback`] trait the language-server side implements,
//! the [`FeedbackReport`] it returns, and how the agent turns two reports into "what this edit
//! changed" ([`DiagnosticsDelta`]).
//!
//! A server that has not answered is never read as "no problems": every report says, per file
//! and server, whether the server answered, is still pending, or has failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::protocol::DiagnosticLine;

/// What the agent needs from the language servers. The headless and editor sessions implement
/// it over the proxy; tests script it; [`NoFeedback`] stands in when there are no servers.
pub trait LanguageFeedback: Send + Sync {
    /// The current text of a file as the language servers see it (an open, possibly unsaved
    /// buffer), if any.
    fn buffer_text(&self, path: &Path) -> Option<String>;

    /// Tells the servers a file changed on disk to `text` (didOpen/didChange).
    fn file_changed<'a>(&'a self, path: &'a Path, text: &'a str) -> BoxFuture<'a, ()>;

    /// Waits, until `deadline` at the latest, for diagnostics of `paths` that are fresh for
    /// their current text, and returns them with per server answered / pending / failed.
    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport>;

    /// Every diagnostic the servers have published so far, without waiting (for the workspace
    /// summary and the `diagnostics` tool without paths).
    fn known_diagnostics(&self) -> FeedbackReport;

    /// An LSP request (definition, references, hover, symbols …) to the servers of the
    /// document named in `params`, answered with the raw result.
    fn request<'a>(
        &'a self,
        method: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>>;

    /// Writes an agent edit's new text, after its snapshot was taken (blocking; called off
    /// the async threads). The default writes the file atomically to disk; a front end that
    /// owns the buffers (ACP's `fs/write_text_file`) writes through them instead.
    fn write_file(&self, path: &Path, text: &str) -> std::io::Result<()> {
        super::session::write_atomically(path, text)
    }

    /// The edits call `call` will make, in full, once computed and before they are asked
    /// about or written: a front end that renders its own diffs (ACP's permission request and
    /// tool call) keeps them. By default dropped: the events carry unified diffs.
    fn edits_prepared(&self, _call: &str, _edits: &[super::tools::FileEdit]) {}
}

/// Feedback for runs without language servers: no buffers, no diagnostics, no servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFeedback;

impl LanguageFeedback for NoFeedback {
    fn buffer_text(&self, _path: &Path) -> Option<String> {
        None
    }

    fn file_changed<'a>(&'a self, _path: &'a Path, _text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        _deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        let report = FeedbackReport {
            files: paths
                .iter()
                .map(|path| FileDiagnostics {
                    path: path.clone(),
                    diagnostics: Vec::new(),
                    servers: Vec::new(),
                })
                .collect(),
        };
        Box::pin(async move { report })
    }

    fn known_diagnostics(&self) -> FeedbackReport {
        FeedbackReport::default()
    }

    fn request<'a>(
        &'a self,
        method: &'a str,
        _params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move { Err(format!("no language server is running to answer {method}")) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Information,
    Hint,
}

impl Severity {
    /// From the LSP number (1 error … 4 hint); a missing severity counts as an error, as
    /// editors show it.
    pub fn from_lsp(number: Option<u8>) -> Severity {
        match number {
            Some(2) => Severity::Warning,
            Some(3) => Severity::Information,
            Some(4) => Severity::Hint,
            _ => Severity::Error,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "info",
            Severity::Hint => "hint",
        }
    }
}

/// One diagnostic, reduced to what the model reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeedbackDiagnostic {
    pub severity: Severity,
    /// 1-based.
    pub line: u32,
    pub message: String,
    pub source: Option<String>,
}

/// Where one server stands for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Answered,
    Pending,
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiagnostics {
    /// Absolute.
    pub path: PathBuf,
    pub diagnostics: Vec<FeedbackDiagnostic>,
    /// Each server responsible for the file, by name. Empty: no server covers the file.
    pub servers: Vec<(String, ServerState)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackReport {
    pub files: Vec<FileDiagnostics>,
}

impl FeedbackReport {
    /// Server names that are pending for any file, once each, sorted.
    pub fn pending_servers(&self) -> Vec<String> {
        self.servers_where(|state| matches!(state, ServerState::Pending))
    }

    /// Server names that failed for any file, once each, sorted.
    pub fn failed_servers(&self) -> Vec<String> {
        self.servers_where(|state| matches!(state, ServerState::Failed { .. }))
    }

    fn servers_where(&self, wanted: impl Fn(&ServerState) -> bool) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .flat_map(|file| &file.servers)
            .filter(|(_, state)| wanted(state))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// What an edit changed in the diagnostics of the files it touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagnosticsDelta {
    pub introduced: Vec<DiagnosticLine>,
    pub fixed: Vec<DiagnosticLine>,
    /// Errors left in the touched files after the edit.
    pub remaining_errors: usize,
    pub pending_servers: Vec<String>,
    pub failed_servers: Vec<String>,
    /// Whether any server covers the touched files at all.
    pub covered: bool,
}

/// How many introduced warnings (and hints) are listed; errors are always listed, up to
/// [`MAX_LISTED`].
const WARNING_BUDGET: usize = 5;
const MAX_LISTED: usize = 20;

impl DiagnosticsDelta {
    /// Compares per file, by (severity, message, source) as a multiset: line numbers move with
    /// every edit above a diagnostic, so they do not identify it.
    pub fn between(
        before: &BTreeMap<PathBuf, Vec<FeedbackDiagnostic>>,
        after: &FeedbackReport,
        relative: impl Fn(&Path) -> String,
    ) -> DiagnosticsDelta {
        let mut delta = DiagnosticsDelta {
            pending_servers: after.pending_servers(),
            failed_servers: after.failed_servers(),
            covered: after.files.iter().any(|file| !file.servers.is_empty()),
            ..DiagnosticsDelta::default()
        };
        for file in &after.files {
            let old = before.get(&file.path).map(Vec::as_slice).unwrap_or(&[]);
            let path = relative(&file.path);
            let line = |d: &FeedbackDiagnostic| DiagnosticLine {
                path: path.clone(),
                line: d.line,
                severity: d.severity,
                message: d.message.clone(),
                source: d.source.clone(),
            };
            delta
                .introduced
                .extend(difference(&file.diagnostics, old).map(line));
            delta
                .fixed
                .extend(difference(old, &file.diagnostics).map(line));
            delta.remaining_errors += file
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
        }
        delta.introduced.sort_by_key(|d| d.severity);
        delta.fixed.sort_by_key(|d| d.severity);
        delta
    }

    /// The text appended to a mutating tool's result.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.covered && self.pending_servers.is_empty() && self.failed_servers.is_empty() {
            return "Diagnostics: no language server covers these files.".to_owned();
        }
        let errors = |list: &[DiagnosticLine]| {
            list.iter()
                .filter(|d| d.severity == Severity::Error)
                .count()
        };
        let _ = writeln!(
            out,
            "Diagnostics: {} error(s) introduced, {} fixed, {} error(s) remain in the touched files.",
            errors(&self.introduced),
            errors(&self.fixed),
            self.remaining_errors
        );
        let mut warnings_listed = 0;
        for (index, d) in self.introduced.iter().enumerate() {
            if index >= MAX_LISTED {
                let _ = writeln!(out, "  … {} more", self.introduced.len() - index);
                break;
            }
            if d.severity != Severity::Error {
                if warnings_listed == WARNING_BUDGET {
                    continue;
                }
                warnings_listed += 1;
            }
            let _ = writeln!(out, "+ {}", render_line(d));
        }
        for d in self
            .fixed
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .take(MAX_LISTED)
        {
            let _ = writeln!(out, "- {}", render_line(d));
        }
        if !self.pending_servers.is_empty() {
            let _ = writeln!(
                out,
                "Not yet answered (results incomplete, not clean): {}",
                self.pending_servers.join(", ")
            );
        }
        if !self.failed_servers.is_empty() {
            let _ = writeln!(out, "Failed servers: {}", self.failed_servers.join(", "));
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// `path:line: severity: message [source]`
pub fn render_line(d: &DiagnosticLine) -> String {
    match &d.source {
        Some(source) => format!(
            "{}:{}: {}: {} [{source}]",
            d.path,
            d.line,
            d.severity.word(),
            d.message
        ),
        None => format!(
            "{}:{}: {}: {}",
            d.path,
            d.line,
            d.severity.word(),
            d.message
        ),
    }
}

/// The diagnostics of `a` that `b` does not have, counting duplicates.
fn difference<'a>(
    a: &'a [FeedbackDiagnostic],
    b: &'a [FeedbackDiagnostic],
) -> impl Iterator<Item = &'a FeedbackDiagnostic> {
    let mut available: BTreeMap<(Severity, &str, Option<&str>), usize> = BTreeMap::new();
    for d in b {
        *available
            .entry((d.severity, d.message.as_str(), d.source.as_deref()))
            .or_default() += 1;
    }
    a.iter().filter(move |d| {
        match available.get_mut(&(d.severity, d.message.as_str(), d.source.as_deref())) {
            Some(count) if *count > 0 => {
                *count -= 1;
                false
            }
            _ => true,
        }
    })
}

/// A compact summary of a report (the workspace summary in the context, the `diagnostics`
/// tool): per file its errors and warnings, errors listed first, capped at `max_lines`.
pub fn render_report(
    report: &FeedbackReport,
    relative: impl Fn(&Path) -> String,
    max_lines: usize,
) -> String {
    let mut lines = Vec::new();
    let mut total = 0;
    for file in &report.files {
        let path = relative(&file.path);
        let mut diagnostics: Vec<&FeedbackDiagnostic> = file.diagnostics.iter().collect();
        diagnostics.sort_by_key(|d| (d.severity, d.line));
        for d in diagnostics {
            if d.severity > Severity::Warning {
                continue;
            }
            total += 1;
            if lines.len() < max_lines {
                lines.push(render_line(&DiagnosticLine {
                    path: path.clone(),
                    line: d.line,
                    severity: d.severity,
                    message: d.message.clone(),
                    source: d.source.clone(),
                }));
            }
        }
    }
    let mut out = if total == 0 {
        "No errors or warnings reported.".to_owned()
    } else {
        let mut out = lines.join("\n");
        if total > lines.len() {
            let _ = write!(out, "\n… {} more", total - lines.len());
        }
        out
    };
    let pending = report.pending_servers();
    if !pending.is_empty() {
        let _ = write!(
            out,
            "\nNot yet answered (results incomplete): {}",
            pending.join(", ")
        );
    }
    let failed = report.failed_servers();
    if !failed.is_empty() {
        let _ = write!(out, "\nFailed servers: {}", failed.join(", "));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn diag(severity: Severity, line: u32, message: &str) -> FeedbackDiagnostic {
        FeedbackDiagnostic {
            severity,
            line,
            message: message.into(),
            source: Some("cc".into()),
        }
    }

    fn report(
        path: &str,
        diagnostics: Vec<FeedbackDiagnostic>,
        state: ServerState,
    ) -> FeedbackReport {
        FeedbackReport {
            files: vec![FileDiagnostics {
                path: PathBuf::from(path),
                diagnostics,
                servers: vec![("clangd".into(), state)],
            }],
        }
    }

    fn relative(path: &Path) -> String {
        path.display().to_string()
    }

    #[test]
    fn moved_diagnostics_are_neither_introduced_nor_fixed() {
        let before = BTreeMap::from([(
            PathBuf::from("/w/a.c"),
            vec![
                diag(Severity::Error, 3, "old"),
                diag(Severity::Error, 9, "gone"),
            ],
        )]);
        let after = report(
            "/w/a.c",
            vec![
                diag(Severity::Error, 5, "old"),
                diag(Severity::Error, 1, "new"),
            ],
            ServerState::Answered,
        );
        let delta = DiagnosticsDelta::between(&before, &after, relative);
        assert_eq!(delta.introduced.len(), 1);
        assert_eq!(delta.introduced[0].message, "new");
        assert_eq!(delta.fixed.len(), 1);
        assert_eq!(delta.fixed[0].message, "gone");
        assert_eq!(delta.remaining_errors, 2);
        let text = delta.render();
        assert!(
            text.contains("1 error(s) introduced, 1 fixed, 2 error(s) remain"),
            "{text}"
        );
        assert!(text.contains("+ /w/a.c:1: error: new [cc]"), "{text}");
        assert!(text.contains("- /w/a.c:9: error: gone [cc]"), "{text}");
    }

    #[test]
    fn a_pending_server_is_never_reported_clean() {
        let after = report("/w/a.c", Vec::new(), ServerState::Pending);
        let delta = DiagnosticsDelta::between(&BTreeMap::new(), &after, relative);
        assert_eq!(delta.pending_servers, vec!["clangd".to_owned()]);
        let text = delta.render();
        assert!(
            text.contains("Not yet answered (results incomplete, not clean): clangd"),
            "{text}"
        );
        let summary = render_report(&after, relative, 10);
        assert!(summary.contains("Not yet answered"), "{summary}");
    }

    #[test]
    fn warnings_are_listed_within_a_budget_and_uncovered_files_say_so() {
        let many: Vec<_> = (1..=9)
            .map(|n| diag(Severity::Warning, n, &format!("w{n}")))
            .collect();
        let after = report("/w/a.c", many, ServerState::Answered);
        let text = DiagnosticsDelta::between(&BTreeMap::new(), &after, relative).render();
        assert_eq!(text.matches("warning").count(), WARNING_BUDGET, "{text}");
        let uncovered = FeedbackReport {
            files: vec![FileDiagnostics {
                path: PathBuf::from("/w/notes.txt"),
                diagnostics: Vec::new(),
                servers: Vec::new(),
            }],
        };
        let text = DiagnosticsDelta::between(&BTreeMap::new(), &uncovered, relative).render();
        assert_eq!(text, "Diagnostics: no language server covers these files.");
    }
}
