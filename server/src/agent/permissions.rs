//! Permissions: allow / ask / deny per tool, refined by glob patterns on the paths a tool
//! touches or on the command line it runs, read from the `[permissions]` config section.
//!
//! ```toml
//! [permissions]
//! "*" = "ask"                          # default for tools not listed
//! read = "allow"
//! edit = { "src/**" = "allow", "*.lock" = "deny" }
//! run_command = { "cargo test*" = "allow", "rm *" = "deny" }
//! ```
//!
//! Without configuration, read-only tools are allowed and mutating tools (including
//! `run_command`) ask. When several patterns of a tool match, the longest pattern wins (it is
//! the most specific); on a tie the stricter action wins. A call touching several paths gets
//! the strictest of their actions. `--yes` turns every "ask" into "allow"; explicit denies
//! stay. An "ask" that the user answered with "remember" is not asked again this session.
//!
//! Tools of MCP servers are named `<server>__<tool>`; a key `"<server>__*"` sets the rule
//! for every tool of that server that has no rule of its own. Their subject is their
//! arguments as compact JSON, matched like a command line (`*` spans anything).

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use super::protocol::DecisionSource;

/// What the policy says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        match text {
            "allow" => Some(Action::Allow),
            "ask" => Some(Action::Ask),
            "deny" => Some(Action::Deny),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PermissionsError {
    #[error(
        "[permissions] must be a table of tool = \"allow\" | \"ask\" | \"deny\" | {{ pattern = action }}"
    )]
    NotATable,
    #[error("[permissions] {key}: {value} is not \"allow\", \"ask\" or \"deny\"")]
    BadAction { key: String, value: String },
    #[error("[permissions] {tool}: bad pattern {pattern:?}: {reason}")]
    BadPattern {
        tool: String,
        pattern: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct PatternRule {
    pattern: String,
    matcher: GlobMatcher,
    action: Action,
}

#[derive(Debug, Clone)]
enum ToolRule {
    Always(Action),
    Patterns(Vec<PatternRule>),
}

/// A remembered user answer: for a tool, optionally only for one exact subject.
#[derive(Debug, Clone)]
struct Remembered {
    tool: String,
    subject: Option<String>,
    allow: bool,
}

/// The session's permission policy.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    rules: BTreeMap<String, ToolRule>,
    yes: bool,
    remembered: Vec<Remembered>,
}

impl Permissions {
    /// Parses the raw `[permissions]` section (`Config::section("permissions")`); `None`
    /// gives the defaults.
    pub fn from_config(section: Option<&toml::Value>) -> Result<Permissions, PermissionsError> {
        let mut permissions = Permissions::default();
        let Some(section) = section else {
            return Ok(permissions);
        };
        let table = section.as_table().ok_or(PermissionsError::NotATable)?;
        for (tool, value) in table {
            let rule = match value {
                toml::Value::String(text) => ToolRule::Always(parse_action(tool, text)?),
                toml::Value::Table(patterns) => {
                    let mut rules = Vec::new();
                    for (pattern, action) in patterns {
                        let key = format!("{tool}.{pattern:?}");
                        let action = match action {
                            toml::Value::String(text) => parse_action(&key, text)?,
                            other => {
                                return Err(PermissionsError::BadAction {
                                    key,
                                    value: other.to_string(),
                                });
                            }
                        };
                        rules.push(PatternRule {
                            matcher: compile(tool, pattern)?,
                            pattern: pattern.clone(),
                            action,
                        });
                    }
                    ToolRule::Patterns(rules)
                }
                other => {
                    return Err(PermissionsError::BadAction {
                        key: tool.clone(),
                        value: other.to_string(),
                    });
                }
            };
            permissions.rules.insert(tool.clone(), rule);
        }
        Ok(permissions)
    }

    /// `--yes`: every "ask" becomes "allow" (explicit denies stay).
    pub fn assume_yes(mut self) -> Permissions {
        self.yes = true;
        self
    }

