//! The provider side of `tack models [--refresh]`, `tack doctor` and
//! `tack auth login|logout <provider>`: functions returning records and text; the binary
//! wires them to the command line and prints.
//!
//! What is shown of a key is where it came from, never the key.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::auth::{ApiKey, AuthError, KeySource, data_dir};
use super::catalog::{Catalog, Price, WireApi};
use super::client::ModelClient;
use super::discovery::{LOCAL_PROVIDERS, LocalServer, discover, probe_targets};
use super::registry::{LOCAL_PREFIX, Registry};

/// The catalog overlay `tack models --refresh` writes into tack's data directory.
pub const OVERLAY_FILE: &str = "catalog.toml";

/// models.dev's public catalog, fetched only by `tack models --refresh`.
pub const MODELS_DEV_URL: &str = "https://models.dev/api.json";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("unknown provider {0:?}; `tack models` lists the known ones")]
    UnknownProvider(String),
    #[error("{0} runs on this machine and needs no key")]
    LocalProvider(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot fetch {url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a provider has what it needs to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    NotNeeded,
    Present(KeySource),
    /// The variables that would be read.
    Missing(Vec<String>),
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyStatus::NotNeeded => f.write_str("not needed"),
            KeyStatus::Present(source) => write!(f, "set ({source})"),
            KeyStatus::Missing(vars) if vars.is_empty() => f.write_str("missing"),
            KeyStatus::Missing(vars) => write!(f, "missing (set {})", vars.join(" or ")),
        }
    }
}

/// One provider as `tack doctor` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStatus {
    pub id: String,
    pub name: String,
    pub api: WireApi,
    pub base_url: String,
    pub local: bool,
    /// Named in the user's `[providers.*]`.
    pub user_configured: bool,
    pub key: KeyStatus,
    /// Probed local servers: whether the probe answered; remote providers: whether
    /// [`check_remote`] got an answer. `None` when not contacted.
    pub reachable: Option<bool>,
    /// What a remote check showed (key accepted or rejected, or why it failed).
    pub detail: Option<String>,
}

impl ProviderStatus {
    /// Whether this provider can be used now.
    pub fn usable(&self) -> bool {
        let key_ok = !matches!(self.key, KeyStatus::Missing(_));
        match self.reachable {
            Some(reachable) => reachable && key_ok,
            None => key_ok && !self.base_url.is_empty(),
        }
    }
}

/// Every provider of the registry, with key and reachability.
pub fn provider_statuses(registry: &Registry, local: &[LocalServer]) -> Vec<ProviderStatus> {
    registry
        .catalog()
        .providers
        .values()
        .map(|entry| {
            let key = match registry.key_for(entry) {
                Some((_, source)) => KeyStatus::Present(source),
                None if !entry.needs_key() => KeyStatus::NotNeeded,
                None => KeyStatus::Missing(entry.api_key_env.clone()),
            };
            let probed = entry.local && LOCAL_PROVIDERS.contains(&entry.id.as_str());
            let reachable = probed.then(|| local.iter().any(|server| server.provider == entry.id));
            ProviderStatus {
                id: entry.id.clone(),
                name: entry.name.clone(),
                api: entry.api,
                base_url: entry.base_url.clone(),
                local: entry.local,
                user_configured: registry.config().providers.contains_key(&entry.id),
                key,
                reachable,
                detail: None,
            }
        })
        .collect()
}

