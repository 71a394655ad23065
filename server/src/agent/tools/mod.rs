//! The agent's tools, one file each, in a [`ToolRegistry`].
//!
//! A tool parses its JSON arguments, names what it touches ([`Tool::subjects`]: the
//! permission policy judges those), and runs. Tools that change files never write: they
//! return the complete new contents ([`ToolOutput::Edits`]) and the session snapshots, writes
//! and checks diagnostics, so a mutating step is all or nothing. [`Effect`] tells the session
//! which kind a tool is (`is_mutating` is derived from it).

mod diagnostics;
mod edit;
mod grep;
mod list;
mod navigate;
mod read;
mod rename;
mod run_command;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::workspace::{PathError, Workspace};
use crate::providers::ToolSpec;

/// What running a tool can do to the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    ReadOnly,
    /// Returns [`ToolOutput::Edits`]: exactly these files change, nothing else.
    Edits,
    /// Anything may change (a shell command).
    Anything,
}

/// Limits the tools work within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolSettings {
    pub command_timeout: Duration,
    /// Bytes of command output kept (head and tail halves).
    pub max_command_output: usize,
    /// Lines `read` returns when no range is asked for.
    pub max_read_lines: usize,
    /// Matches `grep` returns.
    pub max_grep_matches: usize,
    /// Entries `list` returns.
    pub max_list_entries: usize,
    /// How long `diagnostics`, and the check after every edit, wait for fresh results.
    pub diagnostics_deadline: Duration,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            command_timeout: Duration::from_secs(120),
            max_command_output: 16 * 1024,
            max_read_lines: 400,
            max_grep_matches: 100,
            max_list_entries: 300,
            diagnostics_deadline: Duration::from_secs(10),
        }
    }
}

/// What a tool call needs, owned so the call's future is `'static`.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: Workspace,
    pub settings: ToolSettings,
}

/// One file a mutating tool will change. `before` is the text it was computed from (`None`:
/// the file does not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// What the model is told.
    Text(String),
    /// Files to write, all or nothing, and what to tell the model once they are written.
    Edits {
        edits: Vec<FileEdit>,
        message: String,
    },
}

/// Why a call failed; the message goes back to the model as an error result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> ToolError {
        ToolError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type ToolFuture = BoxFuture<'static, Result<ToolOutput, ToolError>>;

/// One tool. Implementations are stateless; state lives in the [`ToolContext`].
pub trait Tool: Send + Sync {
    fn name(&self) -> &str;
    /// One line for the model.
    fn description(&self) -> &str;
    /// The JSON schema of the arguments object.
    fn parameters(&self) -> Value;
    fn effect(&self) -> Effect;
    /// What the permission policy judges: workspace-relative paths, or the command line.
    /// Refuses bad arguments and paths outside the workspace before anything is asked.
    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError>;
    fn run(&self, args: Value, context: ToolContext) -> ToolFuture;
}

/// The tools by name, in the order the model sees them.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    order: Vec<String>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.order).finish()
    }
}

impl Default for ToolRegistry {
    /// The full tool set.
    fn default() -> Self {
        let mut registry = ToolRegistry {
            tools: BTreeMap::new(),
            order: Vec::new(),
        };
        registry.register(Arc::new(read::Read));
        registry.register(Arc::new(list::List));
        registry.register(Arc::new(grep::Grep));
        registry.register(Arc::new(edit::Edit));
        registry.register(Arc::new(write::Write));
        registry.register(Arc::new(diagnostics::Diagnostics));
        for kind in navigate::Navigation::ALL {
            registry.register(Arc::new(kind));
        }
        registry.register(Arc::new(rename::Rename));
        registry.register(Arc::new(run_command::RunCommand));
        registry
    }
}

impl ToolRegistry {
    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let name = tool.name().to_owned();
        if self.tools.insert(name.clone(), tool).is_none() {
            self.order.push(name);
        }
    }

    /// Removes a tool (a front end that offers no shell, a read-only run).
    pub fn remove(&mut self, name: &str) {
        self.tools.remove(name);
        self.order.retain(|n| *n != name);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    pub fn is_mutating(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|tool| tool.effect() != Effect::ReadOnly)
    }

    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// The specs sent to the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.order
            .iter()
            .filter_map(|name| self.tools.get(name))
            .map(|tool| ToolSpec {
                name: tool.name().to_owned(),
                description: tool.description().to_owned(),
                parameters: tool.parameters(),
            })
            .collect()
    }
}

/// Parses a tool's arguments into its own type, with a message the model can act on.
pub(crate) fn parse_args<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    T::deserialize(args).map_err(|error| ToolError::InvalidArguments(error.to_string()))
}

/// An object schema with these properties, `required` listing the mandatory ones.
/// A tool's list answer: the lines, or `empty` when there are none, and a closing line saying
/// how many more were left out (`… {more} {more_note}`).
pub(crate) fn capped_listing(
    lines: &[String],
    more: usize,
    empty: &str,
    more_note: &str,
) -> String {
    let mut out = if lines.is_empty() {
        empty.to_owned()
    } else {
        lines.join("\n")
    };
    if more > 0 {
        out.push_str(&format!("\n… {more} {more_note}"));
    }
    out
}

pub(crate) fn object_schema(properties: Value, required: &[&str]) -> Value {
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::feedback::NoFeedback;

    /// A workspace in a temporary folder with `files` written, and a context over it.
    pub fn context(files: &[(&str, &str)]) -> (tempfile::TempDir, ToolContext) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let workspace = Workspace::new(dir.path(), Arc::new(NoFeedback)).unwrap();
        (
            dir,
            ToolContext {
                workspace,
                settings: ToolSettings::default(),
            },
        )
    }

    /// Runs `name` with `args` through the default registry.
    pub async fn call(
        context: &ToolContext,
        name: &str,
        args: Value,
    ) -> Result<ToolOutput, ToolError> {
        let registry = ToolRegistry::default();
        let tool = registry.get(name).unwrap();
        tool.subjects(&args, &context.workspace)?;
        tool.run(args, context.clone()).await
    }

    pub fn text(output: ToolOutput) -> String {
        match output {
            ToolOutput::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn registry_lists_every_tool_with_an_object_schema_and_knows_which_mutate() {
        let registry = ToolRegistry::default();
        for spec in registry.specs() {
            assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
            assert!(!spec.description.is_empty());
            assert!(spec.description.len() < 200, "{} is terse", spec.name);
        }
        assert!(registry.is_mutating("edit"));
        assert!(registry.is_mutating("write"));
        assert!(registry.is_mutating("rename"));
        assert!(registry.is_mutating("run_command"));
        assert!(!registry.is_mutating("read"));
        assert!(!registry.is_mutating("grep"));
        assert!(!registry.is_mutating("no_such_tool"));
        let tools_json = serde_json::to_string(&registry.specs()).unwrap();
        // The whole tool set stays small: about a thousand tokens at most.
        assert!(
            tools_json.len() < 4500,
            "tool specs are {} bytes",
            tools_json.len()
        );
    }
}
