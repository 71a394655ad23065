//! The provider catalog: provider facts as data (`catalog.toml`, compiled in), merged with the
//! user's overlay and `[providers.*]` configuration.
//!
//! Per provider: wire protocol, base URL, key variables, auth header, local or remote; per
//! model: context window, maximum output, and prices with the date they were taken. Nothing
//! here touches the network: the catalog is never fetched at start-up (invariant 6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{Cost, Usage};

const BUILTIN_CATALOG: &str = include_str!("catalog.toml");

/// The wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireApi {
    #[serde(rename = "openai-chat")]
    OpenAiChat,
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
    #[serde(rename = "ollama")]
    Ollama,
}

impl WireApi {
    pub const ALL: [WireApi; 5] = [
        WireApi::OpenAiChat,
        WireApi::OpenAiResponses,
        WireApi::Anthropic,
        WireApi::Gemini,
        WireApi::Ollama,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WireApi::OpenAiChat => "openai-chat",
            WireApi::OpenAiResponses => "openai-responses",
            WireApi::Anthropic => "anthropic",
            WireApi::Gemini => "gemini",
            WireApi::Ollama => "ollama",
        }
    }

    pub fn parse(text: &str) -> Option<WireApi> {
        WireApi::ALL.into_iter().find(|api| api.as_str() == text)
    }

    /// The header a key goes in when the provider does not say otherwise.
    pub fn default_auth(self) -> AuthScheme {
        match self {
            WireApi::OpenAiChat | WireApi::OpenAiResponses | WireApi::Ollama => AuthScheme::Bearer,
            WireApi::Anthropic => AuthScheme::XApiKey,
            WireApi::Gemini => AuthScheme::XGoogApiKey,
        }
    }
}

/// How an API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`
    #[serde(rename = "bearer")]
    Bearer,
    /// `x-api-key: <key>` (Anthropic)
    #[serde(rename = "x-api-key")]
    XApiKey,
    /// `x-goog-api-key: <key>` (Gemini)
    #[serde(rename = "x-goog-api-key")]
    XGoogApiKey,
    /// `api-key: <key>` (Azure OpenAI)
    #[serde(rename = "api-key")]
    ApiKeyHeader,
    /// No key at all.
    #[serde(rename = "none")]
    None,
}

impl AuthScheme {
    pub fn parse(text: &str) -> Option<AuthScheme> {
        match text {
            "bearer" => Some(AuthScheme::Bearer),
            "x-api-key" => Some(AuthScheme::XApiKey),
            "x-goog-api-key" => Some(AuthScheme::XGoogApiKey),
            "api-key" => Some(AuthScheme::ApiKeyHeader),
            "none" => Some(AuthScheme::None),
            _ => None,
        }
    }
}

/// Prices in US dollars per million tokens, as of a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub as_of: String,
}

impl Price {
    /// The cost of `usage` at these prices. Cache reads and writes without their own price are
    /// charged at the input price (an upper bound, never an undercount).
    pub fn cost(&self, usage: &Usage) -> Cost {
        let per_token = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        let usd = per_token(usage.input_uncached, self.input)
            + per_token(usage.cache_read, self.cache_read.unwrap_or(self.input))
            + per_token(usage.cache_write, self.cache_write.unwrap_or(self.input))
            + per_token(usage.output, self.output);
        Cost {
            usd,
            prices_as_of: self.as_of.clone(),
        }
    }
}

/// What the catalog knows of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub context: Option<u64>,
    pub max_output: Option<u64>,
    pub price: Option<Price>,
}

/// What the catalog knows of one provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderEntry {
    pub id: String,
    pub name: String,
    pub api: WireApi,
    /// Empty when the user must configure it (Azure).
    pub base_url: String,
    pub api_key_env: Vec<String>,
    pub auth: AuthScheme,
    pub local: bool,
    /// Extra headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// openai-chat: the name of the output limit field.
    pub max_tokens_field: Option<String>,
    pub models: Vec<ModelInfo>,
}

impl ProviderEntry {
    pub fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|model| model.id == id)
    }

    /// Whether requests to this provider need a key at all.
    pub fn needs_key(&self) -> bool {
        !self.local && self.auth != AuthScheme::None
    }
}

/// All known providers by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    pub providers: BTreeMap<String, ProviderEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("catalog provider {provider:?}: {problem}")]
    Entry { provider: String, problem: String },
}

