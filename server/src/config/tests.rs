//! Tests of loading, layering, warnings, server choice and language detection.

use super::*;
use serde_json::json;
use std::fs;

/// A user file and a workspace in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("home")).unwrap();
        fs::create_dir_all(dir.path().join("workspace")).unwrap();
        Self { dir }
    }

    fn user_file(&self) -> PathBuf {
        self.dir.path().join("home/config.toml")
    }

    fn project_file(&self) -> PathBuf {
        self.dir.path().join("workspace").join(PROJECT_FILE_NAME)
    }

    fn write_user(&self, text: &str) {
        fs::write(self.user_file(), text).unwrap();
    }

    fn write_project(&self, text: &str) {
        fs::write(self.project_file(), text).unwrap();
    }

    fn sources(&self) -> ConfigSources {
        ConfigSources {
            user_file: Some(self.user_file()),
            workspace_root: Some(self.dir.path().join("workspace")),
            initialization_options: None,
            env: Vec::new(),
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn clangd_args(sources: &ConfigSources) -> Vec<String> {
    let loaded = Config::load(sources);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config.servers["clangd"].args.clone()
}

#[test]
fn built_in_defaults_load_cleanly_and_name_the_servers() {
    let loaded = Config::load(&ConfigSources::default());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.files_read.is_empty());
    let servers = &loaded.config.servers;
    for name in [
        "rust-analyzer",
        "clangd",
        "pyright",
        "pylsp",
        "typescript-language-server",
        "tsc",
        "gopls",
        "bash-language-server",
    ] {
        let server = servers
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(server.enabled, "{name}");
        assert!(!server.languages.is_empty(), "{name}");
        assert!(server.install_hint.is_some(), "{name}");
        for language in &server.languages {
            assert!(
                loaded.config.languages.contains_key(language),
                "{name} serves {language}, which no [languages] entry maps files to"
            );
        }
    }
    assert_eq!(servers["pyright"].command, "pyright-langserver");
    assert_eq!(servers["pyright"].args, ["--stdio"]);
    assert_eq!(servers["pylsp"].alternative_to.as_deref(), Some("pyright"));
    assert_eq!(servers["tsc"].args, ["--lsp", "--stdio"]);
    assert_eq!(
        servers["tsc"].alternative_to.as_deref(),
        Some("typescript-language-server")
    );
    assert_eq!(servers["bash-language-server"].args, ["start"]);
    assert_eq!(
        servers["clangd"].languages,
        ["c", "cpp", "objective-c", "objective-cpp", "cuda"]
    );
    assert!(loaded.config.sections.is_empty());
}

#[test]
fn each_layer_overrides_the_one_below() {
    let fixture = Fixture::new();
    let mut sources = fixture.sources();
    assert_eq!(clangd_args(&sources), Vec::<String>::new());

    fixture.write_user("[servers.clangd]\nargs = [\"--user\"]\n");
    assert_eq!(clangd_args(&sources), ["--user"]);

    fixture.write_project("[servers.clangd]\nargs = [\"--project\"]\n");
    assert_eq!(clangd_args(&sources), ["--project"]);

    sources.initialization_options = Some(json!({"servers": {"clangd": {"args": ["--init"]}}}));
    assert_eq!(clangd_args(&sources), ["--init"]);

    sources.env = env(&[("TACK_SERVERS__CLANGD__ARGS", "[\"--env\"]")]);
    assert_eq!(clangd_args(&sources), ["--env"]);

    let loaded = Config::load(&sources);
    assert_eq!(
        loaded.files_read,
        [fixture.user_file(), fixture.project_file()]
    );
}

#[test]
fn tables_merge_deeply_and_arrays_replace() {
    let fixture = Fixture::new();
    fixture.write_user(
        "model = \"openai/gpt\"\n\
         [servers.clangd]\nargs = [\"--a\", \"--b\"]\n\
         [servers.clangd.settings.clangd]\nfallbackFlags = [\"-std=c11\"]\n\
         [agent]\nmax_turns = 10\nauto_apply = false\n",
    );
    fixture.write_project(
        "[servers.clangd]\nargs = [\"--c\"]\n\
         [servers.clangd.settings.clangd]\narguments = [\"--x\"]\n\
         [agent]\nauto_apply = true\n",
    );
    let loaded = Config::load(&fixture.sources());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    let clangd = &config.servers["clangd"];
    assert_eq!(clangd.args, ["--c"]);
    assert_eq!(
        clangd.command, "clangd",
        "fields no layer touches keep the default"
    );
    assert_eq!(
        clangd.settings,
        json!({"clangd": {"fallbackFlags": ["-std=c11"], "arguments": ["--x"]}})
    );
    let agent = config.section("agent").and_then(Value::as_table).unwrap();
    assert_eq!(agent["max_turns"].as_integer(), Some(10));
    assert_eq!(agent["auto_apply"].as_bool(), Some(true));
    assert_eq!(
        config.section("model").and_then(Value::as_str),
        Some("openai/gpt")
    );
}

#[test]
fn sections_of_other_modules_pass_through_without_warnings() {
    let fixture = Fixture::new();
    fixture.write_project(
        "model = \"anthropic/claude\"\n\
         [providers.local]\nbase_url = \"http://localhost:11434\"\nanything = [1, 2]\n\
         [agent]\nwhatever = 1\n[snapshots]\nx = 1\n[context]\nbudget = 8000\n\
         [ledger]\ndir = \"/tmp\"\n[mcp.fs]\ncommand = \"fs\"\n\
         [permissions]\nedit = \"ask\"\n",
    );
    let loaded = Config::load(&fixture.sources());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let names: Vec<&str> = loaded.config.sections.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "agent",
            "context",
            "ledger",
            "mcp",
            "model",
            "permissions",
            "providers",
            "snapshots"
        ]
    );
    let providers = loaded.config.section("providers").unwrap();
    assert_eq!(
        providers["local"]["base_url"].as_str(),
        Some("http://localhost:11434")
    );
}