    /// The decision for a call of `tool` touching `subjects` (workspace-relative paths, or
    /// the command line). `Ask` means the front end must be asked.
    pub fn decide(
        &self,
        tool: &str,
        is_mutating: bool,
        subjects: &[String],
    ) -> (Action, DecisionSource) {
        let mut action = self.policy(tool, is_mutating, subjects);
        if action == Action::Ask && self.yes {
            action = Action::Allow;
        }
        if action == Action::Ask
            && let Some(remembered) = self.remembered_answer(tool, subjects)
        {
            let action = if remembered {
                Action::Allow
            } else {
                Action::Deny
            };
            return (action, DecisionSource::Remembered);
        }
        (action, DecisionSource::Policy)
    }

    /// Remembers a user's answer for the session: for `subject` only when given, else for
    /// the whole tool.
    pub fn remember(&mut self, tool: &str, subject: Option<String>, allow: bool) {
        self.remembered.push(Remembered {
            tool: tool.to_owned(),
            subject,
            allow,
        });
    }

    fn remembered_answer(&self, tool: &str, subjects: &[String]) -> Option<bool> {
        self.remembered
            .iter()
            .rev()
            .find(|r| {
                r.tool == tool
                    && match &r.subject {
                        None => true,
                        Some(subject) => subjects.len() == 1 && subjects[0] == *subject,
                    }
            })
            .map(|r| r.allow)
    }

    fn policy(&self, tool: &str, is_mutating: bool, subjects: &[String]) -> Action {
        let fallback = || match self.rules.get("*") {
            Some(ToolRule::Always(action)) => *action,
            _ if is_mutating => Action::Ask,
            _ => Action::Allow,
        };
        let server_rule = || {
            let (server, _) = tool.split_once("__")?;
            self.rules.get(&format!("{server}__*"))
        };
        match self.rules.get(tool).or_else(server_rule) {
            None => fallback(),
            Some(ToolRule::Always(action)) => *action,
            Some(ToolRule::Patterns(rules)) => {
                if subjects.is_empty() {
                    return fallback();
                }
                subjects
                    .iter()
                    .map(|subject| {
                        rules
                            .iter()
                            .filter(|rule| rule.matcher.is_match(subject))
                            .max_by_key(|rule| (rule.pattern.len(), rule.action))
                            .map_or_else(fallback, |rule| rule.action)
                    })
                    .max()
                    .unwrap_or_else(fallback)
            }
        }
    }
}

fn parse_action(key: &str, text: &str) -> Result<Action, PermissionsError> {
    Action::parse(text).ok_or_else(|| PermissionsError::BadAction {
        key: key.to_owned(),
        value: format!("{text:?}"),
    })
}