/// The on-disk shape of a catalog file (the built-in one and the refresh overlay).
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub name: Option<String>,
    pub api: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<Vec<String>>,
    pub auth: Option<String>,
    pub local: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub max_tokens_field: Option<String>,
    pub prices_as_of: Option<String>,
    #[serde(default)]
    pub models: Vec<RawModel>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub id: String,
    pub context: Option<u64>,
    pub max_output: Option<u64>,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub as_of: Option<String>,
}

impl RawModel {
    pub(crate) fn into_model(self, provider_prices_as_of: Option<&str>) -> ModelInfo {
        let as_of = self
            .as_of
            .or_else(|| provider_prices_as_of.map(str::to_owned));
        let price = match (self.input, self.output) {
            (Some(input), Some(output)) => Some(Price {
                input,
                output,
                cache_read: self.cache_read,
                cache_write: self.cache_write,
                as_of: as_of.unwrap_or_else(|| "unknown".to_owned()),
            }),
            _ => None,
        };
        ModelInfo {
            id: self.id,
            context: self.context,
            max_output: self.max_output,
            price,
        }
    }
}

impl Catalog {
    /// The catalog compiled into tack. Its validity is checked by a test, so the empty fallback
    /// is never taken in a released build.
    pub fn builtin() -> Catalog {
        Catalog::parse(BUILTIN_CATALOG).unwrap_or_else(|error| {
            tracing::error!(%error, "the built-in provider catalog is invalid");
            Catalog::default()
        })
    }