#[test]
fn environment_variables_map_to_nested_keys() {
    let sources = ConfigSources {
        env: env(&[
            ("TACK_SERVERS__CLANGD__COMMAND", "/opt/clangd"),
            ("TACK_MODEL", "ollama/qwen"),
            ("TACK_SERVERS__RUST_ANALYZER__ENABLED", "false"),
            (
                "TACK_SERVERS__PYRIGHT__ENV__NODE_OPTIONS",
                "--max-old-space-size=4096",
            ),
            (
                "TACK_SERVERS__CLANGD__SETTINGS",
                "{ clangd = { fallbackFlags = [\"-O2\"] } }",
            ),
            ("TACK_LANGUAGES__C__EXTENSIONS", "[\"c\", \"h\", \"inc\"]"),
            ("TACK_LOG", "debug"),
        ]),
        ..ConfigSources::default()
    };
    let loaded = Config::load(&sources);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.servers["clangd"].command, "/opt/clangd");
    assert_eq!(
        config.section("model").and_then(Value::as_str),
        Some("ollama/qwen")
    );
    assert!(!config.servers["rust-analyzer"].enabled);
    assert!(!config.servers.contains_key("rust_analyzer"));
    assert_eq!(
        config.servers["pyright"]
            .env
            .get("NODE_OPTIONS")
            .map(String::as_str),
        Some("--max-old-space-size=4096"),
        "keys inside `env` keep their case"
    );
    assert_eq!(
        config.servers["clangd"].settings_section(Some("clangd.fallbackFlags")),
        json!(["-O2"])
    );
    assert_eq!(config.language_of_path(Path::new("x.inc")), Some("c"));
}

