//! `initialize`: read the configuration, find the workspace's languages, start their servers
//! in parallel, and answer the editor with the merged capabilities once they have answered.
//! Also (re)starting one child, which shares the same handshake.

use super::capabilities::{self, child_sync, client_capabilities_for_child};
use super::child::{Child, ChildState, PendingChildRequest};
use super::main_loop::{INITIALIZE_TIMEOUT, Lifecycle, Proxy, Timer};
use crate::config::{self, Config, ConfigSources};
use crate::jsonrpc::{Message, Notification, Request, RequestId, Response, error_code};
use crate::server_id::ServerId;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// How many directory entries the language detection looks at, at most.
const DETECTION_LIMIT: usize = 20_000;

impl Proxy {
    pub(super) fn on_initialize(&mut self, request: Request) {
        let params: Value = match request.params_as() {
            Ok(Value::Object(params)) => Value::Object(params),
            Ok(other) => {
                return self.respond_error(
                    request.id,
                    error_code::INVALID_PARAMS,
                    format!("initialize params must be an object, got {other}"),
                );
            }
            Err(error) => {
                return self.respond_error(
                    request.id,
                    error_code::INVALID_PARAMS,
                    format!("invalid initialize params: {error}"),
                );
            }
        };
        self.lifecycle = Lifecycle::Initializing;
        self.root = workspace_root(&params);
        self.client_capabilities = params.get("capabilities").cloned().unwrap_or(Value::Null);
        let init_options = params.get("initializationOptions").cloned();
        self.init_params = params;

        let loaded = Config::load(&ConfigSources::from_env(self.root.clone(), init_options));
        for file in &loaded.files_read {
            tracing::info!(file = %file.display(), "configuration read");
        }
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        self.config = loaded.config;
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        if !warnings.is_empty() {
            self.show_message(2, format!("tack configuration: {}", warnings.join("; ")));
        }

        self.register_servers();
        let detected = match &self.root {
            Some(root) => config::detect_languages(root, &self.config, DETECTION_LIMIT),
            None => BTreeSet::new(),
        };
        tracing::info!(languages = ?detected, root = ?self.root, "workspace languages");
        let mut to_start = BTreeSet::new();
        for language in &detected {
            match self.language_servers.get(language) {
                Some(servers) => to_start.extend(servers.iter().cloned()),
                None => tracing::info!(language, "no language server found for this language"),
            }
        }
        self.initialize_id = Some(request.id);
        for server in to_start {
            self.initializing.insert(server.clone());
            self.start_child(&server);
        }
        if self.initializing.is_empty() {
            self.finish_initialize();
        } else {
            self.schedule(INITIALIZE_TIMEOUT, Timer::InitializeDeadline);
        }
    }

    /// Creates a (not yet started) child for every configured server whose command is found,
    /// and the language → servers table.
    fn register_servers(&mut self) {
        let mut found: HashMap<String, Option<PathBuf>> = HashMap::new();
        let which = |command: &str| -> Option<PathBuf> {
            // The lookup is cached per command: PATH is read once per server.
            found
                .entry(command.to_owned())
                .or_insert_with(|| config::find_in_path(command))
                .clone()
        };
        let which = std::cell::RefCell::new(which);
        let companion = self.checked_companion_languages();
        let languages: Vec<String> = (self.config.languages.keys())
            .filter(|language| !companion.contains(*language))
            .cloned()
            .collect();
        for language in languages {
            let servers = self
                .config
                .servers_for_language(&language, &|command| (which.borrow_mut())(command));
            let mut ids = Vec::new();
            for resolved in servers {
                let id = ServerId::new(&resolved.name);
                let child = self
                    .children
                    .entry(id.clone())
                    .or_insert_with(|| Child::new(id.clone(), resolved, Vec::new()));
                if !child.serves(&language) {
                    child.languages.push(language.clone());
                }
                ids.push(id);
            }
            if !ids.is_empty() {
                self.language_servers.insert(language, ids);
            }
        }
    }

    /// Starts the servers of a language that have not been started yet (a document of a
    /// language not detected at `initialize` was opened).
    pub(super) fn ensure_language_started(&mut self, language: &str) {
        let Some(servers) = self.language_servers.get(language).cloned() else {
            return;
        };
        for server in servers {
            if self
                .children
                .get(&server)
                .is_some_and(|c| c.state == ChildState::NotStarted)
            {
                tracing::info!(%server, language, "starting a language server on first use");
                self.start_child(&server);
            }
        }
    }

    /// Spawns a child and sends it `initialize`.
    pub(super) fn start_child(&mut self, server: &ServerId) {
        let Some(root) = self.root.clone().or_else(|| std::env::current_dir().ok()) else {
            return self.give_up(server, "no workspace folder to run in".to_owned());
        };
        let params = self.child_initialize_params(server);
        let events = self.events.clone();
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        if let Err(error) = child.spawn(&root, &events) {
            tracing::warn!(%error, "language server did not start");
            if child.record_crash(Instant::now()) {
                return self.give_up(server, error.to_string());
            }
            child.state = ChildState::Restarting;
            let delay = child.restart_backoff();
            let generation = child.generation;
            return self.schedule(
                delay,
                Timer::RestartChild {
                    server: server.clone(),
                    generation,
                },
            );
        }
        tracing::info!(%server, pid = ?child.process.as_ref().and_then(|p| p.pid), "language server started");
        let id = child.allocate_request(PendingChildRequest::Initialize);
        let params = serde_json::value::to_raw_value(&params).ok();
        child.send(Message::Request(Request::new(
            RequestId::Number(id),
            "initialize",
            params,
        )));
    }

