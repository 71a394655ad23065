//! The agent: the turn loop, its tools, permissions, live compiler feedback and cancellation.
//!
//! - `protocol`: submissions in, events out — the only vocabulary front ends see.
//! - `session`: [`run_session`], the turn loop (context, model stream, tool calls, approvals,
//!   snapshots, diagnostics feedback, doom-loop guard, cancellation).
//! - `tools/`: one file per tool, in a [`ToolRegistry`]; `workspace`: path confinement and
//!   reading through unsaved buffers; `permissions`: allow / ask / deny with glob patterns;
//!   `feedback`: the [`LanguageFeedback`] trait the language-server side implements;
//!   `drafts`: the in-memory working copy of a run in the editor.

pub mod drafts;
pub mod feedback;
pub mod permissions;
pub mod protocol;
pub mod session;
pub mod tools;
pub mod workspace;

pub use drafts::{DraftFile, DraftSet};
pub use feedback::{
    FeedbackDiagnostic, FeedbackReport, FileDiagnostics, LanguageFeedback, NoFeedback, ServerState,
    Severity,
};
pub use permissions::{Action, Permissions, PermissionsError};
pub use protocol::{
    AgentEvent, DecisionSource, DiagnosticLine, ProposalDecision, RestoreDirection, Submission,
    TurnEnd,
};
pub use session::{INSTRUCTION_FILES, SessionConfig, SessionOutcome, run_session};
pub use tools::{Effect, Tool, ToolRegistry, ToolSettings};
pub use workspace::{PathError, Workspace};

#[cfg(test)]
mod tests;