#[test]
fn unknown_keys_warn_with_source_and_suggestion() {
    let fixture = Fixture::new();
    fixture.write_user("modle = \"x\"\n[servers.clangd]\ncomand = \"/opt/clangd\"\n");
    let mut sources = fixture.sources();
    sources.initialization_options = Some(json!({"servers": {"pyright": {"setings": {}}}}));
    sources.env = env(&[
        ("TACK_SERVERS__CLANGD__ARGZ", "[]"),
        ("TACK_FROBNICATE", "1"),
    ]);
    let loaded = Config::load(&sources);
    let user = ConfigSource::File(fixture.user_file());
    let unknown = |source: ConfigSource, key: &str, suggestion: Option<&str>| ConfigWarning {
        source,
        kind: WarningKind::UnknownKey {
            key: key.to_owned(),
            suggestion: suggestion.map(str::to_owned),
        },
    };
    assert_eq!(
        loaded.warnings,
        [
            unknown(user.clone(), "modle", Some("model")),
            unknown(
                user,
                "servers.clangd.comand",
                Some("servers.clangd.command")
            ),
            unknown(
                ConfigSource::InitializationOptions,
                "servers.pyright.setings",
                Some("servers.pyright.settings")
            ),
            unknown(
                ConfigSource::EnvVar("TACK_FROBNICATE".into()),
                "frobnicate",
                None
            ),
            unknown(
                ConfigSource::EnvVar("TACK_SERVERS__CLANGD__ARGZ".into()),
                "servers.clangd.argz",
                Some("servers.clangd.args")
            ),
        ]
    );
    let message = loaded.warnings[1].to_string();
    assert!(
        message.contains(&fixture.user_file().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(
            "unknown key `servers.clangd.comand` (did you mean `servers.clangd.command`?)"
        ),
        "{message}"
    );
    assert!(
        loaded.warnings[4]
            .to_string()
            .starts_with("environment variable TACK_SERVERS__CLANGD__ARGZ: ")
    );
    // The misspelled key changed nothing.
    assert_eq!(loaded.config.servers["clangd"].command, "clangd");
}

#[test]
fn type_errors_warn_and_keep_the_lower_value() {
    let fixture = Fixture::new();
    fixture.write_user("[servers.clangd]\nargs = [\"--a\"]\n");
    fixture.write_project(
        "model = 3\n[servers.clangd]\nargs = \"x\"\nenabled = \"yes\"\n\
         [servers.clangd.env]\nGOOD = \"1\"\nBAD = 2\n",
    );
    let loaded = Config::load(&fixture.sources());
    let project = ConfigSource::File(fixture.project_file());
    let wrong = |key: &str, expected: &'static str, found: &'static str| ConfigWarning {
        source: project.clone(),
        kind: WarningKind::WrongType {
            key: key.to_owned(),
            expected,
            found,
        },
    };
    assert_eq!(
        loaded.warnings,
        [
            wrong("model", "a string", "integer"),
            wrong("servers.clangd.args", "an array of strings", "string"),
            wrong("servers.clangd.enabled", "a boolean", "string"),
            wrong("servers.clangd.env.BAD", "a string", "integer"),
        ]
    );
    assert!(
        loaded.warnings[1]
            .to_string()
            .contains("`servers.clangd.args` should be an array of strings, found a string"),
        "{}",
        loaded.warnings[1]
    );
    let clangd = &loaded.config.servers["clangd"];
    assert_eq!(clangd.args, ["--a"], "the user file's value stands");
    assert!(clangd.enabled);
    assert_eq!(
        clangd.env,
        BTreeMap::from([("GOOD".to_owned(), "1".to_owned())])
    );
    assert!(loaded.config.section("model").is_none());
}

#[test]
fn environment_type_errors_name_the_variable() {
    let sources = ConfigSources {
        env: env(&[("TACK_SERVERS__CLANGD__ARGS", "--log=verbose")]),
        ..ConfigSources::default()
    };
    let loaded = Config::load(&sources);
    assert_eq!(loaded.warnings.len(), 1);
    let message = loaded.warnings[0].to_string();
    assert!(
        message.starts_with("environment variable TACK_SERVERS__CLANGD__ARGS: "),
        "{message}"
    );
    assert!(
        message.contains("`servers.clangd.args` should be an array of strings"),
        "{message}"
    );
    assert!(
        !message.contains("verbose"),
        "values are never quoted: {message}"
    );
    assert!(loaded.config.servers["clangd"].args.is_empty());
}

#[test]
fn broken_toml_file_is_skipped_with_its_line_and_column() {
    let fixture = Fixture::new();
    fixture.write_user("[servers.clangd]\nargs = [\"--user\"]\n");
    fixture.write_project("[servers.clangd]\nargs = [\"--project\"]\ncommand = = \"x\"\n");
    let loaded = Config::load(&fixture.sources());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert_eq!(warning.source, ConfigSource::File(fixture.project_file()));
    let WarningKind::BrokenToml { line, column, .. } = &warning.kind else {
        panic!("{warning:?}");
    };
    assert_eq!((*line, *column), (3, 11));
    let message = warning.to_string();
    assert!(
        message.contains(&fixture.project_file().display().to_string()),
        "{message}"
    );
    assert!(message.contains("line 3, column 11"), "{message}");
    assert!(message.ends_with("file skipped"), "{message}");
    assert_eq!(loaded.files_read, [fixture.user_file()]);
    assert_eq!(
        loaded.config.servers["clangd"].args,
        ["--user"],
        "nothing of the broken file applies"
    );
}

#[test]
fn initialization_options_null_is_unset_and_non_objects_warn() {
    let mut sources = ConfigSources {
        initialization_options: Some(
            json!({"model": null, "servers": {"clangd": {"args": ["--x", null]}}}),
        ),
        ..ConfigSources::default()
    };
    let loaded = Config::load(&sources);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.config.section("model").is_none());
    assert_eq!(loaded.config.servers["clangd"].args, ["--x"]);

    sources.initialization_options = Some(serde_json::Value::Null);
    assert!(Config::load(&sources).warnings.is_empty());

    sources.initialization_options = Some(json!(["clangd"]));
    let loaded = Config::load(&sources);
    assert_eq!(
        loaded.warnings,
        [ConfigWarning {
            source: ConfigSource::InitializationOptions,
            kind: WarningKind::NotATable { found: "array" },
        }]
    );
}

