//! The `[context]` configuration section.
//!
//! ```toml
//! [context]
//! budget = 6000          # tokens of context for an editor request
//! repo_map_tokens = 1024 # tokens of repository map (in `tack run`'s system prompt, and
//!                        # at most this much in an editor request); 0 turns the map off
//! max_file_bytes = 262144  # larger files are not parsed for the map
//! lsp_timeout_ms = 1500  # how long definitions from the language servers are waited for
//! repo_map_wait_ms = 2000  # how long `tack run` waits for a map it must build from scratch
//! ```

use std::time::Duration;

/// What `[context]` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSettings {
    pub budget: usize,
    pub repo_map_tokens: usize,
    pub max_file_bytes: u64,
    pub lsp_timeout: Duration,
    /// How long `tack run`'s first request waits for the repository map. A warm map takes
    /// tens of milliseconds; a first build in a large tree can take seconds, and then the
    /// request goes without it while the build fills the tags cache for the next run.
    pub repo_map_wait: Duration,
}

impl Default for ContextSettings {
    fn default() -> Self {
        ContextSettings {
            budget: 6000,
            // The agent's first request is about 1k tokens with the full tool set; the map
            // keeps it within 3k.
            repo_map_tokens: 1024,
            max_file_bytes: crate::syntax::repo_map::DEFAULT_MAX_FILE_BYTES,
            lsp_timeout: Duration::from_millis(1500),
            repo_map_wait: Duration::from_millis(2000),
        }
    }
}

impl ContextSettings {
    /// From the `[context]` table (absent: the defaults). A value of the wrong type is
    /// named in the returned warnings and the default kept.
    pub fn from_config(section: Option<&toml::Value>) -> (ContextSettings, Vec<String>) {
        let mut settings = ContextSettings::default();
        let mut warnings = Vec::new();
        let Some(table) = section.and_then(toml::Value::as_table) else {
            if section.is_some() {
                warnings.push("[context] must be a table; using the defaults".to_owned());
            }
            return (settings, warnings);
        };
        let mut number = |key: &str| -> Option<u64> {
            let value = table.get(key)?;
            match value.as_integer().and_then(|n| u64::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    warnings.push(format!(
                        "[context] {key} = {value} is not a whole number of 0 or more; using the default"
                    ));
                    None
                }
            }
        };
        if let Some(n) = number("budget") {
            settings.budget = n as usize;
        }
        if let Some(n) = number("repo_map_tokens") {
            settings.repo_map_tokens = n as usize;
        }
        if let Some(n) = number("max_file_bytes") {
            settings.max_file_bytes = n;
        }
        if let Some(n) = number("lsp_timeout_ms") {
            settings.lsp_timeout = Duration::from_millis(n);
        }
        if let Some(n) = number("repo_map_wait_ms") {
            settings.repo_map_wait = Duration::from_millis(n);
        }
        for key in table.keys() {
            if ![
                "budget",
                "repo_map_tokens",
                "max_file_bytes",
                "lsp_timeout_ms",
                "repo_map_wait_ms",
            ]
            .contains(&key.as_str())
            {
                warnings.push(format!(
                    "[context] {key} is not a setting (budget, repo_map_tokens, max_file_bytes, lsp_timeout_ms, repo_map_wait_ms)"
                ));
            }
        }
        (settings, warnings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_with_defaults_and_bad_values_named() {
        let (defaults, warnings) = ContextSettings::from_config(None);
        assert_eq!(defaults, ContextSettings::default());
        assert!(warnings.is_empty());
        let table: toml::Value =
            toml::from_str("budget = 900\nrepo_map_tokens = -1\nmax_files = 3\n").unwrap();
        let (settings, warnings) = ContextSettings::from_config(Some(&table));
        assert_eq!(settings.budget, 900);
        assert_eq!(settings.repo_map_tokens, 1024);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("repo_map_tokens = -1"), "{warnings:?}");
        assert!(warnings[1].contains("max_files"), "{warnings:?}");
    }
}