/// `tack doctor --remote`: asks each remote provider that has a key for its model list — a
/// request the user's own configuration authorizes, to the provider the key belongs to, and
/// nothing else. Fills `reachable` and `detail`.
pub async fn check_remote(
    client: &ModelClient,
    registry: &Registry,
    statuses: &mut [ProviderStatus],
) {
    let checks = statuses
        .iter_mut()
        .filter(|s| !s.local && matches!(s.key, KeyStatus::Present(_)) && !s.base_url.is_empty())
        .map(|status| async move {
            let Some(entry) = registry.catalog().get(&status.id) else {
                return;
            };
            let Some((key, _)) = registry.key_for(entry) else {
                return;
            };
            let mut redactor = super::error::Redactor::new();
            redactor.add_secret(key.expose());
            let base = entry.base_url.trim_end_matches('/');
            let url = match entry.api {
                WireApi::Anthropic => format!("{base}/v1/models"),
                WireApi::Ollama => format!("{base}/api/tags"),
                _ => format!("{base}/models"),
            };
            let outcome = async {
                let http = client.http(Duration::from_secs(5), false)?;
                let mut request = http.get(&url);
                if let Ok(Some((name, value))) =
                    super::client::auth_header(entry.auth, &key, &entry.id)
                {
                    request = request.header(name, value);
                }
                if entry.api == WireApi::Anthropic {
                    request = request.header("anthropic-version", super::anthropic::API_VERSION);
                }
                for (name, value) in &entry.headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let response = tokio::time::timeout(Duration::from_secs(10), request.send())
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|error| error.to_string())?;
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Ok::<_, String>((status, super::wire::error_message_from_body(&body)))
            }
            .await;
            match outcome {
                Ok((code, _)) if (200..300).contains(&code) => {
                    status.reachable = Some(true);
                    status.detail = Some("key accepted".to_owned());
                }
                Ok((code @ (401 | 403), message)) => {
                    status.reachable = Some(true);
                    status.detail = Some(format!(
                        "key rejected: HTTP {code}: {}",
                        redactor.redact(&message)
                    ));
                }
                Ok((code, message)) => {
                    status.reachable = Some(true);
                    status.detail = Some(format!("HTTP {code}: {}", redactor.redact(&message)));
                }
                Err(error) => {
                    status.reachable = Some(false);
                    status.detail = Some(redactor.redact(&error));
                }
            }
        });
    futures::future::join_all(checks).await;
}

/// One model `tack models` lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// As the user writes it: `provider/model`.
    pub name: String,
    pub context: Option<u64>,
    pub max_output: Option<u64>,
    pub price: Option<Price>,
    pub local: bool,
    /// The configured (or discovered) default.
    pub is_default: bool,
}

/// The models of every usable provider: remote ones with a key (or configured by the user),
/// and the local servers that answered, with the models they serve.
pub fn model_rows(registry: &Registry, local: &[LocalServer]) -> Vec<ModelRow> {
    let default = registry.default_model(local);
    let mut rows = Vec::new();
    for status in provider_statuses(registry, local) {
        if status.local || !(status.usable() || status.user_configured) {
            continue;
        }
        let Some(entry) = registry.catalog().get(&status.id) else {
            continue;
        };
        for model in &entry.models {
            rows.push(ModelRow {
                name: format!("{}/{}", entry.id, model.id),
                context: model.context,
                max_output: model.max_output,
                price: model.price.clone(),
                local: false,
                is_default: false,
            });
        }
    }
    for server in local {
        let entry = registry.catalog().get(&server.provider);
        for model in &server.models {
            let info = entry.and_then(|e| e.model(model));
            rows.push(ModelRow {
                name: format!("{}/{model}", server.provider),
                context: info.and_then(|i| i.context),
                max_output: info.and_then(|i| i.max_output),
                price: None,
                local: true,
                is_default: false,
            });
        }
    }
    if let Some(default) = default {
        let local_name = default
            .strip_prefix(&format!("{LOCAL_PREFIX}/"))
            .and_then(|model| {
                local
                    .iter()
                    .find(|s| s.models.iter().any(|m| m == model))
                    .map(|s| format!("{}/{model}", s.provider))
            });
        let wanted = local_name.unwrap_or(default);
        match rows.iter_mut().find(|row| row.name == wanted) {
            Some(row) => row.is_default = true,
            None => rows.insert(
                0,
                ModelRow {
                    name: wanted,
                    context: None,
                    max_output: None,
                    price: None,
                    local: false,
                    is_default: true,
                },
            ),
        }
    }
    rows
}

