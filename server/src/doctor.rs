//! `tack doctor`: which configuration was read and what is wrong with it, which languages the
//! workspace holds, and for each language the server that would serve it — its program, or
//! how to install it. The report is data with a `Display`; the binary prints it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{
    Config, ConfigSources, ConfigWarning, DEFAULT_DETECTION_LIMIT, ServerChoice, ServerStatus,
    detect_languages, find_in_path, is_config_var,
};

/// Everything `tack doctor` says about one workspace.
#[derive(Clone, Debug)]
pub struct DoctorReport {
    pub workspace_root: PathBuf,
    /// The configuration files, lowest layer first.
    pub config_files: Vec<(PathBuf, ConfigFileState)>,
    /// Whether `initializationOptions` were part of the sources.
    pub initialization_options: bool,
    /// Names (never values) of the `TACK_*` configuration variables that were set.
    pub env_vars: Vec<String>,
    pub warnings: Vec<ConfigWarning>,
    /// Each detected language, in id order, with the servers configured for it.
    pub languages: Vec<LanguageReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFileState {
    Read,
    Absent,
    /// Present but unreadable or not valid TOML (a warning says why).
    Skipped,
}

#[derive(Clone, Debug)]
pub struct LanguageReport {
    pub language: String,
    /// Empty when no enabled server serves the language.
    pub servers: Vec<ServerChoice>,
}

/// Loads the configuration from `sources`, walks `workspace_root`, and looks every server up
/// on `PATH`.
pub fn report(workspace_root: &Path, sources: &ConfigSources) -> DoctorReport {
    let loaded = Config::load(sources);
    let config_files = sources
        .config_files()
        .into_iter()
        .map(|path| {
            let state = if loaded.files_read.contains(&path) {
                ConfigFileState::Read
            } else if path.exists() {
                ConfigFileState::Skipped
            } else {
                ConfigFileState::Absent
            };
            (path, state)
        })
        .collect();
    let mut env_vars: Vec<String> = sources
        .env
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| is_config_var(name))
        .collect();
    env_vars.sort();
    let languages = detect_languages(workspace_root, &loaded.config, DEFAULT_DETECTION_LIMIT)
        .into_iter()
        .map(|language| LanguageReport {
            servers: loaded.config.server_choices(&language, &find_in_path),
            language,
        })
        .collect();
    DoctorReport {
        workspace_root: workspace_root.to_path_buf(),
        config_files,
        initialization_options: sources.initialization_options.is_some(),
        env_vars,
        warnings: loaded.warnings,
        languages,
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tack doctor: workspace {}",
            self.workspace_root.display()
        )?;
        writeln!(f)?;
        writeln!(f, "Configuration (lowest layer first):")?;
        writeln!(f, "  built-in defaults")?;
        for (path, state) in &self.config_files {
            let state = match state {
                ConfigFileState::Read => "read",
                ConfigFileState::Absent => "absent",
                ConfigFileState::Skipped => "skipped",
            };
            writeln!(f, "  {state:<8} {}", path.display())?;
        }
        if self.initialization_options {
            writeln!(f, "  initializationOptions")?;
        }
        if !self.env_vars.is_empty() {
            writeln!(f, "  environment: {}", self.env_vars.join(", "))?;
        }
        writeln!(f)?;
        if self.warnings.is_empty() {
            writeln!(f, "Warnings: none")?;
        } else {
            writeln!(f, "Warnings:")?;
            for warning in &self.warnings {
                writeln!(f, "  - {warning}")?;
            }
        }
        writeln!(f)?;
        if self.languages.is_empty() {
            return writeln!(f, "Languages in the workspace: none detected");
        }
        writeln!(f, "Languages in the workspace:")?;
        for language in &self.languages {
            writeln!(f, "  {}", language.language)?;
            if language.servers.is_empty() {
                writeln!(f, "    no language server configured")?;
            }
            for server in &language.servers {
                write!(f, "    {}", server.name)?;
                if let Some(primary) = &server.alternative_to {
                    write!(f, " (alternative to {primary})")?;
                }
                match &server.status {
                    ServerStatus::Selected(program) => writeln!(f, ": {}", program.display())?,
                    ServerStatus::Standby => writeln!(f, ": not needed")?,
                    ServerStatus::NotFound => {
                        write!(f, ": not found (`{}` is not on PATH", server.command)?;
                        if let Some(hint) = &server.install_hint {
                            write!(f, "; install with: {hint}")?;
                        }
                        writeln!(f, ")")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::fs;

    #[cfg(unix)]
    #[test]
    fn report_shows_files_warnings_languages_and_servers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        fs::create_dir_all(workspace.join("src")).unwrap();
        fs::write(
            workspace.join("src/main.c"),
            "int main(void) { return 0; }\n",
        )
        .unwrap();
        fs::write(workspace.join("tool.py"), "print(1)\n").unwrap();
        fs::write(workspace.join("notes.md"), "# notes\n").unwrap();
        let fake_clangd = dir.path().join("fake-clangd");
        fs::write(&fake_clangd, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&fake_clangd, fs::Permissions::from_mode(0o755)).unwrap();
        let user_file = dir.path().join("config.toml");
        fs::write(
            &user_file,
            format!(
                "[servers.clangd]\ncommand = {:?}\n\
                 [servers.pyright]\ncommand = \"/nonexistent/pyright-langserver\"\n\
                 [servers.pylsp]\ncommand = \"/nonexistent/pylsp\"\ninstal_hint = \"x\"\n",
                fake_clangd.to_str().unwrap()
            ),
        )
        .unwrap();
        let sources = ConfigSources {
            user_file: Some(user_file.clone()),
            workspace_root: Some(workspace.clone()),
            initialization_options: None,
            env: vec![
                ("TACK_MODEL".to_owned(), "secret-model-name".to_owned()),
                ("TACK_LOG".to_owned(), "debug".to_owned()),
            ],
        };

        let report = report(&workspace, &sources);
        assert_eq!(
            report.config_files,
            [
                (user_file.clone(), ConfigFileState::Read),
                (workspace.join("tack.toml"), ConfigFileState::Absent),
            ]
        );
        let languages: Vec<&str> = report
            .languages
            .iter()
            .map(|l| l.language.as_str())
            .collect();
        assert_eq!(languages, ["c", "markdown", "python"]);

        let text = report.to_string();
        let expected_lines = [
            format!("tack doctor: workspace {}", workspace.display()),
            format!("  read     {}", user_file.display()),
            format!("  absent   {}", workspace.join("tack.toml").display()),
            "  environment: TACK_MODEL".to_owned(),
            format!(
                "  - {}: unknown key `servers.pylsp.instal_hint` (did you mean `servers.pylsp.install_hint`?); ignored",
                user_file.display()
            ),
            "  c".to_owned(),
            format!("    clangd: {}", fake_clangd.display()),
            "  markdown".to_owned(),
            "    no language server configured".to_owned(),
            "  python".to_owned(),
            "    pylsp (alternative to pyright): not found (`/nonexistent/pylsp` is not on PATH; install with: pip install python-lsp-server)".to_owned(),
            "    pyright: not found (`/nonexistent/pyright-langserver` is not on PATH; install with: npm install -g pyright)".to_owned(),
        ];
        let lines: Vec<&str> = text.lines().collect();
        for expected in &expected_lines {
            assert!(
                lines.contains(&expected.as_str()),
                "missing line {expected:?} in:\n{text}"
            );
        }
        assert!(
            !text.contains("secret-model-name"),
            "values are never shown:\n{text}"
        );
        assert!(!text.contains("TACK_LOG"), "{text}");
    }

    #[test]
    fn report_on_an_empty_workspace_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        fs::create_dir(&workspace).unwrap();
        let user_file = dir.path().join("config.toml");
        fs::write(&user_file, "[servers\n").unwrap();
        let sources = ConfigSources {
            user_file: Some(user_file.clone()),
            workspace_root: Some(workspace.clone()),
            ..ConfigSources::default()
        };
        let report = report(&workspace, &sources);
        assert_eq!(
            report.config_files,
            [
                (user_file.clone(), ConfigFileState::Skipped),
                (workspace.join("tack.toml"), ConfigFileState::Absent),
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains("Languages in the workspace: none detected"),
            "{text}"
        );
        assert!(text.contains("invalid TOML at line 1"), "{text}");
        assert!(
            text.contains(&format!("  skipped  {}", user_file.display())),
            "{text}"
        );
    }
}
