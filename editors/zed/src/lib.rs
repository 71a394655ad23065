//! The Zed extension for tack: registers `tack lsp` as the language server `tack` (see
//! `extension.toml` for the languages) and finds the binary — the `lsp.tack.binary` setting,
//! else `tack` on the worktree's `PATH` — with a message saying how to install it when it is
//! neither. The agent panel needs no extension: it runs `tack acp` from `agent_servers`.

use zed_extension_api::settings::LspSettings;
use zed_extension_api::{self as zed, LanguageServerId, Result};

/// The language server's id in `extension.toml` and in Zed's `lsp` settings.
pub const LANGUAGE_SERVER: &str = "tack";
/// What `tack` is started with unless `lsp.tack.binary.arguments` says otherwise.
pub const DEFAULT_ARGUMENTS: [&str; 1] = ["lsp"];
/// Said when no `tack` is found.
pub const NOT_FOUND: &str = "tack is not on PATH: install it (`cargo install --path server` in tack's repository) or set lsp.tack.binary.path in Zed's settings";

struct TackExtension;

/// The command for the server: the configured binary and arguments, else `found` (the binary
/// on `PATH`) with the default arguments.
pub fn command(
    configured_path: Option<String>,
    configured_arguments: Option<Vec<String>>,
    found: Option<String>,
) -> Result<(String, Vec<String>)> {
    let path = configured_path
        .or(found)
        .ok_or_else(|| NOT_FOUND.to_owned())?;
    let arguments = configured_arguments
        .unwrap_or_else(|| DEFAULT_ARGUMENTS.iter().map(|a| (*a).to_owned()).collect());
    Ok((path, arguments))
}

impl zed::Extension for TackExtension {
    fn new() -> Self {
        TackExtension
    }

    fn language_server_command(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        if language_server_id.as_ref() != LANGUAGE_SERVER {
            return Err(format!("unknown language server {language_server_id}"));
        }
        let binary = LspSettings::for_worktree(LANGUAGE_SERVER, worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let (path, arguments, env) = match binary {
            Some(binary) => (binary.path, binary.arguments, binary.env),
            None => (None, None, None),
        };
        let (command, args) = command(path, arguments, worktree.which(LANGUAGE_SERVER))?;
        let mut env_vars = worktree.shell_env();
        env_vars.extend(env.unwrap_or_default());
        Ok(zed::Command {
            command,
            args,
            env: env_vars,
        })
    }
}

zed::register_extension!(TackExtension);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../extension.toml");

    /// The manifest keys Zed documents (zed.dev/docs/extensions/developing-extensions and
    /// …/extensions/languages: "Language Servers", with `language_ids`).
    const TOP_LEVEL_KEYS: [&str; 8] = [
        "id",
        "name",
        "version",
        "schema_version",
        "authors",
        "description",
        "repository",
        "language_servers",
    ];
    const LANGUAGE_SERVER_KEYS: [&str; 3] = ["name", "languages", "language_ids"];
    /// Languages built into Zed (zed.dev/docs/languages, the ones marked as native).
    const ZED_LANGUAGES: [&str; 13] = [
        "Bash",
        "C",
        "C++",
        "CSS",
        "Go",
        "JavaScript",
        "JSON",
        "JSONC",
        "Markdown",
        "Python",
        "Rust",
        "TSX",
        "TypeScript",
    ];
    /// Language ids tack's built-in servers serve (server/src/config/defaults.toml).
    const TACK_DEFAULTS: &str = include_str!("../../../server/src/config/defaults.toml");

    #[test]
    fn the_manifest_names_only_documented_keys_and_languages_zed_ships() {
        let manifest: toml::Table = toml::from_str(MANIFEST).unwrap();
        for key in manifest.keys() {
            assert!(
                TOP_LEVEL_KEYS.contains(&key.as_str()),
                "undocumented key {key}"
            );
        }
        assert_eq!(manifest["schema_version"].as_integer(), Some(1));
        assert_eq!(manifest["id"].as_str(), Some(LANGUAGE_SERVER));
        let servers = manifest["language_servers"].as_table().unwrap();
        assert_eq!(servers.keys().collect::<Vec<_>>(), [LANGUAGE_SERVER]);
        let server = servers[LANGUAGE_SERVER].as_table().unwrap();
        for key in server.keys() {
            assert!(
                LANGUAGE_SERVER_KEYS.contains(&key.as_str()),
                "undocumented key {key}"
            );
        }
        let defaults: toml::Table = toml::from_str(TACK_DEFAULTS).unwrap();
        let served: Vec<&str> = defaults["servers"]
            .as_table()
            .unwrap()
            .values()
            .flat_map(|s| s["languages"].as_array().unwrap())
            .map(|l| l.as_str().unwrap())
            .collect();
        let languages = server["languages"].as_array().unwrap();
        let ids = server["language_ids"].as_table().unwrap();
        assert_eq!(languages.len(), ids.len());
        for language in languages {
            let language = language.as_str().unwrap();
            assert!(ZED_LANGUAGES.contains(&language), "Zed has no {language}");
            let id = ids[language].as_str().unwrap();
            assert!(
                served.contains(&id),
                "no tack server serves {id} ({language})"
            );
        }
    }

    #[test]
    fn the_binary_is_the_setting_then_path_else_a_message_saying_how_to_install() {
        let (path, args) = command(None, None, Some("/usr/bin/tack".into())).unwrap();
        assert_eq!(
            (path.as_str(), args),
            ("/usr/bin/tack", vec!["lsp".to_owned()])
        );
        let (path, args) = command(
            Some("/opt/tack".into()),
            Some(vec!["lsp".into(), "--stdio".into()]),
            Some("/usr/bin/tack".into()),
        )
        .unwrap();
        assert_eq!(path, "/opt/tack");
        assert_eq!(args, ["lsp", "--stdio"]);
        let missing = command(None, None, None).unwrap_err();
        assert!(missing.contains("cargo install"), "{missing}");
    }
}