fn tokens(count: Option<u64>) -> String {
    match count {
        None => "-".to_owned(),
        Some(n) if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        Some(n) if n >= 1000 => format!("{}k", n / 1000),
        Some(n) => n.to_string(),
    }
}

fn dollars(price: f64) -> String {
    let text = format!("{price:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("${text}")
}

/// `tack models`: one line per model, then the providers that are not usable and why.
pub fn render_models(rows: &[ModelRow], statuses: &[ProviderStatus]) -> String {
    let mut out = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5) + 2;
    let _ = writeln!(
        out,
        "  {:<width$}{:>9}{:>9}  price per 1M tokens (input/output, cache read/write)",
        "model", "context", "output"
    );
    for row in rows {
        let price = match (&row.price, row.local) {
            (_, true) => "local, free".to_owned(),
            (Some(p), false) => {
                let mut text = format!("{}/{}", dollars(p.input), dollars(p.output));
                if p.cache_read.is_some() || p.cache_write.is_some() {
                    let read = p.cache_read.map_or("-".to_owned(), dollars);
                    let write = p.cache_write.map_or("-".to_owned(), dollars);
                    let _ = write!(text, ", {read}/{write}");
                }
                let _ = write!(text, " (as of {})", p.as_of);
                text
            }
            (None, false) => "unknown".to_owned(),
        };
        let marker = if row.is_default { "* " } else { "  " };
        let _ = writeln!(
            out,
            "{marker}{:<width$}{:>9}{:>9}  {price}",
            row.name,
            tokens(row.context),
            tokens(row.max_output)
        );
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "  (no usable model: set a provider's key, or start a local model server)"
        );
    }
    let unusable: Vec<String> = statuses
        .iter()
        .filter(|s| !s.usable())
        .map(|s| match (&s.key, s.reachable) {
            (_, Some(false)) if s.local => format!("{:<18} not running at {}", s.id, s.base_url),
            (_, Some(false)) => format!("{:<18} unreachable at {}", s.id, s.base_url),
            (KeyStatus::Missing(vars), _) if !vars.is_empty() => {
                format!("{:<18} no key (set {})", s.id, vars.join(" or "))
            }
            _ if s.base_url.is_empty() => format!("{:<18} no base_url configured", s.id),
            _ => format!("{:<18} no key", s.id),
        })
        .collect();
    if !unusable.is_empty() {
        let _ = writeln!(out, "\nnot usable now:");
        for line in unusable {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `tack doctor`'s provider section: configured, key present (never the key), reachable.
pub fn render_doctor(statuses: &[ProviderStatus]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "providers:");
    for s in statuses {
        let reach = match (s.reachable, s.local, &s.detail) {
            (Some(true), true, _) => "reachable".to_owned(),
            (Some(false), true, _) => "not running".to_owned(),
            (None, true, _) => "not probed".to_owned(),
            (Some(true), false, Some(detail)) => format!("reachable, {detail}"),
            (Some(false), false, Some(detail)) => format!("unreachable: {detail}"),
            (Some(reachable), false, None) => {
                if reachable {
                    "reachable".to_owned()
                } else {
                    "unreachable".to_owned()
                }
            }
            (None, false, _) => "not contacted (remote)".to_owned(),
        };
        let origin = if s.user_configured {
            "configured in tack.toml"
        } else {
            "catalog"
        };
        let _ = writeln!(
            out,
            "  {:<18} {:<17} {:<40} key {}; {}; {}",
            s.id,
            s.api.as_str(),
            if s.base_url.is_empty() {
                "(no base_url)"
            } else {
                s.base_url.as_str()
            },
            s.key,
            reach,
            origin
        );
    }
    out
}

/// Runs `tack models [--refresh]`: probes the local servers, optionally refreshes the
/// catalog overlay from models.dev (the only network access to a third party, and only when
/// asked), and renders the list.
pub async fn models_command(
    registry: &Registry,
    client: &ModelClient,
    refresh: bool,
) -> Result<String, CliError> {
    let mut out = String::new();
    let mut registry = registry.clone();
    if refresh {
        let dir = data_dir(registry.env()).ok_or(CliError::Auth(AuthError::NoDataDir))?;
        let summary = refresh_catalog(client, MODELS_DEV_URL, &dir.join(OVERLAY_FILE)).await?;
        let _ = writeln!(
            out,
            "refreshed {} models of {} providers from {MODELS_DEV_URL} into {}\n",
            summary.models,
            summary.providers,
            summary.path.display()
        );
        let (reloaded, _) = Registry::for_user(registry.config().clone());
        registry = reloaded;
    }
    let local = discover(client, &probe_targets(registry.catalog())).await;
    let statuses = provider_statuses(&registry, &local);
    out.push_str(&render_models(&model_rows(&registry, &local), &statuses));
    Ok(out)
}

/// What a refresh wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSummary {
    pub providers: usize,
    pub models: usize,
    pub path: PathBuf,
}