    pub(super) fn restart_child(&mut self, server: &ServerId) {
        if matches!(
            self.lifecycle,
            Lifecycle::ShuttingDown | Lifecycle::Exiting(_)
        ) {
            return;
        }
        tracing::info!(%server, "restarting language server");
        self.start_child(server);
    }

    /// The editor's `initialize` params as the child should see them: our process id, the
    /// editor's capabilities (UTF-16 positions only), the server's own initializationOptions.
    fn child_initialize_params(&self, server: &ServerId) -> Value {
        let mut params = self.init_params.clone();
        if let Value::Object(object) = &mut params {
            object.insert("processId".to_owned(), json!(std::process::id()));
            object.insert(
                "capabilities".to_owned(),
                client_capabilities_for_child(&self.client_capabilities),
            );
            let options = self
                .children
                .get(server)
                .and_then(|c| c.config.initialization_options.clone());
            match options {
                Some(options) => {
                    object.insert("initializationOptions".to_owned(), options);
                }
                None => {
                    object.remove("initializationOptions");
                }
            }
        }
        params
    }

    pub(super) fn on_child_initialize_response(&mut self, server: &ServerId, response: Response) {
        if let Some(error) = response.error {
            self.give_up(
                server,
                format!("it refused initialize: {} ({})", error.message, error.code),
            );
            return;
        }
        let result: Value = response
            .result
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null);
        let capabilities = result.get("capabilities").cloned().unwrap_or(Value::Null);
        let Some(child) = self.children.get_mut(server) else {
            return;
        };
        child.sync = child_sync(&capabilities);
        child.capabilities = capabilities;
        child.state = ChildState::Running;
        if let Ok(n) = Notification::with_value("initialized", &json!({})) {
            child.send(Message::Notification(n));
        }
        self.diagnostics.server_recovered(server);
        self.open_documents_in(server);
        if let Some(child) = self.children.get_mut(server) {
            for message in std::mem::take(&mut child.queued) {
                child.send(message);
            }
        }
        self.pull_all_open(server);
        if self.initializing.remove(server) && self.initializing.is_empty() {
            self.finish_initialize();
        } else if self.lifecycle == Lifecycle::Running {
            self.announce_late_server(server);
        }
    }

    /// Answers the editor's `initialize` with the merged capabilities of the running children.
    pub(super) fn finish_initialize(&mut self) {
        let Some(id) = self.initialize_id.take() else {
            return;
        };
        let running: Vec<(ServerId, Value)> = self
            .children
            .values()
            .filter(|c| c.state == ChildState::Running)
            .map(|c| (c.id.clone(), c.capabilities.clone()))
            .collect();
        self.merged = capabilities::merge_server_capabilities(&running);
        crate::surfaces::actions::add_capabilities(&mut self.merged.capabilities);
        for warning in &self.merged.warnings {
            tracing::warn!("{warning}");
        }
        self.lifecycle = Lifecycle::Running;
        self.publish_routing();
        let result = json!({
            "capabilities": self.merged.capabilities,
            "serverInfo": { "name": "tack", "version": env!("CARGO_PKG_VERSION") },
        });
        tracing::info!(servers = ?running.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>(), "initialized");
        self.respond_value(id, &result);
    }
}

/// The workspace folder: the first of `workspaceFolders`, else `rootUri`, else `rootPath`.
fn workspace_root(params: &Value) -> Option<PathBuf> {
    let from_uri = |uri: &str| url::Url::parse(uri).ok()?.to_file_path().ok();
    params
        .get("workspaceFolders")
        .and_then(Value::as_array)
        .and_then(|folders| folders.first())
        .and_then(|folder| folder.get("uri"))
        .and_then(Value::as_str)
        .and_then(from_uri)
        .or_else(|| {
            params
                .get("rootUri")
                .and_then(Value::as_str)
                .and_then(from_uri)
        })
        .or_else(|| {
            params
                .get("rootPath")
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn root_prefers_workspace_folders_then_root_uri_then_root_path() {
        let p = json!({"workspaceFolders": [{"uri": "file:///w", "name": "w"}], "rootUri": "file:///r", "rootPath": "/p"});
        assert_eq!(workspace_root(&p), Some(PathBuf::from("/w")));
        let p = json!({"workspaceFolders": null, "rootUri": "file:///r", "rootPath": "/p"});
        assert_eq!(workspace_root(&p), Some(PathBuf::from("/r")));
        let p = json!({"rootUri": null, "rootPath": "/p"});
        assert_eq!(workspace_root(&p), Some(PathBuf::from("/p")));
        assert_eq!(workspace_root(&json!({})), None);
    }
}