/// Command lines match with `*` spanning anything; paths match with `*` staying within one
/// folder and `**` crossing folders.
fn compile(tool: &str, pattern: &str) -> Result<GlobMatcher, PermissionsError> {
    let is_command = tool == "run_command" || tool.contains("__");
    GlobBuilder::new(pattern)
        .literal_separator(!is_command)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| PermissionsError::BadPattern {
            tool: tool.to_owned(),
            pattern: pattern.to_owned(),
            reason: error.kind().to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Permissions {
        let value: toml::Value = toml::from_str(text).unwrap();
        Permissions::from_config(value.get("permissions")).unwrap()
    }

    fn action(p: &Permissions, tool: &str, mutating: bool, subject: &str) -> Action {
        p.decide(tool, mutating, &[subject.to_owned()]).0
    }

    #[test]
    fn defaults_allow_reading_and_ask_for_changes() {
        let p = Permissions::from_config(None).unwrap();
        assert_eq!(action(&p, "read", false, "a.c"), Action::Allow);
        assert_eq!(action(&p, "edit", true, "a.c"), Action::Ask);
        assert_eq!(action(&p, "run_command", true, "ls"), Action::Ask);
        let yes = p.assume_yes();
        assert_eq!(
            yes.decide("edit", true, &["a.c".into()]),
            (Action::Allow, DecisionSource::Policy)
        );
    }

    #[test]
    fn command_patterns_pick_the_most_specific_match() {
        let p = parse(
            r#"[permissions]
            "*" = "deny"
            read = "allow"
            run_command = { "*" = "ask", "cargo test*" = "allow", "cargo test --release*" = "deny", "rm *" = "deny" }
            edit = { "src/*.rs" = "allow", "src/**" = "ask", "*.lock" = "deny" }"#,
        );
        assert_eq!(
            action(&p, "run_command", true, "cargo test -p tack"),
            Action::Allow
        );
        assert_eq!(
            action(&p, "run_command", true, "cargo test --release x/y"),
            Action::Deny
        );
        assert_eq!(action(&p, "run_command", true, "rm -rf /"), Action::Deny);
        assert_eq!(action(&p, "run_command", true, "make"), Action::Ask);
        assert_eq!(action(&p, "edit", true, "src/lib.rs"), Action::Allow);
        assert_eq!(
            action(&p, "edit", true, "src/a/lib.rs"),
            Action::Ask,
            "* stays in one folder"
        );
        assert_eq!(action(&p, "edit", true, "Cargo.lock"), Action::Deny);
        assert_eq!(
            action(&p, "edit", true, "README.md"),
            Action::Deny,
            "falls back to \"*\""
        );
        assert_eq!(action(&p, "write", true, "x"), Action::Deny);
        assert_eq!(action(&p, "read", false, "x"), Action::Allow);
        // Several paths: the strictest wins.
        let both = p.decide("edit", true, &["src/lib.rs".into(), "Cargo.lock".into()]);
        assert_eq!(both.0, Action::Deny);
        // --yes keeps explicit denies.
        let yes = p.assume_yes();
        assert_eq!(action(&yes, "run_command", true, "make"), Action::Allow);
        assert_eq!(action(&yes, "run_command", true, "rm x"), Action::Deny);
    }

    #[test]
    fn mcp_tools_follow_their_own_rule_then_their_server_rule() {
        let p = parse(
            r#"[permissions]
            "fs__*" = "allow"
            fs__write_file = { "*secret*" = "deny", "*" = "ask" }"#,
        );
        assert_eq!(action(&p, "fs__read_file", false, "{}"), Action::Allow);
        let args = r#"{"path":"/w/a/b.txt"}"#;
        assert_eq!(
            action(&p, "fs__write_file", true, args),
            Action::Ask,
            "* spans slashes in arguments"
        );
        let secret = r#"{"path":"/w/secret.txt"}"#;
        assert_eq!(action(&p, "fs__write_file", true, secret), Action::Deny);
        assert_eq!(
            action(&p, "web__fetch", true, "{}"),
            Action::Ask,
            "another server: the defaults"
        );
        assert_eq!(action(&p, "web__fetch", false, "{}"), Action::Allow);
    }

    #[test]
    fn remembered_answers_apply_only_where_the_policy_asks() {
        let mut p = parse("[permissions]\nrun_command = { \"rm *\" = \"deny\" }\n");
        p.remember("run_command", Some("make".into()), true);
        assert_eq!(
            p.decide("run_command", true, &["make".into()]),
            (Action::Allow, DecisionSource::Remembered)
        );
        assert_eq!(action(&p, "run_command", true, "make install"), Action::Ask);
        p.remember("run_command", None, true);
        assert_eq!(
            action(&p, "run_command", true, "rm x"),
            Action::Deny,
            "policy deny stays"
        );
        p.remember("edit", None, false);
        assert_eq!(
            p.decide("edit", true, &["a".into()]),
            (Action::Deny, DecisionSource::Remembered)
        );
    }

    #[test]
    fn bad_configuration_is_an_error_naming_the_key() {
        let value: toml::Value = toml::from_str("[permissions]\nedit = \"maybe\"\n").unwrap();
        let error = Permissions::from_config(value.get("permissions")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "[permissions] edit: \"maybe\" is not \"allow\", \"ask\" or \"deny\""
        );
        let value: toml::Value =
            toml::from_str("[permissions]\nedit = { \"a[\" = \"allow\" }\n").unwrap();
        let error = Permissions::from_config(value.get("permissions")).unwrap_err();
        assert!(
            matches!(error, PermissionsError::BadPattern { .. }),
            "{error:?}"
        );
        let value = toml::Value::Integer(3);
        assert_eq!(
            Permissions::from_config(Some(&value)).unwrap_err(),
            PermissionsError::NotATable
        );
    }
}
