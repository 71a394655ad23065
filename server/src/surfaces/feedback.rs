//! [`EditorFeedback`]: the agent's view of the language servers inside `tack lsp`.
//!
//! It reads the run's drafts first, then the editor's open buffers (a shared copy the proxy
//! keeps while an agent exists), then disk. A drafted text goes to the language servers
//! through the proxy's main loop (they see it under a version of tack's own, and the editor
//! does not see their diagnostics for it), so every edit is checked by the real servers
//! before the user is shown anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use futures::future::BoxFuture;
use ropey::Rope;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::agent::{DraftSet, FeedbackReport, LanguageFeedback};
use crate::diagnostics::{FreshnessWant, PublishMark};
use crate::headless::{feedback_report, file_uri, known_report};
use crate::proxy::main_loop::Event;
use crate::proxy::{ProxyHandle, SurfaceEvent};

/// The editor's open buffers by uri: version and text (a cheap rope clone per change).
pub type SharedBuffers = Arc<RwLock<HashMap<String, (i32, Rope)>>>;

pub struct EditorFeedback {
    events: mpsc::UnboundedSender<Event>,
    proxy: ProxyHandle,
    buffers: SharedBuffers,
    drafts: Arc<DraftSet>,
    /// The version the servers got with each file tack opened or drafted for them.
    sent_versions: Mutex<HashMap<PathBuf, i32>>,
    /// Taken at the first change since the last wait (see `HeadlessFeedback`).
    mark: Mutex<Option<PublishMark>>,
}

impl EditorFeedback {
    pub fn new(
        events: mpsc::UnboundedSender<Event>,
        proxy: ProxyHandle,
        buffers: SharedBuffers,
        drafts: Arc<DraftSet>,
    ) -> Self {
        Self {
            events,
            proxy,
            buffers,
            drafts,
            sent_versions: Mutex::new(HashMap::new()),
            mark: Mutex::new(None),
        }
    }

    fn open_buffer(&self, path: &Path) -> Option<(i32, Rope)> {
        let uri = file_uri(path).ok()?;
        let buffers = self.buffers.read().unwrap_or_else(PoisonError::into_inner);
        buffers.get(&uri).cloned()
    }

    /// Shows the servers `text` for `path`; the version they got, if any server serves it.
    async fn send_text(&self, path: &Path, text: &str) -> Option<i32> {
        let (reply, answer) = oneshot::channel();
        let event = Event::Surface(SurfaceEvent::DraftText {
            path: path.to_path_buf(),
            text: text.to_owned(),
            reply,
        });
        self.events.send(event).ok()?;
        let version = answer.await.ok()??;
        self.sent_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_path_buf(), version);
        Some(version)
    }

    fn sent_version(&self, path: &Path) -> Option<i32> {
        self.sent_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .copied()
    }

    /// The run ended: the servers are back on the editor's texts.
    pub fn forget_sent(&self) {
        self.sent_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl LanguageFeedback for EditorFeedback {
    fn buffer_text(&self, path: &Path) -> Option<String> {
        self.drafts
            .text(path)
            .or_else(|| self.open_buffer(path).map(|(_, text)| text.to_string()))
    }

    fn file_changed<'a>(&'a self, path: &'a Path, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.mark
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| self.proxy.diagnostics.publish_mark());
            self.send_text(path, text).await;
        })
    }

    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        Box::pin(async move {
            let diagnostics = &self.proxy.diagnostics;
            let mark = self
                .mark
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| diagnostics.publish_mark());
            let mut wanted = Vec::new();
            for path in paths {
                let Ok(uri) = file_uri(path) else { continue };
                let version = match self.sent_version(path) {
                    Some(version) => version,
                    None => match self.open_buffer(path) {
                        Some((version, _)) => version,
                        // Not open anywhere: the servers are shown the disk text.
                        None => {
                            let Ok(text) = std::fs::read_to_string(path) else {
                                continue;
                            };
                            self.send_text(path, &text).await.unwrap_or(0)
                        }
                    },
                };
                let editor_text_is_current =
                    self.drafts.text(path).is_none() && self.open_buffer(path).is_some();
                wanted.push(FreshnessWant {
                    uri,
                    min_version: version,
                    servers: crate::proxy::companion::servers_to_wait_for(
                        self.proxy.servers_for(path),
                        editor_text_is_current,
                    ),
                });
            }
            let report = diagnostics
                .wait_fresh_since(mark, &wanted, tokio::time::Instant::from_std(deadline))
                .await;
            feedback_report(report.documents)
        })
    }

    fn known_diagnostics(&self) -> FeedbackReport {
        known_report(&self.proxy)
    }

    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let event = Event::Surface(SurfaceEvent::Request {
                method: method.to_owned(),
                params,
                reply,
            });
            if self.events.send(event).is_err() {
                return Err("the editor session has ended".to_owned());
            }
            match tokio::time::timeout(crate::headless::REQUEST_TIMEOUT, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(format!("{method}: the editor session has ended")),
                Err(_) => Err(format!(
                    "{method} timed out after {} s",
                    crate::headless::REQUEST_TIMEOUT.as_secs()
                )),
            }
        })
    }
}
