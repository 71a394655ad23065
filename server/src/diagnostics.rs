//! Diagnostics per (server, uri), versioned; the merged view; waiting for fresh results.
//!
//! Every child server's diagnostics for a document are kept apart: a push
//! (`textDocument/publishDiagnostics`) or a pull result (`textDocument/diagnostic`) from one
//! server replaces that server's set for that uri and nothing else. The editor and the
//! agent see one merged view per uri. The agent can wait for diagnostics that are fresh for
//! a document version, and the answer says, per server, whether it answered, is still
//! pending, or has failed: "no answer yet" is never reported as "no problems".
//!
//! [`DiagnosticStore`] is a cloneable handle: the proxy's main loop publishes, agent tasks
//! wait. Waiters are woken through a `tokio::sync::watch` channel that counts changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Deserialize as _;
use serde_json::Value;
use tokio::sync::watch;

use crate::documents::Range;
use crate::server_id::ServerId;

#[derive(Debug, thiserror::Error)]
pub enum DiagnosticsError {
    #[error("diagnostic is not a JSON object")]
    NotAnObject,
    #[error("diagnostic has no {field}")]
    MissingField { field: &'static str },
    #[error("diagnostic field {field} is malformed: {reason}")]
    MalformedField { field: &'static str, reason: String },
}

/// One diagnostic as a server sent it. `raw` is the JSON the server sent, untouched, and is
/// what the editor receives; the other fields are read from it for tack's own use.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub raw: Value,
    pub range: Range,
    /// 1 error, 2 warning, 3 information, 4 hint; `None` when the server left it out.
    pub severity: Option<u8>,
    pub message: String,
    pub source: Option<String>,
    /// The code as text, whether the server sent it as a number or a string.
    pub code: Option<String>,
}

impl Diagnostic {
    pub fn from_raw(raw: Value) -> Result<Self, DiagnosticsError> {
        let object = raw.as_object().ok_or(DiagnosticsError::NotAnObject)?;
        let range_value = object
            .get("range")
            .ok_or(DiagnosticsError::MissingField { field: "range" })?;
        let range =
            Range::deserialize(range_value).map_err(|error| DiagnosticsError::MalformedField {
                field: "range",
                reason: error.to_string(),
            })?;
        let message = match object.get("message") {
            Some(Value::String(message)) => message.clone(),
            Some(_) => return Err(malformed("message", "not a string")),
            None => return Err(DiagnosticsError::MissingField { field: "message" }),
        };
        let severity = match object.get("severity") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|number| u8::try_from(number).ok())
                    .ok_or_else(|| malformed("severity", "not a small unsigned integer"))?,
            ),
        };
        let source = match object.get("source") {
            None | Some(Value::Null) => None,
            Some(Value::String(source)) => Some(source.clone()),
            Some(_) => return Err(malformed("source", "not a string")),
        };
        let code = match object.get("code") {
            None | Some(Value::Null) => None,
            Some(Value::String(code)) => Some(code.clone()),
            Some(Value::Number(code)) => Some(code.to_string()),
            Some(_) => return Err(malformed("code", "neither a string nor a number")),
        };
        Ok(Self {
            raw,
            range,
            severity,
            message,
            source,
            code,
        })
    }
}

fn malformed(field: &'static str, reason: &str) -> DiagnosticsError {
    DiagnosticsError::MalformedField {
        field,
        reason: reason.to_owned(),
    }
}

/// A point in the sequence of publishes. Every publish gets the next number, so a set whose
/// number is at or after a mark was published after the mark was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishMark(u64);

/// What a wait for fresh diagnostics asks about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessWant {
    pub uri: String,
    /// A set published for this version or a later one is fresh.
    pub min_version: i32,
    /// The servers responsible for the document; each must answer.
    pub servers: Vec<ServerId>,
}

/// Where one server stands for one document at the end of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    /// The server published a fresh set: for `version` (at least the wanted one), or
    /// without a version after the wait began.
    Answered { version: Option<i32> },
    /// No fresh set yet. Whatever the merged view holds from this server is stale or absent.
    Pending,
    /// The server crashed or was given up on.
    Failed { reason: String },
}

