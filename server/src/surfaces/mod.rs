//! Editor surfaces: the agent in any LSP editor, through standard LSP only.
//!
//! The proxy side (`proxy/agent_flow.rs`) owns the state of one editor connection's agent:
//! runs, proposals, undo and redo, progress. This module holds what it is built from:
//! - `actions`: tack's code actions, commands and the prompts they become;
//! - `edits`: hunks, `TextEdit`s and `WorkspaceEdit`s shaped by client support;
//! - `instruction`: `// tack: …` instruction comments;
//! - `transcript`: the markdown transcript and progress lines;
//! - `feedback`: [`EditorFeedback`], the agent's view of the servers inside `tack lsp`;
//! - `session`: starting the agent session of a connection.

pub mod actions;
pub mod edits;
pub mod feedback;
pub mod instruction;
pub mod session;
pub mod transcript;

pub use feedback::{EditorFeedback, SharedBuffers};

/// What happens to a run's change set when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Offered as code actions to apply or reject (the default).
    #[default]
    Propose,
    /// Applied at once through `workspace/applyEdit`.
    Apply,
}

impl Mode {
    /// From the `[editor] mode` setting; anything else is `None`.
    pub fn parse(value: &str) -> Option<Mode> {
        match value {
            "propose" => Some(Mode::Propose),
            "apply" => Some(Mode::Apply),
            _ => None,
        }
    }
}