#[test]
fn users_add_servers_and_misnamed_servers_are_flagged() {
    let fixture = Fixture::new();
    fixture.write_user(
        "[servers.ruff]\ncommand = \"ruff\"\nargs = [\"server\"]\nlanguages = [\"python\"]\n\
         [servers.clang]\nargs = [\"--background-index\"]\n",
    );
    let loaded = Config::load(&fixture.sources());
    assert_eq!(
        loaded.warnings,
        [ConfigWarning {
            source: ConfigSource::File(fixture.user_file()),
            kind: WarningKind::IncompleteServer {
                key: "servers.clang".into(),
                suggestion: Some("servers.clangd".into()),
            },
        }]
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("did you mean `servers.clangd`?")
    );
    let ruff = &loaded.config.servers["ruff"];
    assert_eq!(ruff.args, ["server"]);
    assert!(ruff.enabled);
    assert!(!loaded.config.servers.contains_key("clang"));
}

fn which_of(available: &'static [&'static str]) -> impl Fn(&str) -> Option<PathBuf> {
    move |command: &str| {
        available
            .contains(&command)
            .then(|| PathBuf::from("/usr/bin").join(command))
    }
}

fn names(servers: &[ResolvedServer]) -> Vec<&str> {
    servers.iter().map(|server| server.name.as_str()).collect()
}