/// The outcome of a wait for one document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentFreshness {
    pub uri: String,
    pub min_version: i32,
    /// The merged view at the end of the wait. It includes any stale set of a pending
    /// server; `servers` says which sets are fresh.
    pub diagnostics: Vec<Diagnostic>,
    pub servers: Vec<(ServerId, ServerStatus)>,
}

/// The outcome of [`DiagnosticStore::wait_fresh`], one entry per wanted document, in the
/// order asked.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessReport {
    pub documents: Vec<DocumentFreshness>,
}

impl FreshnessReport {
    /// Whether every server answered for every document: only then are the diagnostics
    /// the whole picture. A failed server makes the report incomplete too.
    pub fn is_complete(&self) -> bool {
        self.documents.iter().all(|document| {
            document
                .servers
                .iter()
                .all(|(_, status)| matches!(status, ServerStatus::Answered { .. }))
        })
    }

    /// The (uri, server) pairs that have not answered yet.
    pub fn pending(&self) -> Vec<(&str, &ServerId)> {
        self.pairs_where(|status| matches!(status, ServerStatus::Pending))
    }

    /// The (uri, server) pairs whose server has failed.
    pub fn failed(&self) -> Vec<(&str, &ServerId)> {
        self.pairs_where(|status| matches!(status, ServerStatus::Failed { .. }))
    }

    fn pairs_where(&self, wanted: impl Fn(&ServerStatus) -> bool) -> Vec<(&str, &ServerId)> {
        self.documents
            .iter()
            .flat_map(|document| {
                document
                    .servers
                    .iter()
                    .filter(|(_, status)| wanted(status))
                    .map(|(server, _)| (document.uri.as_str(), server))
            })
            .collect()
    }
}

/// One server's latest set for one uri.
#[derive(Debug)]
struct PublishedSet {
    version: Option<i32>,
    /// When it was published, in the store's publish sequence.
    mark: PublishMark,
    diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Default)]
struct State {
    /// uri → server → its latest set. Servers are ordered so that the merged view is stable.
    sets: HashMap<String, BTreeMap<ServerId, PublishedSet>>,
    failed: HashMap<ServerId, String>,
    next_mark: u64,
}

impl State {
    fn merged(&self, uri: &str) -> Vec<Diagnostic> {
        self.sets
            .get(uri)
            .into_iter()
            .flat_map(|by_server| by_server.values())
            .flat_map(|set| set.diagnostics.iter().cloned())
            .collect()
    }

    fn status(&self, server: &ServerId, want: &FreshnessWant, since: PublishMark) -> ServerStatus {
        let set = self
            .sets
            .get(&want.uri)
            .and_then(|by_server| by_server.get(server));
        if let Some(set) = set {
            let fresh = match set.version {
                Some(version) => version >= want.min_version,
                None => set.mark >= since,
            };
            if fresh {
                return ServerStatus::Answered {
                    version: set.version,
                };
            }
        }
        match self.failed.get(server) {
            Some(reason) => ServerStatus::Failed {
                reason: reason.clone(),
            },
            None => ServerStatus::Pending,
        }
    }

    fn report(&self, wanted: &[FreshnessWant], since: PublishMark) -> FreshnessReport {
        let documents = wanted
            .iter()
            .map(|want| DocumentFreshness {
                uri: want.uri.clone(),
                min_version: want.min_version,
                diagnostics: self.merged(&want.uri),
                servers: want
                    .servers
                    .iter()
                    .map(|server| (server.clone(), self.status(server, want, since)))
                    .collect(),
            })
            .collect();
        FreshnessReport { documents }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped on every change of `state`; waiters watch it.
    changes: watch::Sender<u64>,
}

/// The diagnostics of every server for every uri. Clones share the same store.
#[derive(Debug, Clone)]
pub struct DiagnosticStore {
    shared: Arc<Shared>,
}

impl Default for DiagnosticStore {
    fn default() -> Self {
        Self::new()
    }
}

impl DiagnosticStore {
    pub fn new() -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changes,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is left consistent at every point a panic could occur, so a poisoned
        // lock still holds usable data.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_waiters(&self) {
        self.shared
            .changes
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Replaces `server`'s set for `uri` (an empty set clears it). Returns whether the merged
    /// view for `uri` changed, that is whether the editor needs a new merged publish; a
    /// set equal to the previous one, under a new version, does not change it.
    pub fn publish(
        &self,
        server: &ServerId,
        uri: &str,
        version: Option<i32>,
        diagnostics: Vec<Diagnostic>,
    ) -> bool {
        let changed = {
            let mut state = self.state();
            let mark = PublishMark(state.next_mark);
            state.next_mark += 1;
            let by_server = state.sets.entry(uri.to_owned()).or_default();
            let previous = by_server
                .get(server)
                .map_or(&[][..], |set| &set.diagnostics);
            let changed = !same_diagnostics(previous, &diagnostics);
            let set = PublishedSet {
                version,
                mark,
                diagnostics,
            };
            by_server.insert(server.clone(), set);
            changed
        };
        self.wake_waiters();
        changed
    }

