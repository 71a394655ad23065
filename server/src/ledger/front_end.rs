//! The ledger as a front end holds it: [`SessionLedger`] opens the session's file when the
//! session starts and records every event the front end sees, beside its own handling of
//! them. `tack run` has one session; an editor connection starts a new one with "new
//! session", and the old session's last events (its `session_ended`) still reach the old
//! file. `tack undo` / `tack redo` append what they moved to the session's file
//! ([`recording_restore`]).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{LedgerError, LedgerSettings, LedgerWriter};
use crate::agent::{AgentEvent, RestoreDirection};
use crate::config::{Config, ConfigSources};
use crate::providers::{ProvidersConfig, Redactor, Registry};
use crate::snapshots::{ChangeRecord, SnapshotStore};

/// The ledger of a front end's current session (and of the one before, until it ended).
pub struct SessionLedger {
    settings: LedgerSettings,
    redactor: Redactor,
    store: Option<Arc<SnapshotStore>>,
    current: Option<LedgerWriter>,
    /// The previous session's writer, until its `session_ended` arrives.
    previous: Option<LedgerWriter>,
}

impl SessionLedger {
    /// The ledger for this configuration; `Err` names a bad `[ledger]` setting (then nothing
    /// is recorded: a broken setting must not record what the user meant to keep out).
    pub fn new(
        config: &Config,
        store: Option<Arc<SnapshotStore>>,
    ) -> Result<SessionLedger, LedgerError> {
        Ok(SessionLedger {
            settings: LedgerSettings::load(config)?,
            redactor: secrets_redactor(config),
            store,
            current: None,
            previous: None,
        })
    }

    /// Starts recording `session` (continuing its file if it exists). Failing to open the
    /// file is logged: the session runs on unrecorded.
    pub fn begin(&mut self, session: &str) {
        self.previous = self.current.take();
        if !self.settings.enabled {
            return;
        }
        match LedgerWriter::open(
            &self.settings,
            session,
            self.redactor.clone(),
            self.store.clone(),
        ) {
            Ok(writer) => self.current = Some(writer),
            Err(error) => tracing::warn!(%error, "cannot open the session ledger; not recorded"),
        }
    }

    /// Records an event, with `detail` fields the front end adds.
    pub fn record_with(&mut self, event: &AgentEvent, detail: Map<String, Value>) {
        let ends = matches!(event, AgentEvent::SessionEnded { .. });
        let starts = matches!(event, AgentEvent::SessionStarted { .. });
        if starts {
            self.previous = None;
        }
        let writer = match (&mut self.previous, &mut self.current) {
            (Some(previous), _) => previous,
            (None, Some(current)) => current,
            (None, None) => return,
        };
        writer.record_with(event, detail);
        if ends {
            self.previous = None;
        }
    }

    pub fn record(&mut self, event: &AgentEvent) {
        self.record_with(event, Map::new());
    }
}

/// A redactor holding every API key and secret header this configuration knows of, so a
/// key echoed in a tool's output is masked too (key shapes are masked in any case).
pub fn secrets_redactor(config: &Config) -> Redactor {
    let (providers, _) = ProvidersConfig::from_toml(
        config.section("model").and_then(toml::Value::as_str),
        config.section("providers").and_then(toml::Value::as_table),
    );
    let (registry, _) = Registry::for_user(providers);
    let mut redactor = Redactor::new();
    for entry in registry.catalog().providers.values() {
        if let Some((key, _)) = registry.key_for(entry) {
            redactor.add_secret(key.expose());
        }
        for (name, value) in &entry.headers {
            let name = name.to_ascii_lowercase();
            if ["auth", "key", "token", "secret"]
                .iter()
                .any(|w| name.contains(w))
            {
                redactor.add_secret(value);
            }
        }
    }
    redactor
}

/// Runs `tack undo` / `tack redo` (`restore`) and records what it moved in the session's
/// ledger file, as a `changes_restored` line appended after the session's end.
pub fn recording_restore<T, E>(
    store: &SnapshotStore,
    kind: RestoreDirection,
    restore: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let session = store.latest_session().ok().flatten();
    let before = session
        .as_deref()
        .and_then(|s| store.changes(s).ok())
        .unwrap_or_default();
    let result = restore()?;
    let Some(session) = session else {
        return Ok(result);
    };
    let after = store.changes(&session).unwrap_or_default();
    let moved: Vec<&ChangeRecord> = after
        .iter()
        .filter(|change| {
            before
                .iter()
                .find(|b| b.id == change.id)
                .is_some_and(|b| b.status != change.status)
        })
        .collect();
    if moved.is_empty() {
        return Ok(result);
    }
    let mut files: Vec<String> = moved
        .iter()
        .flat_map(|c| c.files.iter().map(|f| f.path.clone()))
        .collect();
    files.sort_unstable();
    files.dedup();
    let event = AgentEvent::ChangesRestored {
        kind,
        changes: moved.iter().map(|c| c.id.0).collect(),
        files,
    };
    let config = Config::load(&ConfigSources::from_env(
        Some(store.workspace_root().to_path_buf()),
        None,
    ))
    .config;
    match SessionLedger::new(&config, None) {
        Ok(mut ledger) => {
            ledger.begin(&session);
            ledger.record(&event);
        }
        Err(error) => tracing::warn!(%error, "the undo is not recorded in the ledger"),
    }
    Ok(result)
}
