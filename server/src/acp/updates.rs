//! The conversions between tack's agent protocol and ACP's types, kept pure so they are tested
//! on their own: a prompt's content blocks as the user turn's text, a tool call's ACP kind,
//! title and locations from its name and arguments, the permission options, and how a turn's
//! end answers the prompt.

use std::path::Path;

use agent_client_protocol::v1::schema::{
    ContentBlock, Cost, Diff, EmbeddedResourceResource, PermissionOption, PermissionOptionKind,
    StopReason, ToolCallContent, ToolCallLocation, ToolKind, UsageUpdate,
};
use serde_json::Value;

use crate::agent::TurnEnd;
use crate::agent::tools::FileEdit;
use crate::providers::Usage;

/// The permission options of every `session/request_permission`, by id.
pub const ALLOW_ONCE: &str = "allow_once";
pub const ALLOW_ALWAYS: &str = "allow_always";
pub const REJECT_ONCE: &str = "reject_once";

/// The slash commands tack offers in a session.
pub const COMMANDS: [(&str, &str); 2] = [
    (
        "undo",
        "Undo tack's last change (keeps your later edits, or refuses and names the lines)",
    ),
    ("redo", "Redo the change tack undid last"),
];

/// The user turn for a prompt: text as written, links to files as `@path` mentions (the agent
/// reads them itself), embedded text resources quoted with their URI.
pub fn prompt_text(blocks: &[ContentBlock]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(text) => parts.push(text.text.clone()),
            ContentBlock::ResourceLink(link) => parts.push(format!("@{}", mention(&link.uri))),
            ContentBlock::Resource(embedded) => {
                if let EmbeddedResourceResource::TextResourceContents(resource) = &embedded.resource
                {
                    parts.push(format!(
                        "<file uri=\"{}\">\n{}\n</file>",
                        resource.uri, resource.text
                    ));
                }
            }
            _ => tracing::debug!("a prompt block tack does not take was left out"),
        }
    }
    parts.join("\n")
}

/// A `file://` URI as a path; other URIs as they are.
fn mention(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .filter(|url| url.scheme() == "file")
        .and_then(|url| url.to_file_path().ok())
        .map_or_else(|| uri.to_owned(), |path| path.display().to_string())
}

/// The slash command a prompt is, if it is one: `/undo` → `undo`.
pub fn slash_command(text: &str) -> Option<&'static str> {
    let word = text.trim().strip_prefix('/')?;
    COMMANDS
        .iter()
        .map(|(name, _)| *name)
        .find(|name| word == *name)
}

/// ACP's kind for one of tack's tools.
pub fn tool_kind(tool: &str) -> ToolKind {
    match tool {
        "read" | "list" | "diagnostics" => ToolKind::Read,
        "edit" | "write" | "rename" => ToolKind::Edit,
        "grep" | "definition" | "references" | "hover" | "symbols" => ToolKind::Search,
        "run_command" => ToolKind::Execute,
        _ => ToolKind::Other,
    }
}

/// What the client shows for a call: the tool and what it works on.
pub fn tool_title(tool: &str, arguments: &Value) -> String {
    let subject = ["command", "pattern", "path", "query", "symbol"]
        .iter()
        .find_map(|key| arguments[*key].as_str())
        .map(str::to_owned)
        .or_else(|| {
            let paths: Vec<&str> = arguments["edits"]
                .as_array()?
                .iter()
                .filter_map(|edit| edit["path"].as_str())
                .collect();
            (!paths.is_empty()).then(|| paths.join(", "))
        });
    match subject {
        Some(subject) => format!("{tool} {subject}"),
        None => tool.to_owned(),
    }
}

/// The files a call works on, absolute, with the line it starts at when it names one.
pub fn tool_locations(root: &Path, arguments: &Value) -> Vec<ToolCallLocation> {
    let line = ["start_line", "line"]
        .iter()
        .find_map(|key| arguments[*key].as_u64())
        .and_then(|line| u32::try_from(line).ok());
    let mut paths: Vec<&str> = arguments["path"].as_str().into_iter().collect();
    if let Some(edits) = arguments["edits"].as_array() {
        paths.extend(edits.iter().filter_map(|edit| edit["path"].as_str()));
    }
    paths.dedup();
    paths
        .into_iter()
        .map(|path| ToolCallLocation::new(root.join(path)).line(line))
        .collect()
}

/// The diffs of proposed edits, whole files before and after.
pub fn diffs(edits: &[FileEdit]) -> Vec<ToolCallContent> {
    edits
        .iter()
        .map(|edit| {
            ToolCallContent::Diff(
                Diff::new(edit.path.clone(), edit.after.clone()).old_text(edit.before.clone()),
            )
        })
        .collect()
}

/// The three answers to a permission request.
pub fn permission_options() -> Vec<PermissionOption> {
    vec![
        PermissionOption::new(ALLOW_ONCE, "Allow", PermissionOptionKind::AllowOnce),
        PermissionOption::new(
            ALLOW_ALWAYS,
            "Allow for this session",
            PermissionOptionKind::AllowAlways,
        ),
        PermissionOption::new(REJECT_ONCE, "Deny", PermissionOptionKind::RejectOnce),
    ]
}