    /// The merged diagnostics for `uri`: ordered by server id, then as each server sent them.
    pub fn merged(&self, uri: &str) -> Vec<Diagnostic> {
        self.state().merged(uri)
    }

    /// The merged diagnostics for `uri` as the servers sent them, for the editor.
    pub fn merged_raw(&self, uri: &str) -> Vec<Value> {
        self.merged_raw_without(uri, None)
    }

    /// [`Self::merged_raw`] leaving out the set of `skipped` (the editor's own report, which
    /// it is not sent back).
    pub fn merged_raw_without(&self, uri: &str, skipped: Option<&ServerId>) -> Vec<Value> {
        let state = self.state();
        state
            .sets
            .get(uri)
            .into_iter()
            .flat_map(|by_server| by_server.iter())
            .filter(|(server, _)| Some(*server) != skipped)
            .flat_map(|(_, set)| set.diagnostics.iter().map(|d| d.raw.clone()))
            .collect()
    }

    /// A child crashed or was given up on: drops all its sets and marks it failed, so that
    /// waiters see it as failed rather than pending. Returns the uris whose merged view
    /// changed (sorted), so that the editor can be sent their merged sets again.
    pub fn server_failed(&self, server: &ServerId, reason: String) -> Vec<String> {
        let mut affected = {
            let mut state = self.state();
            state.failed.insert(server.clone(), reason);
            let mut affected = Vec::new();
            for (uri, by_server) in &mut state.sets {
                let dropped = by_server.remove(server);
                if dropped.is_some_and(|set| !set.diagnostics.is_empty()) {
                    affected.push(uri.clone());
                }
            }
            state.sets.retain(|_, by_server| !by_server.is_empty());
            affected
        };
        affected.sort_unstable();
        self.wake_waiters();
        affected
    }

    /// A failed child is running again: it is pending, not failed, until it publishes.
    pub fn server_recovered(&self, server: &ServerId) {
        self.state().failed.remove(server);
        self.wake_waiters();
    }

    /// Every uri some server has published a set for (sorted).
    pub fn uris(&self) -> Vec<String> {
        let mut uris: Vec<String> = self.state().sets.keys().cloned().collect();
        uris.sort_unstable();
        uris
    }

    /// `server`'s latest set for `uri`: the version it was published for, and the
    /// diagnostics. `None` when the server has published nothing for it.
    pub fn for_server(
        &self,
        server: &ServerId,
        uri: &str,
    ) -> Option<(Option<i32>, Vec<Diagnostic>)> {
        let state = self.state();
        let set = state.sets.get(uri)?.get(server)?;
        Some((set.version, set.diagnostics.clone()))
    }

    /// Marks the present point in the publish sequence. Take it before sending the edit
    /// that the diagnostics are awaited for, and wait with [`Self::wait_fresh_since`]: a
    /// server that publishes without a version (clangd) may answer before the wait begins.
    pub fn publish_mark(&self) -> PublishMark {
        PublishMark(self.state().next_mark)
    }

