//! The run transcript as markdown: one file per editor session, appended as events stream,
//! which the editor can open (`window/showDocument`) and watch grow. Also the one-line
//! progress messages shown while a run works.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::agent::{AgentEvent, ProposalDecision, RestoreDirection, TurnEnd};

/// Where an editor session's transcript goes: `<data dir>/transcripts/<session>.md`.
pub fn path(data_dir: &Path, session: &str) -> PathBuf {
    data_dir.join("transcripts").join(format!("{session}.md"))
}

/// Appends `text`; a transcript that cannot be written is logged, never fatal.
pub fn append(path: &Path, text: &str) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = written {
        tracing::warn!(%error, path = %path.display(), "cannot write the transcript");
    }
}

/// The markdown for one event (`None` for events the transcript leaves out).
pub fn render(event: &AgentEvent) -> Option<String> {
    Some(match event {
        AgentEvent::TurnStarted { text } => format!("\n## Request\n\n{text}\n\n"),
        AgentEvent::TextDelta { text } => text.clone(),
        AgentEvent::ThinkingDelta { .. } | AgentEvent::Usage { .. } => return None,
        AgentEvent::SessionStarted(_)
        | AgentEvent::ContextSent { .. }
        | AgentEvent::ModelCall(_)
        | AgentEvent::SessionEnded { .. } => return None,
        AgentEvent::ToolCallBegun {
            name, arguments, ..
        } => format!("\n\n- **{name}** `{}`\n", shorten(arguments, 160)),
        AgentEvent::ToolCallEnded {
            summary, is_error, ..
        } => {
            let mark = if *is_error { "✗" } else { "→" };
            format!(
                "  {mark} {}\n",
                shorten(summary.lines().next().unwrap_or(""), 200)
            )
        }
        AgentEvent::ApprovalAsked { tool, summary, .. } => {
            format!("\n> approval asked for **{tool}**\n\n```\n{summary}\n```\n")
        }
        AgentEvent::Decision {
            allowed, source, ..
        } => format!(
            "  {} ({source:?})\n",
            if *allowed { "allowed" } else { "denied" }
        ),
        AgentEvent::EditApplied { diff, .. } | AgentEvent::EditDrafted { diff, .. } => {
            format!("\n```diff\n{}\n```\n", diff.trim_end())
        }
        AgentEvent::DiagnosticsChanged {
            introduced,
            fixed,
            pending_servers,
            ..
        } => {
            let mut line = format!(
                "  diagnostics: {} introduced, {} fixed",
                introduced.len(),
                fixed.len()
            );
            for d in introduced {
                line.push_str(&format!("\n  - {}:{} {}", d.path, d.line, d.message));
            }
            if !pending_servers.is_empty() {
                line.push_str(&format!(
                    "\n  (no answer yet from {})",
                    pending_servers.join(", ")
                ));
            }
            line.push('\n');
            line
        }
        AgentEvent::Compacted { tokens_before, .. } => {
            format!("\n_(history compacted at {tokens_before} tokens)_\n")
        }
        AgentEvent::TurnDone { end } => format!("\n\n_{}_\n", end_text(end)),
        AgentEvent::Error { message } => format!("\n**error:** {message}\n"),
        AgentEvent::ProposalShown {
            summary,
            files,
            hunks,
            ..
        } => format!(
            "\n**Proposal:** {summary} ({} file(s), {hunks} hunk(s)): {}\n",
            files.len(),
            files.join(", ")
        ),
        AgentEvent::ProposalDecided {
            decision,
            files,
            hunk,
            reason,
            ..
        } => {
            let what = match decision {
                ProposalDecision::Applied => "applied",
                ProposalDecision::Rejected => "rejected",
                ProposalDecision::Refused => "refused",
            };
            let hunk = hunk.map(|h| format!(" hunk {}", h + 1)).unwrap_or_default();
            let reason = reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!("\n_{what}{hunk} in {}{reason}_\n", files.join(", "))
        }
        AgentEvent::ChangesRestored { kind, files, .. } => {
            let verb = match kind {
                RestoreDirection::Undo => "undone",
                RestoreDirection::Redo => "redone",
            };
            format!("\n_{verb}: {}_\n", files.join(", "))
        }
    })
}

/// The short progress line for an event, if it is worth one.
pub fn progress(event: &AgentEvent) -> Option<String> {
    match event {
        AgentEvent::ToolCallBegun {
            name, arguments, ..
        } => {
            let path = serde_json::from_str::<serde_json::Value>(arguments)
                .ok()
                .and_then(|args| args["path"].as_str().map(str::to_owned));
            Some(match path {
                Some(path) => format!("{name} {path}"),
                None => name.clone(),
            })
        }
        AgentEvent::DiagnosticsChanged {
            introduced, fixed, ..
        } => Some(format!(
            "diagnostics: {} introduced, {} fixed",
            introduced.len(),
            fixed.len()
        )),
        AgentEvent::ApprovalAsked { tool, .. } => Some(format!("waiting for approval: {tool}")),
        _ => None,
    }
}

pub fn end_text(end: &TurnEnd) -> &'static str {
    match end {
        TurnEnd::Completed => "done",
        TurnEnd::MaxOutputTokens => "stopped: the model hit its output limit",
        TurnEnd::ContentFilter => "stopped: the provider filtered the answer",
        TurnEnd::MaxTurns => "stopped: too many model requests in one run",
        TurnEnd::DoomLoop => "stopped: the same failing call repeated",
        TurnEnd::Cancelled => "cancelled",
        TurnEnd::Failed => "failed",
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_render_as_bullets_and_progress_names_the_path() {
        let begun = AgentEvent::ToolCallBegun {
            id: "c1".into(),
            name: "edit".into(),
            arguments: r#"{"path":"src/a.c","old":"x","new":"y"}"#.into(),
        };
        assert!(render(&begun).unwrap().starts_with("\n\n- **edit** `{"));
        assert_eq!(progress(&begun).as_deref(), Some("edit src/a.c"));
        assert_eq!(
            render(&AgentEvent::TurnDone {
                end: TurnEnd::Cancelled
            })
            .as_deref(),
            Some("\n\n_cancelled_\n")
        );
    }
}