/// `(allow, remember)` for the option the user picked; anything unknown denies.
pub fn permission_answer(option: &str) -> (bool, bool) {
    match option {
        ALLOW_ONCE => (true, false),
        ALLOW_ALWAYS => (true, true),
        _ => (false, false),
    }
}

/// The context window's fill after a model call (`usage` of that call, `window` from the
/// catalog) and the session's cost so far; `None` when the usage or the window is unknown.
pub fn usage_update(
    usage: Option<&Usage>,
    window: Option<u64>,
    cost_usd: Option<f64>,
) -> Option<UsageUpdate> {
    let used = usage.map(|usage| usage.total_input() + usage.output)?;
    let update = UsageUpdate::new(used, window?);
    Some(update.cost(cost_usd.map(|usd| Cost::new(usd, "USD"))))
}

/// How a turn's end answers the prompt: a stop reason, or an error message when the model
/// call failed (`last_error` is what the session said).
pub fn stop_reason(end: &TurnEnd, last_error: Option<&str>) -> Result<StopReason, String> {
    match end {
        TurnEnd::Completed | TurnEnd::DoomLoop => Ok(StopReason::EndTurn),
        TurnEnd::MaxOutputTokens => Ok(StopReason::MaxTokens),
        TurnEnd::ContentFilter => Ok(StopReason::Refusal),
        TurnEnd::MaxTurns => Ok(StopReason::MaxTurnRequests),
        TurnEnd::Cancelled => Ok(StopReason::Cancelled),
        TurnEnd::Failed => Err(last_error.unwrap_or("the model call failed").to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::{ResourceLink, TextContent};
    use serde_json::json;

    #[test]
    fn prompts_keep_text_and_turn_file_links_into_mentions() {
        let blocks = vec![
            ContentBlock::Text(TextContent::new("fix the build in")),
            ContentBlock::ResourceLink(ResourceLink::new("main.c", "file:///w/src/main.c")),
        ];
        assert_eq!(prompt_text(&blocks), "fix the build in\n@/w/src/main.c");
        assert_eq!(slash_command(" /undo "), Some("undo"));
        assert_eq!(slash_command("/undone"), None);
        assert_eq!(slash_command("undo"), None);
    }

    #[test]
    fn tool_calls_get_a_kind_a_title_and_locations() {
        assert_eq!(tool_kind("edit"), ToolKind::Edit);
        assert_eq!(tool_kind("rename"), ToolKind::Edit);
        assert_eq!(tool_kind("run_command"), ToolKind::Execute);
        assert_eq!(tool_kind("grep"), ToolKind::Search);
        assert_eq!(tool_kind("read"), ToolKind::Read);
        assert_eq!(tool_kind("mcp_thing"), ToolKind::Other);
        let read = json!({"path": "src/a.c", "start_line": 40});
        assert_eq!(tool_title("read", &read), "read src/a.c");
        let locations = tool_locations(Path::new("/w"), &read);
        assert_eq!(locations.len(), 1);
        assert_eq!(locations[0].path, Path::new("/w/src/a.c"));
        assert_eq!(locations[0].line, Some(40));
        let multi = json!({"edits": [{"path": "a.c", "old": "x", "new": "y"}, {"path": "b.c", "old": "x", "new": "y"}]});
        assert_eq!(tool_title("edit", &multi), "edit a.c, b.c");
        assert_eq!(tool_locations(Path::new("/w"), &multi).len(), 2);
        assert_eq!(
            tool_title("run_command", &json!({"command": "make"})),
            "run_command make"
        );
        assert_eq!(tool_title("diagnostics", &json!({})), "diagnostics");
    }

    #[test]
    fn usage_is_reported_only_when_the_window_is_known() {
        let usage = Usage {
            input_uncached: 900,
            cache_read: 100,
            output: 50,
            ..Usage::default()
        };
        let update = usage_update(Some(&usage), Some(200_000), Some(0.25)).unwrap();
        assert_eq!((update.used, update.size), (1050, 200_000));
        assert_eq!(update.cost.unwrap().currency, "USD");
        assert!(usage_update(Some(&usage), None, None).is_none());
        assert!(usage_update(None, Some(200_000), None).is_none());
    }

    #[test]
    fn permission_answers_and_stop_reasons() {
        let ids: Vec<String> = permission_options()
            .iter()
            .map(|o| o.option_id.0.to_string())
            .collect();
        assert_eq!(ids, [ALLOW_ONCE, ALLOW_ALWAYS, REJECT_ONCE]);
        assert_eq!(permission_answer(ALLOW_ALWAYS), (true, true));
        assert_eq!(permission_answer("something else"), (false, false));
        assert_eq!(
            stop_reason(&TurnEnd::Cancelled, None),
            Ok(StopReason::Cancelled)
        );
        assert_eq!(
            stop_reason(&TurnEnd::MaxTurns, None),
            Ok(StopReason::MaxTurnRequests)
        );
        assert_eq!(
            stop_reason(&TurnEnd::Failed, Some("401 from the provider")),
            Err("401 from the provider".to_owned())
        );
    }
}