/// Fetches models.dev's catalog and writes the overlay for the providers tack knows.
pub async fn refresh_catalog(
    client: &ModelClient,
    url: &str,
    overlay_path: &Path,
) -> Result<RefreshSummary, CliError> {
    let fetch_error = |detail: String| CliError::Fetch {
        url: url.to_owned(),
        detail,
    };
    let http = client
        .http(Duration::from_secs(10), false)
        .map_err(fetch_error)?;
    let response = tokio::time::timeout(Duration::from_secs(60), http.get(url).send())
        .await
        .map_err(|_| fetch_error("timed out".to_owned()))?
        .map_err(|error| fetch_error(error.to_string()))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("HTTP {}", response.status().as_u16())));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|error| fetch_error(error.to_string()))?;
    let (overlay, providers, models) = models_dev_overlay(&body, &Catalog::builtin(), &today_utc());
    if let Some(dir) = overlay_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    std::fs::write(overlay_path, overlay).map_err(|source| CliError::Write {
        path: overlay_path.to_owned(),
        source,
    })?;
    Ok(RefreshSummary {
        providers,
        models,
        path: overlay_path.to_owned(),
    })
}

/// models.dev names some providers differently.
fn models_dev_id(tack_id: &str) -> &str {
    match tack_id {
        "gemini" => "google",
        "together" => "togetherai",
        "fireworks" => "fireworks-ai",
        "openai-responses" => "openai",
        other => other,
    }
}

