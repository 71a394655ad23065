//! [`AcpFeedback`]: the agent's view of files and language servers in an ACP session.
//!
//! Diagnostics, navigation and document sync go to the headless language session (the same
//! one `tack run` uses). File text goes through the client when it offers it: reads through
//! `fs/read_text_file`, so the agent sees unsaved buffers; agent edits through
//! `fs/write_text_file`, so the editor holds them as the agent's changes for review. The
//! snapshot is taken before either (the session calls [`LanguageFeedback::write_file`] only
//! after the pre-image is stored).
//!
//! The agent asks for file text synchronously ([`LanguageFeedback::buffer_text`] and
//! `write_file` are blocking calls, made from tool futures and from the blocking thread that
//! writes a change), while the client answers over the async connection; the bridge parks
//! the calling thread with `block_in_place` and waits at most [`CLIENT_TIMEOUT`]. It needs
//! the multi-threaded runtime `tack acp` runs on; on any other runtime the client is not
//! asked and the disk is used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use agent_client_protocol::Client;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{ReadTextFileRequest, SessionId, WriteTextFileRequest};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::agent::tools::FileEdit;
use crate::agent::{FeedbackReport, LanguageFeedback};
use crate::headless::HeadlessFeedback;

/// How long a file read or write through the client may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The client's side of the files, when it offers one.
struct ClientFiles {
    connection: ConnectionTo<Client>,
    session: SessionId,
    read: bool,
    write: bool,
    runtime: Handle,
}

pub struct AcpFeedback {
    servers: HeadlessFeedback,
    client: ClientFiles,
    /// The edits of each running call, by call id, for the permission request and the diff
    /// shown with the call.
    prepared: Mutex<HashMap<String, Vec<FileEdit>>>,
}

impl AcpFeedback {
    pub fn new(
        servers: HeadlessFeedback,
        connection: ConnectionTo<Client>,
        session: SessionId,
        read: bool,
        write: bool,
    ) -> AcpFeedback {
        AcpFeedback {
            servers,
            client: ClientFiles {
                connection,
                session,
                read,
                write,
                runtime: Handle::current(),
            },
            prepared: Mutex::new(HashMap::new()),
        }
    }

    /// The edits call `call` makes (empty when it edits nothing); `forget` drops them (the
    /// call ended).
    pub fn prepared_edits(&self, call: &str, forget: bool) -> Vec<FileEdit> {
        let mut prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if forget {
            prepared.remove(call).unwrap_or_default()
        } else {
            prepared.get(call).cloned().unwrap_or_default()
        }
    }

    pub fn servers(&self) -> &HeadlessFeedback {
        &self.servers
    }

    pub fn into_servers(self) -> HeadlessFeedback {
        self.servers
    }

    /// Whether agent edits reach the client's buffers.
    pub fn writes_through_client(&self) -> bool {
        self.client.write && self.bridge_available()
    }

    fn bridge_available(&self) -> bool {
        self.client.runtime.runtime_flavor() == RuntimeFlavor::MultiThread
    }

    /// Waits for `work` from synchronous code; `None` on timeout or without the bridge.
    fn wait_for<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        if !self.bridge_available() {
            return None;
        }
        let runtime = &self.client.runtime;
        tokio::task::block_in_place(|| {
            runtime.block_on(async { tokio::time::timeout(CLIENT_TIMEOUT, work).await.ok() })
        })
    }

    /// The client's text of a file (its buffer when open), or `None` when it has none.
    fn client_text(&self, path: &Path) -> Option<String> {
        if !self.client.read {
            return None;
        }
        let request = ReadTextFileRequest::new(self.client.session.clone(), path.to_path_buf());
        let sent = self.client.connection.send_request(request);
        match self.wait_for(sent.block_task())? {
            Ok(response) => Some(response.content),
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "the client did not read the file");
                None
            }
        }
    }
}

impl LanguageFeedback for AcpFeedback {
    fn buffer_text(&self, path: &Path) -> Option<String> {
        self.client_text(path)
            .or_else(|| self.servers.buffer_text(path))
    }

    fn file_changed<'a>(&'a self, path: &'a Path, text: &'a str) -> BoxFuture<'a, ()> {
        self.servers.file_changed(path, text)
    }

    fn fresh_diagnostics<'a>(
        &'a self,
        paths: &'a [PathBuf],
        deadline: Instant,
    ) -> BoxFuture<'a, FeedbackReport> {
        // A file the servers have not seen yet is opened with the client's text (an unsaved
        // buffer), not the disk's.
        let session = self.servers.session();
        for path in paths {
            if session.open_text(path).is_none()
                && let Some(text) = self.client_text(path)
                && let Err(error) = session.set_text(path, &text)
            {
                tracing::warn!(%error, path = %path.display(), "the servers were not shown the buffer");
            }
        }
        self.servers.fresh_diagnostics(paths, deadline)
    }

    fn known_diagnostics(&self) -> FeedbackReport {
        self.servers.known_diagnostics()
    }

    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        self.servers.request(method, params)
    }

    fn edits_prepared(&self, call: &str, edits: &[FileEdit]) {
        self.prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(call.to_owned(), edits.to_vec());
    }

    fn write_file(&self, path: &Path, text: &str) -> std::io::Result<()> {
        if !self.writes_through_client() {
            return crate::agent::session::write_atomically(path, text);
        }
        let request = WriteTextFileRequest::new(
            self.client.session.clone(),
            path.to_path_buf(),
            text.to_owned(),
        );
        let sent = self.client.connection.send_request(request);
        match self.wait_for(sent.block_task()) {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(std::io::Error::other(format!(
                "the editor did not write it: {}",
                error.message
            ))),
            None => Err(std::io::Error::other(format!(
                "the editor did not answer fs/write_text_file within {} s",
                CLIENT_TIMEOUT.as_secs()
            ))),
        }
    }
}
