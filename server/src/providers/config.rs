//! The `model` setting and the `[providers.<id>]` tables, read from the raw TOML the config
//! module passes through.
//!
//! Unknown keys and ill-typed values are warnings, never fatal: a typo must not stop the
//! editor's language server from starting.

use std::collections::BTreeMap;
use std::time::Duration;

use super::catalog::{Catalog, RawModel, RawProvider};

/// Everything the user configured about models and providers.
#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    /// The `model` setting as written, e.g. `anthropic/claude-sonnet-4-5`.
    pub model: Option<String>,
    pub providers: BTreeMap<String, ProviderOverride>,
}

/// One `[providers.<id>]` table.
#[derive(Debug, Clone, Default)]
pub struct ProviderOverride {
    pub(crate) catalog_fields: RawProvider,
    pub tuning: ProviderTuning,
}

/// Per-provider knobs of the HTTP client and protocol that are not catalog facts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProviderTuning {
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the response headers.
    pub first_byte_timeout: Option<Duration>,
    /// Longest silence between two pieces of the body.
    pub idle_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    /// Ollama's `num_ctx`; defaults to the catalog's context size when known.
    pub num_ctx: Option<u64>,
}

const KNOWN_KEYS: [&str; 16] = [
    "api",
    "base_url",
    "api_key_env",
    "auth",
    "headers",
    "models",
    "name",
    "local",
    "max_tokens_field",
    "prices_as_of",
    "connect_timeout_secs",
    "first_byte_timeout_secs",
    "idle_timeout_secs",
    "max_retries",
    "num_ctx",
    "api_key",
];

const MODEL_KEYS: [&str; 8] = [
    "id",
    "context",
    "max_output",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "as_of",
];

impl ProvidersConfig {
    /// Reads the `model` string and the `[providers]` table. Returns the configuration and one
    /// warning per key that was unknown or had the wrong type.
    pub fn from_toml(
        model: Option<&str>,
        providers: Option<&toml::Table>,
    ) -> (ProvidersConfig, Vec<String>) {
        let mut warnings = Vec::new();
        let mut config = ProvidersConfig {
            model: model
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            providers: BTreeMap::new(),
        };
        for (id, value) in providers.into_iter().flatten() {
            let Some(table) = value.as_table() else {
                warnings.push(format!("providers.{id}: expected a table, ignored"));
                continue;
            };
            config
                .providers
                .insert(id.clone(), read_provider(id, table, &mut warnings));
        }
        (config, warnings)
    }

    /// The built-in catalog (plus `overlay`) with this configuration applied. A provider that
    /// cannot be built is left out with a warning.
    pub fn apply_to(&self, mut catalog: Catalog) -> (Catalog, Vec<String>) {
        let mut warnings = Vec::new();
        for (id, provider) in &self.providers {
            let mut fields = provider.catalog_fields.clone();
            if catalog.get(id).is_none() && fields.api.is_none() {
                // A new provider is OpenAI-compatible unless it says otherwise.
                fields.api = Some("openai-chat".to_owned());
            }
            match fields.into_entry(id, catalog.get(id)) {
                Ok(entry) => {
                    if entry.base_url.is_empty() && id != "azure" {
                        warnings.push(format!("providers.{id}: no base_url"));
                    }
                    catalog.providers.insert(id.clone(), entry);
                }
                Err(error) => warnings.push(format!("providers.{id}: {error}")),
            }
        }
        (catalog, warnings)
    }

    pub fn tuning(&self, provider: &str) -> ProviderTuning {
        self.providers
            .get(provider)
            .map(|p| p.tuning)
            .unwrap_or_default()
    }
}