#[test]
fn alternative_is_used_only_when_the_primary_is_missing() {
    let config = Config::default();
    let pyright_missing = which_of(&["pylsp"]);
    let servers = config.servers_for_language("python", &pyright_missing);
    assert_eq!(names(&servers), ["pylsp"]);
    assert_eq!(servers[0].program, PathBuf::from("/usr/bin/pylsp"));

    let both = which_of(&["pylsp", "pyright-langserver"]);
    let servers = config.servers_for_language("python", &both);
    assert_eq!(names(&servers), ["pyright"]);
    assert_eq!(servers[0].args, ["--stdio"]);
    let choices = config.server_choices("python", &both);
    let statuses: Vec<(&str, &ServerStatus)> = choices
        .iter()
        .map(|choice| (choice.name.as_str(), &choice.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("pylsp", &ServerStatus::Standby),
            (
                "pyright",
                &ServerStatus::Selected(PathBuf::from("/usr/bin/pyright-langserver"))
            ),
        ]
    );

    let neither = which_of(&[]);
    assert!(config.servers_for_language("python", &neither).is_empty());
    let choices = config.server_choices("python", &neither);
    assert!(
        choices
            .iter()
            .all(|choice| choice.status == ServerStatus::NotFound)
    );

    let servers = config.servers_for_language("typescript", &which_of(&["tsc"]));
    assert_eq!(names(&servers), ["tsc"]);
    assert_eq!(servers[0].args, ["--lsp", "--stdio"]);
    let servers = config.servers_for_language(
        "typescript",
        &which_of(&["tsc", "typescript-language-server"]),
    );
    assert_eq!(names(&servers), ["typescript-language-server"]);
}

#[test]
fn disabling_the_primary_selects_the_alternative() {
    let sources = ConfigSources {
        env: env(&[("TACK_SERVERS__PYRIGHT__ENABLED", "false")]),
        ..ConfigSources::default()
    };
    let config = Config::load(&sources).config;
    let servers =
        config.servers_for_language("python", &which_of(&["pylsp", "pyright-langserver"]));
    assert_eq!(names(&servers), ["pylsp"]);
}

#[test]
fn servers_for_languages_starts_each_server_once() {
    let config = Config::default();
    let languages: BTreeSet<String> = ["c", "cpp", "rust", "markdown"].map(String::from).into();
    let servers = config.servers_for_languages(&languages, &which_of(&["clangd", "rust-analyzer"]));
    assert_eq!(names(&servers), ["clangd", "rust-analyzer"]);
    assert!(servers[0].languages.contains(&"cpp".to_owned()));
}

#[test]
fn settings_sections_are_found_by_dotted_path() {
    let settings = json!({
        "rust-analyzer": {"cargo": {"features": "all"}, "check": {"command": "clippy"}},
        "python.analysis": {"typeCheckingMode": "strict"},
    });
    assert_eq!(settings_section(&settings, None), settings);
    assert_eq!(settings_section(&settings, Some("")), settings);
    assert_eq!(
        settings_section(&settings, Some("rust-analyzer")),
        json!({"cargo": {"features": "all"}, "check": {"command": "clippy"}})
    );
    assert_eq!(
        settings_section(&settings, Some("rust-analyzer.check.command")),
        json!("clippy")
    );
    assert_eq!(
        settings_section(&settings, Some("python.analysis.typeCheckingMode")),
        json!("strict")
    );
    assert_eq!(
        settings_section(&settings, Some("rust-analyzer.nope")),
        serde_json::Value::Null
    );
    assert_eq!(
        settings_section(&settings, Some("gopls")),
        serde_json::Value::Null
    );

    let fixture = Fixture::new();
    fixture.write_project("[servers.gopls.settings.gopls]\nstaticcheck = true\n");
    let config = Config::load(&fixture.sources()).config;
    assert_eq!(
        config.servers["gopls"].settings_section(Some("gopls.staticcheck")),
        json!(true)
    );
    assert_eq!(config.servers["clangd"].settings_section(None), json!({}));
}