    /// Parses a complete catalog: every provider must name its protocol.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: BTreeMap<String, RawProvider> = toml::from_str(text)?;
        let mut catalog = Catalog::default();
        for (id, raw) in raw {
            let entry = raw.into_entry(&id, None)?;
            catalog.providers.insert(id, entry);
        }
        Ok(catalog)
    }

    /// Applies an overlay (from `tack models --refresh`): known providers are updated field by
    /// field and model by model, new ones must be complete.
    pub fn apply_overlay(&mut self, text: &str) -> Result<(), CatalogError> {
        let raw: BTreeMap<String, RawProvider> = toml::from_str(text)?;
        for (id, raw) in raw {
            let merged = raw.into_entry(&id, self.providers.get(&id))?;
            self.providers.insert(id, merged);
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&ProviderEntry> {
        self.providers.get(id)
    }

    /// The providers whose catalog lists this model id.
    pub fn providers_listing(&self, model: &str) -> Vec<&ProviderEntry> {
        self.providers
            .values()
            .filter(|entry| entry.model(model).is_some())
            .collect()
    }
}

impl RawProvider {
    /// Builds an entry, on top of `base` when the provider is already known.
    pub(crate) fn into_entry(
        self,
        id: &str,
        base: Option<&ProviderEntry>,
    ) -> Result<ProviderEntry, CatalogError> {
        let problem = |problem: String| CatalogError::Entry {
            provider: id.to_owned(),
            problem,
        };
        let api = match (&self.api, base) {
            (Some(text), _) => WireApi::parse(text).ok_or_else(|| {
                problem(format!(
                    "unknown api {text:?}; expected one of openai-chat, openai-responses, anthropic, gemini, ollama"
                ))
            })?,
            (None, Some(base)) => base.api,
            (None, None) => return Err(problem("missing api".to_owned())),
        };
        let auth = match &self.auth {
            Some(text) => {
                AuthScheme::parse(text).ok_or_else(|| problem(format!("unknown auth {text:?}")))?
            }
            None => base.map_or(api.default_auth(), |base| base.auth),
        };
        let mut entry = base.cloned().unwrap_or_else(|| ProviderEntry {
            id: id.to_owned(),
            name: id.to_owned(),
            api,
            base_url: String::new(),
            api_key_env: Vec::new(),
            auth,
            local: false,
            headers: BTreeMap::new(),
            max_tokens_field: None,
            models: Vec::new(),
        });
        entry.api = api;
        entry.auth = auth;
        if let Some(name) = self.name {
            entry.name = name;
        }
        if let Some(base_url) = self.base_url {
            entry.base_url = base_url;
        }
        if let Some(env) = self.api_key_env {
            entry.api_key_env = env;
        }
        match self.local {
            Some(local) => entry.local = local,
            // A provider the user adds at a loopback address is a local server: no key is
            // required (one is still sent when `api_key_env` names a variable that is set).
            None if base.is_none() => {
                entry.local = super::discovery::is_loopback_url(&entry.base_url);
            }
            None => {}
        }
        entry.headers.extend(self.headers);
        if let Some(field) = self.max_tokens_field {
            entry.max_tokens_field = Some(field);
        }
        for raw_model in self.models {
            let model = raw_model.into_model(self.prices_as_of.as_deref());
            match entry.models.iter_mut().find(|known| known.id == model.id) {
                Some(known) => merge_model(known, model),
                None => entry.models.push(model),
            }
        }
        Ok(entry)
    }
}

fn merge_model(known: &mut ModelInfo, update: ModelInfo) {
    if update.context.is_some() {
        known.context = update.context;
    }
    if update.max_output.is_some() {
        known.max_output = update.max_output;
    }
    if update.price.is_some() {
        known.price = update.price;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_covers_the_required_providers() {
        let catalog = Catalog::parse(BUILTIN_CATALOG).expect("built-in catalog");
        for id in [
            "openai",
            "anthropic",
            "gemini",
            "openrouter",
            "groq",
            "deepseek",
            "mistral",
            "xai",
            "together",
            "fireworks",
            "cerebras",
            "azure",
            "ollama",
            "lmstudio",
            "llamacpp",
            "vllm",
        ] {
            assert!(catalog.get(id).is_some(), "missing provider {id}");
        }
        let anthropic = catalog.get("anthropic").unwrap();
        assert_eq!(anthropic.api, WireApi::Anthropic);
        assert_eq!(anthropic.auth, AuthScheme::XApiKey);
        let sonnet = anthropic.model("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.context, Some(200_000));
        let price = sonnet.price.as_ref().unwrap();
        assert_eq!(price.as_of, "2025-10-15");
        assert_eq!(price.cache_write, Some(3.75));
        assert!(catalog.get("ollama").unwrap().local);
        assert!(!catalog.get("ollama").unwrap().needs_key());
        assert_eq!(catalog.get("azure").unwrap().auth, AuthScheme::ApiKeyHeader);
    }

    #[test]
    fn every_remote_provider_has_a_key_variable_and_every_price_a_date() {
        let catalog = Catalog::builtin();
        for entry in catalog.providers.values() {
            if !entry.local {
                assert!(
                    !entry.api_key_env.is_empty(),
                    "{} has no key variable",
                    entry.id
                );
            }
            for model in &entry.models {
                if let Some(price) = &model.price {
                    assert_ne!(
                        price.as_of, "unknown",
                        "{}/{} price has no date",
                        entry.id, model.id
                    );
                }
            }
        }
    }

    #[test]
    fn cost_uses_each_bucket_price_and_falls_back_to_input() {
        let price = Price {
            input: 3.0,
            output: 15.0,
            cache_read: Some(0.30),
            cache_write: None,
            as_of: "2025-10-15".into(),
        };
        let usage = Usage {
            input_uncached: 1_000_000,
            cache_read: 1_000_000,
            cache_write: 1_000_000,
            output: 100_000,
            reasoning: 50_000,
        };
        let cost = price.cost(&usage);
        assert!(
            (cost.usd - (3.0 + 0.30 + 3.0 + 1.5)).abs() < 1e-9,
            "{}",
            cost.usd
        );
        assert_eq!(cost.prices_as_of, "2025-10-15");
    }

    #[test]
    fn overlay_updates_known_models_and_adds_providers() {
        let mut catalog = Catalog::builtin();
        catalog
            .apply_overlay(
                r#"
                [anthropic]
                prices_as_of = "2030-01-01"
                models = [{ id = "claude-sonnet-4-5", input = 1.0, output = 2.0 }, { id = "claude-new", context = 5 }]
                [mine]
                api = "openai-chat"
                base_url = "http://127.0.0.1:9/v1"
                "#,
            )
            .unwrap();
        let anthropic = catalog.get("anthropic").unwrap();
        let sonnet = anthropic.model("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.context, Some(200_000), "unchanged fields stay");
        assert_eq!(sonnet.price.as_ref().unwrap().input, 1.0);
        assert_eq!(sonnet.price.as_ref().unwrap().as_of, "2030-01-01");
        assert_eq!(anthropic.model("claude-new").unwrap().context, Some(5));
        assert_eq!(catalog.get("mine").unwrap().auth, AuthScheme::Bearer);
    }

    #[test]
    fn a_new_provider_without_api_is_rejected() {
        let mut catalog = Catalog::default();
        let error = catalog
            .apply_overlay("[x]\nbase_url = \"http://h\"\n")
            .unwrap_err();
        assert!(error.to_string().contains("missing api"), "{error}");
        let error = catalog.apply_overlay("[x]\napi = \"soap\"\n").unwrap_err();
        assert!(error.to_string().contains("unknown api"), "{error}");
    }
}
