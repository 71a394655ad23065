//! tack's code actions and commands as LSP JSON, and the prompts a code action turns into.
//!
//! Listing code actions never calls the model: every action carries a `command` that starts
//! the work when the user picks it.

use serde_json::{Value, json};

/// Every command tack runs itself (advertised in `executeCommandProvider`).
pub const COMMANDS: [&str; 19] = [
    "tack.ask",
    "tack.fix",
    "tack.fixFile",
    "tack.explain",
    "tack.refactor",
    "tack.instruction",
    "tack.apply",
    "tack.applied",
    "tack.reject",
    "tack.applyHunk",
    "tack.rejectHunk",
    "tack.undo",
    "tack.redo",
    "tack.restore",
    "tack.cancel",
    "tack.status",
    "tack.newSession",
    "tack.setModel",
    "tack.showTranscript",
];

/// The code action kinds tack offers.
pub const KINDS: [&str; 3] = ["quickfix", "refactor.rewrite", "refactor"];

/// Adds tack's commands and code action kinds to the merged server capabilities.
pub fn add_capabilities(capabilities: &mut Value) {
    let commands = &mut capabilities["executeCommandProvider"]["commands"];
    if !commands.is_array() {
        *commands = json!([]);
    }
    if let Some(commands) = commands.as_array_mut() {
        commands.extend(COMMANDS.iter().map(|c| json!(c)));
    }
    let provider = &mut capabilities["codeActionProvider"];
    match provider {
        Value::Bool(true) => {}
        Value::Object(options) => {
            if let Some(kinds) = options
                .get_mut("codeActionKinds")
                .and_then(Value::as_array_mut)
            {
                for kind in KINDS {
                    if !kinds.iter().any(|k| k == kind) {
                        kinds.push(json!(kind));
                    }
                }
            }
        }
        _ => *provider = json!({ "codeActionKinds": KINDS }),
    }
}

pub fn is_tack_command(command: &str) -> bool {
    COMMANDS.contains(&command)
}

/// A code action that runs `command` with one argument object.
pub fn action(title: &str, kind: &str, command: &str, argument: Value) -> Value {
    json!({
        "title": title,
        "kind": kind,
        "command": { "title": title, "command": command, "arguments": [argument] },
    })
}

/// "Fix with tack" on one diagnostic.
pub fn fix(uri: &str, diagnostic: &Value) -> Value {
    let mut fix = action(
        "Fix with tack",
        "quickfix",
        "tack.fix",
        json!({ "uri": uri, "diagnostic": diagnostic }),
    );
    fix["diagnostics"] = json!([diagnostic]);
    fix
}

/// Whether a request's `context.only` lets a kind through.
pub fn kind_wanted(only: Option<&Vec<Value>>, kind: &str) -> bool {
    let Some(only) = only else { return true };
    only.iter().filter_map(Value::as_str).any(|wanted| {
        wanted.is_empty() || kind == wanted || kind.starts_with(&format!("{wanted}."))
    })
}

/// 1-based lines `first..=last` of `text`, numbered, for a prompt.
pub fn numbered_lines(text: &str, first: usize, last: usize) -> String {
    text.lines()
        .enumerate()
        .skip(first.saturating_sub(1))
        .take(last.saturating_sub(first) + 1)
        .map(|(index, line)| format!("{:>4} | {line}\n", index + 1))
        .collect()
}

/// The user turn for "Fix with tack".
pub fn fix_prompt(relative: &str, text: &str, diagnostic: &Value) -> String {
    let line = diagnostic["range"]["start"]["line"].as_u64().unwrap_or(0) as usize + 1;
    let severity = match diagnostic["severity"].as_u64() {
        Some(2) => "warning",
        Some(3) => "note",
        Some(4) => "hint",
        _ => "error",
    };
    let message = diagnostic["message"].as_str().unwrap_or("");
    let source = diagnostic["source"]
        .as_str()
        .map(|source| format!(" ({source})"))
        .unwrap_or_default();
    format!(
        "Fix this {severity} in {relative}:{line}{source}: {message}\n\n{}\nMake the smallest \
         change that fixes it, and fix anything the change breaks.",
        numbered_lines(text, line.saturating_sub(3).max(1), line + 3)
    )
}

/// The user turn for a selection: `what` is the instruction, the selection follows.
pub fn selection_prompt(
    what: &str,
    relative: &str,
    text: &str,
    first: usize,
    last: usize,
) -> String {
    format!(
        "{what}\n\nThe selection, {relative}:{first}-{last}:\n{}",
        numbered_lines(text, first, last)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fix_carries_its_diagnostic_and_a_command() {
        let diagnostic = json!({"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 3}}, "message": "boom", "severity": 1});
        let action = fix("file:///w/a.c", &diagnostic);
        assert_eq!(action["title"], "Fix with tack");
        assert_eq!(action["kind"], "quickfix");
        assert_eq!(action["diagnostics"][0], diagnostic);
        assert_eq!(action["command"]["command"], "tack.fix");
        assert!(is_tack_command("tack.fix"));
        assert!(!is_tack_command("clangd.applyFix"));
    }

    #[test]
    fn capabilities_gain_commands_and_kinds() {
        let mut none = json!({});
        add_capabilities(&mut none);
        assert_eq!(none["codeActionProvider"]["codeActionKinds"][0], "quickfix");
        assert!(
            none["executeCommandProvider"]["commands"]
                .as_array()
                .unwrap()
                .contains(&json!("tack.undo"))
        );
        let mut some = json!({
            "codeActionProvider": {"codeActionKinds": ["quickfix", "source"], "resolveProvider": true},
            "executeCommandProvider": {"commands": ["clangd.applyFix"]},
        });
        add_capabilities(&mut some);
        assert_eq!(
            some["codeActionProvider"]["codeActionKinds"],
            json!(["quickfix", "source", "refactor.rewrite", "refactor"])
        );
        assert_eq!(some["codeActionProvider"]["resolveProvider"], true);
        assert_eq!(
            some["executeCommandProvider"]["commands"][0],
            "clangd.applyFix"
        );
    }

    #[test]
    fn only_filters_by_kind_prefix() {
        let only = vec![json!("refactor")];
        assert!(kind_wanted(Some(&only), "refactor.rewrite"));
        assert!(!kind_wanted(Some(&only), "quickfix"));
        assert!(kind_wanted(None, "quickfix"));
    }

    #[test]
    fn prompts_quote_numbered_lines_around_the_problem() {
        let text = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let diagnostic = json!({"range": {"start": {"line": 4, "character": 0}}, "message": "bad", "source": "clang"});
        let prompt = fix_prompt("src/x.c", text, &diagnostic);
        assert!(
            prompt.starts_with("Fix this error in src/x.c:5 (clang): bad"),
            "{prompt}"
        );
        assert!(
            prompt.contains("   2 | b\n") && prompt.contains("   8 | h\n"),
            "{prompt}"
        );
        assert!(!prompt.contains("   1 | a"), "{prompt}");
    }
}