/// Turns models.dev's `{provider: {models: {id: {limit: {context, output}, cost: {input,
/// output, cache_read, cache_write}}}}}` into a catalog overlay for tack's known providers.
/// Returns the TOML text and how many providers and models it covers.
pub fn models_dev_overlay(body: &Value, catalog: &Catalog, as_of: &str) -> (String, usize, usize) {
    let mut overlay = toml::Table::new();
    let mut model_count = 0;
    for id in catalog.providers.keys() {
        let Some(models) = body
            .get(models_dev_id(id))
            .and_then(|p| p.get("models"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let mut list = Vec::new();
        for (model_id, model) in models {
            let mut entry = toml::Table::new();
            entry.insert("id".into(), toml::Value::String(model_id.clone()));
            let limit = |key: &str| {
                model
                    .pointer(&format!("/limit/{key}"))
                    .and_then(Value::as_u64)
            };
            if let Some(context) = limit("context").filter(|n| *n > 0) {
                entry.insert("context".into(), toml::Value::Integer(context as i64));
            }
            if let Some(output) = limit("output").filter(|n| *n > 0) {
                entry.insert("max_output".into(), toml::Value::Integer(output as i64));
            }
            let cost = |key: &str| {
                model
                    .pointer(&format!("/cost/{key}"))
                    .and_then(Value::as_f64)
            };
            if let (Some(input), Some(output)) = (cost("input"), cost("output")) {
                entry.insert("input".into(), toml::Value::Float(input));
                entry.insert("output".into(), toml::Value::Float(output));
                for key in ["cache_read", "cache_write"] {
                    if let Some(price) = cost(key) {
                        entry.insert(key.into(), toml::Value::Float(price));
                    }
                }
                entry.insert("as_of".into(), toml::Value::String(as_of.to_owned()));
            }
            list.push(toml::Value::Table(entry));
        }
        model_count += list.len();
        let mut provider = toml::Table::new();
        provider.insert("models".into(), toml::Value::Array(list));
        overlay.insert(id.clone(), toml::Value::Table(provider));
    }
    let providers = overlay.len();
    let header =
        format!("# Written by `tack models --refresh` from {MODELS_DEV_URL} on {as_of}.\n");
    (
        header + &toml::to_string(&overlay).unwrap_or_default(),
        providers,
        model_count,
    )
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today_utc() -> String {
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let (year, month, day) = civil_date(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `tack auth login <provider>` with the key already read (without echo) by the caller.
/// Returns the confirmation to print.
pub fn auth_login(registry: &Registry, provider: &str, key: &str) -> Result<String, CliError> {
    let entry = registry
        .catalog()
        .get(provider)
        .ok_or_else(|| CliError::UnknownProvider(provider.to_owned()))?;
    if !entry.needs_key() && entry.api_key_env.is_empty() {
        return Err(CliError::LocalProvider(provider.to_owned()));
    }
    let store = registry.credential_store().ok_or(AuthError::NoDataDir)?;
    store.save(provider, &ApiKey::new(key))?;
    let mut message = format!(
        "saved the key for {provider} in {} (mode 0600)",
        store.path().display()
    );
    if let Some(var) = entry
        .api_key_env
        .iter()
        .find(|var| registry.env()(var).is_some())
    {
        let _ = write!(message, "; note: ${var} is set and takes precedence");
    }
    Ok(message)
}

/// `tack auth logout <provider>`.
pub fn auth_logout(registry: &Registry, provider: &str) -> Result<String, CliError> {
    let store = registry.credential_store().ok_or(AuthError::NoDataDir)?;
    Ok(if store.remove(provider)? {
        format!(
            "removed the key for {provider} from {}",
            store.path().display()
        )
    } else {
        format!("no stored key for {provider}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::providers::auth::CredentialStore;
    use crate::providers::config::ProvidersConfig;
    use crate::providers::fake_model::{FakeModelServer, Reply, ollama, openai_models};

    fn registry(
        model: Option<&str>,
        env: &'static [(&'static str, &'static str)],
        store: Option<CredentialStore>,
    ) -> Registry {
        let (config, _) = ProvidersConfig::from_toml(model, None);
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Registry::new(Catalog::builtin(), config, store, Arc::new(lookup)).0
    }

    #[tokio::test]
    async fn discovery_finds_fake_local_servers_and_skips_silent_ports() {
        let ollama_server = FakeModelServer::start().await.unwrap();
        ollama_server.route(
            "GET",
            "/api/tags",
            ollama::tags(&["qwen2.5-coder:7b", "llama3.2"]),
        );
        let llamacpp = FakeModelServer::start().await.unwrap();
        llamacpp.route(
            "GET",
            "/v1/models",
            openai_models(&["SmolLM2-135M-Instruct"]),
        );
        // A port where nothing listens: bind, note the port, close.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut catalog = Catalog::builtin();
        catalog.providers.get_mut("ollama").unwrap().base_url = ollama_server.url();
        catalog.providers.get_mut("llamacpp").unwrap().base_url = format!("{}/v1", llamacpp.url());
        catalog.providers.get_mut("lmstudio").unwrap().base_url = format!("http://{closed}/v1");
        let started = std::time::Instant::now();
        let found = discover(&ModelClient::default(), &probe_targets(&catalog)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "probes are quick"
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].provider, "ollama");
        assert_eq!(found[0].models, vec!["qwen2.5-coder:7b", "llama3.2"]);
        assert_eq!(found[1].provider, "llamacpp");
        assert_eq!(found[1].base_url, format!("{}/v1", llamacpp.url()));
    }

    #[test]
    fn models_lists_usable_providers_and_says_why_others_are_not() {
        let local = vec![LocalServer {
            provider: "ollama".into(),
            base_url: "http://127.0.0.1:11434".into(),
            models: vec!["qwen2.5-coder:7b".into()],
        }];
        let registry = registry(
            None,
            &[("ANTHROPIC_API_KEY", "sk-ant-api03-abcdefghijklmnop")],
            None,
        );
        let statuses = provider_statuses(&registry, &local);
        let rows = model_rows(&registry, &local);
        let text = render_models(&rows, &statuses);
        assert!(text.contains("anthropic/claude-sonnet-4-5"), "{text}");
        assert!(text.contains("200k"), "{text}");
        assert!(
            text.contains("$3/$15, $0.3/$3.75 (as of 2025-10-15)"),
            "{text}"
        );
        assert!(
            text.contains("* ollama/qwen2.5-coder:7b"),
            "the discovered default: {text}"
        );
        assert!(text.contains("local, free"), "{text}");
        assert!(
            !text.contains("openai/gpt-5 "),
            "no key, not listed: {text}"
        );
        assert!(
            text.contains("openai             no key (set OPENAI_API_KEY)"),
            "{text}"
        );
        assert!(
            text.contains("lmstudio           not running at http://127.0.0.1:1234/v1"),
            "{text}"
        );
        assert!(!text.contains("abcdefghijklmnop"), "never the key: {text}");

        let doctor = render_doctor(&statuses);
        assert!(doctor.contains("key set ($ANTHROPIC_API_KEY)"), "{doctor}");
        assert!(
            doctor.contains("ollama") && doctor.contains("reachable"),
            "{doctor}"
        );
        assert!(doctor.contains("not contacted (remote)"), "{doctor}");
        assert!(!doctor.contains("abcdefghijklmnop"), "{doctor}");
    }

    #[tokio::test]
    async fn remote_checks_contact_only_providers_with_keys_and_never_show_them() {
        let server = FakeModelServer::start().await.unwrap();
        server.route("GET", "/openai/models", openai_models(&["gpt-5"]));
        server.route(
            "GET",
            "/anthropic/v1/models",
            Reply::json(
                401,
                &serde_json::json!({"type": "error", "error": {"type": "authentication_error",
                "message": "invalid x-api-key sk-ant-api03-KEYKEYKEYKEY"}}),
            ),
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let providers: toml::Table = toml::from_str(&format!(
            "[openai]\nbase_url = \"{url}/openai\"\n[anthropic]\nbase_url = \"{url}/anthropic\"\n[gemini]\nbase_url = \"http://{closed}\"\n",
            url = server.url()
        ))
        .unwrap();
        let (config, _) = ProvidersConfig::from_toml(None, Some(&providers));
        let env: &'static [(&str, &str)] = &[
            ("OPENAI_API_KEY", "sk-proj-KEYKEYKEYKEY"),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-KEYKEYKEYKEY"),
            ("GEMINI_API_KEY", "AIzaKEYKEYKEYKEY"),
        ];
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let registry = Registry::new(Catalog::builtin(), config, None, Arc::new(lookup)).0;
        let mut statuses = provider_statuses(&registry, &[]);
        check_remote(&ModelClient::default(), &registry, &mut statuses).await;
        let by_id = |id: &str| statuses.iter().find(|s| s.id == id).unwrap().clone();
        assert_eq!(by_id("openai").reachable, Some(true));
        assert_eq!(by_id("openai").detail.as_deref(), Some("key accepted"));
        assert!(
            by_id("anthropic")
                .detail
                .unwrap()
                .starts_with("key rejected: HTTP 401")
        );
        assert_eq!(by_id("gemini").reachable, Some(false));
        assert_eq!(by_id("groq").reachable, None, "no key, not contacted");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let anthropic = requests
            .iter()
            .find(|r| r.path == "/anthropic/v1/models")
            .unwrap();
        assert_eq!(
            anthropic.header("x-api-key"),
            Some("sk-ant-api03-KEYKEYKEYKEY")
        );
        assert_eq!(anthropic.header("anthropic-version"), Some("2023-06-01"));
        let doctor = render_doctor(&statuses);
        assert!(doctor.contains("reachable, key accepted"), "{doctor}");
        assert!(doctor.contains("unreachable"), "{doctor}");
        assert!(!doctor.contains("KEYKEY"), "{doctor}");
    }

    #[test]
    fn the_configured_model_is_marked_even_without_catalog_facts() {
        let registry = registry(
            Some("anthropic/claude-haiku-4-5"),
            &[("ANTHROPIC_API_KEY", "k-123456789")],
            None,
        );
        let rows = model_rows(&registry, &[]);
        let marked: Vec<&str> = rows
            .iter()
            .filter(|r| r.is_default)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(marked, vec!["anthropic/claude-haiku-4-5"]);
    }

    #[test]
    fn login_stores_the_key_privately_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("credentials.toml"));
        let registry = registry(None, &[], Some(store.clone()));
        let message = auth_login(&registry, "anthropic", "sk-ant-api03-zzzzzzzzzzzz").unwrap();
        assert!(
            message.contains("credentials.toml") && message.contains("0600"),
            "{message}"
        );
        assert!(!message.contains("zzzz"), "{message}");
        let (key, source) = registry
            .key_for(registry.catalog().get("anthropic").unwrap())
            .unwrap();
        assert_eq!(key.expose(), "sk-ant-api03-zzzzzzzzzzzz");
        assert!(matches!(source, KeySource::CredentialFile(_)));
        assert!(matches!(
            auth_login(&registry, "nope", "k"),
            Err(CliError::UnknownProvider(_))
        ));
        assert!(matches!(
            auth_login(&registry, "ollama", "k"),
            Err(CliError::LocalProvider(_))
        ));
        assert!(
            auth_logout(&registry, "anthropic")
                .unwrap()
                .starts_with("removed")
        );
        assert!(
            registry
                .key_for(registry.catalog().get("anthropic").unwrap())
                .is_none()
        );
    }

    #[tokio::test]
    async fn refresh_writes_an_overlay_from_models_dev_json() {
        let server = FakeModelServer::start().await.unwrap();
        let body = serde_json::json!({
            "anthropic": {"id": "anthropic", "env": ["ANTHROPIC_API_KEY"], "models": {
                "claude-sonnet-4-5": {"id": "claude-sonnet-4-5", "limit": {"context": 1000000, "output": 64000},
                    "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}},
                "claude-next": {"id": "claude-next", "limit": {"context": 500000, "output": 0}}
            }},
            "google": {"id": "google", "models": {"gemini-9": {"id": "gemini-9", "limit": {"context": 2000000, "output": 8192},
                "cost": {"input": 1.5, "output": 9}}}},
            "someone-else": {"id": "someone-else", "models": {"x": {"id": "x"}}}
        });
        server.route("GET", "/api.json", Reply::json(200, &body));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tack").join(OVERLAY_FILE);
        let summary = refresh_catalog(
            &ModelClient::default(),
            &format!("{}/api.json", server.url()),
            &path,
        )
        .await
        .unwrap();
        assert_eq!((summary.providers, summary.models), (2, 3));
        let mut catalog = Catalog::builtin();
        catalog
            .apply_overlay(&std::fs::read_to_string(&path).unwrap())
            .unwrap();
        let sonnet = catalog
            .get("anthropic")
            .unwrap()
            .model("claude-sonnet-4-5")
            .unwrap();
        assert_eq!(sonnet.context, Some(1_000_000));
        assert_eq!(sonnet.price.as_ref().unwrap().as_of, today_utc());
        let next = catalog
            .get("anthropic")
            .unwrap()
            .model("claude-next")
            .unwrap();
        assert_eq!((next.max_output, next.price.as_ref()), (None, None));
        assert!(catalog.get("gemini").unwrap().model("gemini-9").is_some());
        assert!(
            catalog.get("someone-else").is_none(),
            "unknown providers are not added"
        );
    }

    #[test]
    fn today_is_a_plausible_date() {
        let today = today_utc();
        assert_eq!(today.len(), 10);
        assert!(today.as_str() > "2024-01-01", "{today}");
    }
}