    /// Waits until every (uri, server) pair in `wanted` has a fresh set, or its server has
    /// failed, or `deadline` passes, and reports where each pair stands. A set is fresh when
    /// it was published for `min_version` or later, or, without a version, after the wait
    /// began.
    pub async fn wait_fresh(
        &self,
        wanted: &[FreshnessWant],
        deadline: tokio::time::Instant,
    ) -> FreshnessReport {
        let since = self.publish_mark();
        self.wait_fresh_since(since, wanted, deadline).await
    }

    /// [`Self::wait_fresh`] where a set without a version is fresh when it was published at
    /// or after `since`. A set without a version published after `since` may still have
    /// been computed for older text: servers that do not send versions cannot say.
    pub async fn wait_fresh_since(
        &self,
        since: PublishMark,
        wanted: &[FreshnessWant],
        deadline: tokio::time::Instant,
    ) -> FreshnessReport {
        // Subscribe before the first look at the state, so no change can slip in between.
        let mut changes = self.shared.changes.subscribe();
        loop {
            let report = self.state().report(wanted, since);
            let resolved = report.documents.iter().all(|document| {
                document
                    .servers
                    .iter()
                    .all(|(_, status)| !matches!(status, ServerStatus::Pending))
            });
            if resolved {
                return report;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out; or the sender is gone, which cannot happen while `self` holds it.
                Ok(Err(_)) | Err(_) => return self.state().report(wanted, since),
            }
        }
    }
}

fn same_diagnostics(left: &[Diagnostic], right: &[Diagnostic]) -> bool {
    left.len() == right.len() && left.iter().zip(right).all(|(l, r)| l.raw == r.raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::time::Instant;

    use super::*;
    use crate::documents::Position;

    const URI: &str = "file:///src/main.c";

    fn diagnostic(line: u32, message: &str) -> Diagnostic {
        Diagnostic::from_raw(json!({
            "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 3}},
            "severity": 1,
            "message": message,
        }))
        .unwrap()
    }

    fn messages(diagnostics: &[Diagnostic]) -> Vec<&str> {
        diagnostics.iter().map(|d| d.message.as_str()).collect()
    }

    fn want(uri: &str, min_version: i32, servers: &[&ServerId]) -> FreshnessWant {
        FreshnessWant {
            uri: uri.to_owned(),
            min_version,
            servers: servers.iter().map(|&s| s.clone()).collect(),
        }
    }

    #[test]
    fn from_raw_reads_fields_and_keeps_the_raw_json() {
        let raw = json!({
            "range": {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 9}},
            "severity": 2,
            "code": 6133,
            "codeDescription": {"href": "https://example.com/6133"},
            "source": "ts",
            "message": "'x' is declared but never read.",
            "tags": [1],
            "relatedInformation": [],
            "data": {"fix": [1, 2, {"deep": null}]},
        });
        let diagnostic = Diagnostic::from_raw(raw.clone()).unwrap();
        assert_eq!(diagnostic.raw, raw);
        assert_eq!(
            diagnostic.range.start,
            Position {
                line: 2,
                character: 4
            }
        );
        assert_eq!(diagnostic.range.end.character, 9);
        assert_eq!(diagnostic.severity, Some(2));
        assert_eq!(diagnostic.code.as_deref(), Some("6133"));
        assert_eq!(diagnostic.source.as_deref(), Some("ts"));
        assert_eq!(diagnostic.message, "'x' is declared but never read.");

        let minimal = Diagnostic::from_raw(json!({
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "message": "m",
            "code": "E0308",
        }))
        .unwrap();
        assert_eq!(
            (minimal.severity, minimal.source, minimal.code.as_deref()),
            (None, None, Some("E0308"))
        );
    }

    #[test]
    fn from_raw_rejects_malformed_diagnostics() {
        let range =
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}});
        let cases = [
            (json!("text"), "not a JSON object"),
            (json!({"message": "m"}), "no range"),
            (
                json!({"range": {"start": {"line": 0}}, "message": "m"}),
                "range",
            ),
            (json!({"range": range}), "no message"),
            (json!({"range": range, "message": 3}), "message"),
            (
                json!({"range": range, "message": "m", "severity": "error"}),
                "severity",
            ),
            (
                json!({"range": range, "message": "m", "severity": 300}),
                "severity",
            ),
            (json!({"range": range, "message": "m", "code": [1]}), "code"),
        ];
        for (raw, expected) in cases {
            let error = Diagnostic::from_raw(raw.clone()).unwrap_err().to_string();
            assert!(error.contains(expected), "{raw}: {error}");
        }
    }

    #[test]
    fn publish_replaces_only_that_servers_set() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let tidy = ServerId::new("clang-tidy");
        assert!(store.publish(
            &clangd,
            URI,
            Some(1),
            vec![diagnostic(0, "a"), diagnostic(1, "b")]
        ));
        assert!(store.publish(&tidy, URI, Some(1), vec![diagnostic(2, "t")]));
        assert!(store.publish(&clangd, URI, Some(2), vec![diagnostic(3, "c")]));
        let (version, diagnostics) = store.for_server(&clangd, URI).unwrap();
        assert_eq!((version, messages(&diagnostics)), (Some(2), vec!["c"]));
        let (version, diagnostics) = store.for_server(&tidy, URI).unwrap();
        assert_eq!((version, messages(&diagnostics)), (Some(1), vec!["t"]));
        assert!(store.for_server(&tidy, "file:///other.c").is_none());
        // The same set again under a new version leaves the merged view as it was.
        assert!(!store.publish(&clangd, URI, Some(3), vec![diagnostic(3, "c")]));
        assert_eq!(store.for_server(&clangd, URI).unwrap().0, Some(3));
    }

    #[test]
    fn merged_view_orders_by_server_then_as_sent() {
        let store = DiagnosticStore::new();
        let pyright = ServerId::new("pyright");
        let ruff = ServerId::new("ruff");
        store.publish(
            &ruff,
            URI,
            None,
            vec![diagnostic(9, "r1"), diagnostic(1, "r2")],
        );
        store.publish(&pyright, URI, Some(4), vec![diagnostic(5, "p1")]);
        store.publish(
            &pyright,
            "file:///b.py",
            Some(1),
            vec![diagnostic(0, "elsewhere")],
        );
        assert_eq!(messages(&store.merged(URI)), ["p1", "r1", "r2"]);
        let raw = store.merged_raw(URI);
        assert_eq!(raw.len(), 3);
        assert_eq!(raw[0]["message"], "p1");
        assert_eq!(raw[2]["range"]["start"]["line"], 1);
        assert_eq!(store.uris(), ["file:///b.py", URI]);
        assert!(store.merged("file:///unknown.py").is_empty());
    }

    #[test]
    fn empty_publish_clears() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        assert!(!store.publish(&clangd, URI, Some(1), vec![]));
        assert!(store.publish(&clangd, URI, Some(2), vec![diagnostic(0, "a")]));
        assert!(store.publish(&clangd, URI, Some(3), vec![]));
        assert!(store.merged(URI).is_empty());
        // An empty set is still an answer, kept with its version.
        assert_eq!(store.for_server(&clangd, URI), Some((Some(3), vec![])));
    }

    #[test]
    fn failed_server_loses_its_sets() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let pyright = ServerId::new("pyright");
        store.publish(&clangd, "file:///b.c", Some(1), vec![diagnostic(0, "b")]);
        store.publish(&clangd, "file:///a.c", Some(1), vec![diagnostic(0, "a")]);
        store.publish(&clangd, "file:///clean.c", Some(1), vec![]);
        store.publish(&pyright, "file:///a.c", Some(1), vec![diagnostic(0, "p")]);
        let affected = store.server_failed(&clangd, "crashed 5 times".into());
        assert_eq!(affected, ["file:///a.c", "file:///b.c"]);
        assert_eq!(messages(&store.merged("file:///a.c")), ["p"]);
        assert!(store.for_server(&clangd, "file:///a.c").is_none());
        assert_eq!(store.uris(), ["file:///a.c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_at_once_when_every_server_answered() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let tidy = ServerId::new("clang-tidy");
        store.publish(&clangd, URI, Some(7), vec![diagnostic(0, "a")]);
        store.publish(&tidy, URI, Some(8), vec![]);
        let started = Instant::now();
        let report = store
            .wait_fresh(
                &[want(URI, 7, &[&clangd, &tidy])],
                started + Duration::from_secs(5),
            )
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(report.is_complete());
        assert!(report.pending().is_empty());
        let document = &report.documents[0];
        assert_eq!(messages(&document.diagnostics), ["a"]);
        assert_eq!(
            document.servers,
            [
                (clangd, ServerStatus::Answered { version: Some(7) }),
                (tidy, ServerStatus::Answered { version: Some(8) }),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stale_sets_stay_pending_until_the_deadline() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let pyright = ServerId::new("pyright");
        store.publish(&clangd, URI, Some(6), vec![diagnostic(0, "old")]);
        // Versionless and published before the wait began: not fresh either.
        store.publish(&pyright, URI, None, vec![]);
        let started = Instant::now();
        let report = store
            .wait_fresh(
                &[want(URI, 7, &[&clangd, &pyright])],
                started + Duration::from_secs(5),
            )
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(!report.is_complete());
        assert_eq!(report.pending(), [(URI, &clangd), (URI, &pyright)]);
        assert!(report.failed().is_empty());
        // The stale set is still shown, but nothing says the document is clean.
        assert_eq!(messages(&report.documents[0].diagnostics), ["old"]);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_server_is_reported_failed_not_pending() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let tidy = ServerId::new("clang-tidy");
        store.publish(&tidy, URI, Some(2), vec![]);
        store.server_failed(&clangd, "exited with status 1".into());
        let started = Instant::now();
        let wanted = [want(URI, 2, &[&clangd, &tidy])];
        let report = store
            .wait_fresh(&wanted, started + Duration::from_secs(5))
            .await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(!report.is_complete());
        assert!(report.pending().is_empty());
        assert_eq!(report.failed(), [(URI, &clangd)]);
        assert_eq!(
            report.documents[0].servers[0].1,
            ServerStatus::Failed {
                reason: "exited with status 1".into()
            }
        );
        store.server_recovered(&clangd);
        let report = store.wait_fresh(&wanted, Instant::now()).await;
        assert_eq!(report.pending(), [(URI, &clangd)]);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_is_woken_by_a_publish_from_another_task() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        let pyright = ServerId::new("pyright");
        let publisher = {
            let store = store.clone();
            let clangd = clangd.clone();
            let pyright = pyright.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                store.publish(&pyright, "file:///a.py", Some(3), vec![diagnostic(1, "p")]);
                tokio::time::sleep(Duration::from_millis(300)).await;
                // An older version does not satisfy the wait; the versionless one does.
                store.publish(&clangd, URI, Some(1), vec![]);
                tokio::time::sleep(Duration::from_millis(300)).await;
                store.publish(&clangd, URI, None, vec![diagnostic(0, "c")]);
            })
        };
        let started = Instant::now();
        let report = store
            .wait_fresh(
                &[
                    want(URI, 2, &[&clangd]),
                    want("file:///a.py", 3, &[&pyright]),
                ],
                started + Duration::from_secs(30),
            )
            .await;
        assert_eq!(started.elapsed(), Duration::from_millis(900));
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(
            report.documents[0].servers[0].1,
            ServerStatus::Answered { version: None }
        );
        assert_eq!(messages(&report.documents[0].diagnostics), ["c"]);
        assert_eq!(messages(&report.documents[1].diagnostics), ["p"]);
        publisher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_mark_taken_before_the_edit_catches_an_early_versionless_publish() {
        let store = DiagnosticStore::new();
        let clangd = ServerId::new("clangd");
        store.publish(&clangd, URI, None, vec![diagnostic(0, "before")]);
        let mark = store.publish_mark();
        store.publish(&clangd, URI, None, vec![diagnostic(0, "after")]);
        let wanted = [want(URI, 5, &[&clangd])];
        let report = store
            .wait_fresh_since(mark, &wanted, Instant::now() + Duration::from_secs(1))
            .await;
        assert!(report.is_complete());
        // Without the mark, that publish came before the wait and does not count.
        let report = store
            .wait_fresh(&wanted, Instant::now() + Duration::from_secs(1))
            .await;
        assert_eq!(report.pending(), [(URI, &clangd)]);
    }
}