fn read_provider(id: &str, table: &toml::Table, warnings: &mut Vec<String>) -> ProviderOverride {
    let mut out = ProviderOverride::default();
    let fields = &mut out.catalog_fields;
    let tuning = &mut out.tuning;
    for (key, value) in table {
        let at = format!("providers.{id}.{key}");
        let mut wrong_type = |expected: &str| {
            warnings.push(format!("{at}: expected {expected}, ignored"));
        };
        match key.as_str() {
            "api" | "base_url" | "auth" | "name" | "max_tokens_field" | "prices_as_of" => {
                let Some(text) = value.as_str() else {
                    wrong_type("a string");
                    continue;
                };
                let text = Some(text.to_owned());
                match key.as_str() {
                    "api" => fields.api = text,
                    "base_url" => fields.base_url = text.map(|u| u.trim_end_matches('/').to_owned()),
                    "auth" => fields.auth = text,
                    "name" => fields.name = text,
                    "max_tokens_field" => fields.max_tokens_field = text,
                    _ => fields.prices_as_of = text,
                }
            }
            "api_key_env" => match value {
                toml::Value::String(name) => fields.api_key_env = Some(vec![name.clone()]),
                toml::Value::Array(names) => {
                    let names: Option<Vec<String>> =
                        names.iter().map(|n| n.as_str().map(str::to_owned)).collect();
                    match names {
                        Some(names) => fields.api_key_env = Some(names),
                        None => wrong_type("a string or a list of strings"),
                    }
                }
                _ => wrong_type("a string or a list of strings"),
            },
            "api_key" => warnings.push(format!(
                "{at}: keys do not belong in configuration files; use api_key_env or `tack auth login {id}` (ignored)"
            )),
            "local" => match value.as_bool() {
                Some(local) => fields.local = Some(local),
                None => wrong_type("true or false"),
            },
            "headers" => match value.as_table() {
                Some(headers) => {
                    for (name, header_value) in headers {
                        match header_value.as_str() {
                            Some(text) => {
                                fields.headers.insert(name.clone(), text.to_owned());
                            }
                            None => warnings.push(format!("{at}.{name}: expected a string, ignored")),
                        }
                    }
                }
                None => wrong_type("a table of strings"),
            },
            "models" => match value.as_array() {
                Some(models) => {
                    for model in models {
                        if let Some(model) = read_model(&at, model, warnings) {
                            fields.models.push(model);
                        }
                    }
                }
                None => wrong_type("a list of model names or tables"),
            },
            "connect_timeout_secs" | "first_byte_timeout_secs" | "idle_timeout_secs" => {
                match value_as_secs(value) {
                    Some(duration) => match key.as_str() {
                        "connect_timeout_secs" => tuning.connect_timeout = Some(duration),
                        "first_byte_timeout_secs" => tuning.first_byte_timeout = Some(duration),
                        _ => tuning.idle_timeout = Some(duration),
                    },
                    None => wrong_type("a positive number of seconds"),
                }
            }
            "max_retries" => match value.as_integer().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => tuning.max_retries = Some(n),
                None => wrong_type("a non-negative integer"),
            },
            "num_ctx" => match value.as_integer().and_then(|n| u64::try_from(n).ok()) {
                Some(n) => tuning.num_ctx = Some(n),
                None => wrong_type("a positive integer"),
            },
            _ => warnings.push(format!(
                "{at}: unknown key, ignored (known: {})",
                KNOWN_KEYS.iter().filter(|k| **k != "api_key").copied().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    out
}

fn read_model(at: &str, value: &toml::Value, warnings: &mut Vec<String>) -> Option<RawModel> {
    match value {
        toml::Value::String(id) => Some(RawModel {
            id: id.clone(),
            ..RawModel::default()
        }),
        toml::Value::Table(table) => {
            let Some(id) = table.get("id").and_then(|v| v.as_str()) else {
                warnings.push(format!("{at}: a model table needs an id, ignored"));
                return None;
            };
            let mut model = RawModel {
                id: id.to_owned(),
                ..RawModel::default()
            };
            for (key, value) in table {
                let number = || {
                    value
                        .as_float()
                        .or_else(|| value.as_integer().map(|n| n as f64))
                };
                let count = || value.as_integer().and_then(|n| u64::try_from(n).ok());
                let ok = match key.as_str() {
                    "id" => true,
                    "context" => count().map(|n| model.context = Some(n)).is_some(),
                    "max_output" => count().map(|n| model.max_output = Some(n)).is_some(),
                    "input" => number().map(|n| model.input = Some(n)).is_some(),
                    "output" => number().map(|n| model.output = Some(n)).is_some(),
                    "cache_read" => number().map(|n| model.cache_read = Some(n)).is_some(),
                    "cache_write" => number().map(|n| model.cache_write = Some(n)).is_some(),
                    "as_of" => value
                        .as_str()
                        .map(|d| model.as_of = Some(d.to_owned()))
                        .is_some(),
                    _ => {
                        warnings.push(format!(
                            "{at}[{id}].{key}: unknown key, ignored (known: {})",
                            MODEL_KEYS.join(", ")
                        ));
                        true
                    }
                };
                if !ok {
                    warnings.push(format!("{at}[{id}].{key}: wrong type, ignored"));
                }
            }
            Some(model)
        }
        _ => {
            warnings.push(format!("{at}: expected a model name or table, ignored"));
            None
        }
    }
}

fn value_as_secs(value: &toml::Value) -> Option<Duration> {
    let secs = value
        .as_float()
        .or_else(|| value.as_integer().map(|n| n as f64))?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::catalog::{AuthScheme, WireApi};

    fn parse(text: &str) -> (ProvidersConfig, Vec<String>) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let model = table
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let providers = table.get("providers").and_then(|p| p.as_table()).cloned();
        ProvidersConfig::from_toml(model.as_deref(), providers.as_ref())
    }

    #[test]
    fn the_issue_example_defines_a_custom_provider() {
        let (config, warnings) = parse(
            r#"
            model = "mylocal/some-model"
            [providers.mylocal]
            api = "openai-chat"
            base_url = "http://127.0.0.1:8080/v1/"
            api_key_env = "MYLOCAL_KEY"
            "#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.model.as_deref(), Some("mylocal/some-model"));
        let (catalog, warnings) = config.apply_to(Catalog::builtin());
        assert!(warnings.is_empty(), "{warnings:?}");
        let entry = catalog.get("mylocal").unwrap();
        assert_eq!(entry.api, WireApi::OpenAiChat);
        assert_eq!(entry.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(entry.api_key_env, vec!["MYLOCAL_KEY".to_owned()]);
        assert_eq!(entry.auth, AuthScheme::Bearer);
    }

    #[test]
    fn overrides_merge_into_known_providers() {
        let (config, warnings) = parse(
            r#"
            [providers.anthropic]
            base_url = "http://127.0.0.1:9999"
            headers = { "anthropic-beta" = "context-1m-2025-08-07" }
            models = ["claude-next", { id = "claude-sonnet-4-5", context = 1000000 }]
            idle_timeout_secs = 5
            max_retries = 0
            "#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let (catalog, _) = config.apply_to(Catalog::builtin());
        let entry = catalog.get("anthropic").unwrap();
        assert_eq!(entry.api, WireApi::Anthropic, "the protocol stays");
        assert_eq!(entry.base_url, "http://127.0.0.1:9999");
        assert_eq!(entry.headers["anthropic-beta"], "context-1m-2025-08-07");
        assert!(entry.model("claude-next").is_some());
        let sonnet = entry.model("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.context, Some(1_000_000));
        assert!(sonnet.price.is_some(), "the price stays");
        let tuning = config.tuning("anthropic");
        assert_eq!(tuning.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(tuning.max_retries, Some(0));
    }

    #[test]
    fn unknown_keys_and_wrong_types_warn() {
        let (config, warnings) = parse(
            r#"
            [providers.x]
            base_url = 5
            bse_url = "http://typo"
            api_key = "sk-should-not-be-here-123456"
            models = [{ id = "m", ctx = 3 }]
            num_ctx = -1
            "#,
        );
        let all = warnings.join("\n");
        assert!(
            all.contains("providers.x.base_url: expected a string"),
            "{all}"
        );
        assert!(all.contains("providers.x.bse_url: unknown key"), "{all}");
        assert!(all.contains("keys do not belong"), "{all}");
        assert!(
            !all.contains("sk-should-not-be-here"),
            "a key is never echoed: {all}"
        );
        assert!(all.contains("[m].ctx: unknown key"), "{all}");
        assert!(
            all.contains("num_ctx: expected a positive integer"),
            "{all}"
        );
        assert_eq!(warnings.len(), 5, "{all}");
        assert!(config.providers.contains_key("x"));
    }

    #[test]
    fn a_bad_api_name_is_a_warning_and_the_provider_is_left_out() {
        let (config, _) = parse("[providers.y]\napi = \"soap\"\nbase_url = \"http://h\"\n");
        let (catalog, warnings) = config.apply_to(Catalog::builtin());
        assert!(catalog.get("y").is_none());
        assert!(warnings[0].contains("unknown api"), "{warnings:?}");
    }
}