#[test]
fn files_map_to_language_ids() {
    let config = Config::default();
    let language = |path: &str| config.language_of_path(Path::new(path));
    assert_eq!(language("src/main.c"), Some("c"));
    assert_eq!(language("include/x.h"), Some("c"));
    assert_eq!(language("a/b.cpp"), Some("cpp"));
    assert_eq!(language("b.C"), Some("cpp"), "exact case first");
    assert_eq!(language("B.PY"), Some("python"), "then any case");
    assert_eq!(language("app.tsx"), Some("typescriptreact"));
    assert_eq!(language("Makefile"), Some("makefile"));
    assert_eq!(language("go.mod"), Some("go.mod"));
    assert_eq!(
        language("tsconfig.json"),
        Some("jsonc"),
        "file names before extensions"
    );
    assert_eq!(language("run.sh"), Some("shellscript"));
    assert_eq!(language("README"), None);
    assert_eq!(language("x.unknownext"), None);
}

#[test]
fn detection_walks_the_tree_and_skips_vendored_and_hidden_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files = [
        "src/main.c",
        "src/deep/er/tool.py",
        "scripts/run.sh",
        "node_modules/pkg/index.ts",
        "target/debug/x.rs",
        ".git/hooks/pre-commit.go",
        ".venv/lib/site.lua",
        "build/gen.java",
        "README.md",
    ];
    for file in files {
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "").unwrap();
    }
    let config = Config::default();
    let found = detect_languages(root, &config, DEFAULT_DETECTION_LIMIT);
    let expected: BTreeSet<String> = ["c", "python", "shellscript", "markdown"]
        .map(String::from)
        .into();
    assert_eq!(found, expected);

    // A root marker stands for its server's first language.
    fs::write(root.join("Cargo.toml"), "").unwrap();
    let found = detect_languages(root, &config, DEFAULT_DETECTION_LIMIT);
    assert!(found.contains("rust"), "{found:?}");
    assert!(found.contains("toml"), "{found:?}");
}

#[test]
fn detection_stops_after_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/deep.go"), "").unwrap();
    let config = Config::default();
    assert!(detect_languages(root, &config, 100).contains("go"));
    // The root holds one entry (`a`), `a` holds `b`: a limit of 2 never reaches `deep.go`.
    assert!(detect_languages(root, &config, 2).is_empty());
    assert!(detect_languages(root, &config, 3).contains("go"));
}

#[cfg(unix)]
#[test]
fn find_in_path_takes_paths_as_given_and_searches_path_for_names() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("fake-server");
    fs::write(&program, "#!/bin/sh\n").unwrap();
    let as_text = program.to_str().unwrap();
    assert_eq!(find_in_path(as_text), None, "not executable yet");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(find_in_path(as_text), Some(program.clone()));
    assert_eq!(
        find_in_path(dir.path().to_str().unwrap()),
        None,
        "a directory is no program"
    );
    assert_eq!(find_in_path(""), None);
    assert!(find_in_path("sh").is_some_and(|path| path.is_absolute() && path.ends_with("sh")));
    assert_eq!(find_in_path("surely-no-such-program-tack-test"), None);
}

#[test]
fn user_file_follows_xdg_then_home() {
    let xdg = Some(std::ffi::OsString::from("/xdg"));
    let home = Some(std::ffi::OsString::from("/home/u"));
    assert_eq!(
        user_config_file(xdg, home.clone()),
        Some(PathBuf::from("/xdg/tack/config.toml"))
    );
    assert_eq!(
        user_config_file(None, home.clone()),
        Some(PathBuf::from("/home/u/.config/tack/config.toml"))
    );
    assert_eq!(
        user_config_file(Some("relative".into()), home),
        Some(PathBuf::from("/home/u/.config/tack/config.toml")),
        "a relative XDG_CONFIG_HOME is ignored"
    );
    assert_eq!(user_config_file(None, None), None);
}
