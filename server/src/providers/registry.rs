//! From a model string to an endpoint: the catalog with the user's overlay and
//! configuration applied, keys looked up, `local/…` matched to a discovered server.
//!
//! Resolution never falls back to another provider: a model string names exactly one
//! provider, or resolution fails with a message saying how to write it (invariant 6).

use std::sync::Arc;

use super::auth::{ApiKey, CredentialStore, EnvLookup, KeySource, data_dir, find_key, process_env};
use super::catalog::{Catalog, ModelInfo, ProviderEntry};
use super::config::{ProviderTuning, ProvidersConfig};
use super::discovery::{LocalServer, ollama_host_url};
use super::error::ResolveError;

/// The provider prefix that means "whatever local server is running".
pub const LOCAL_PREFIX: &str = "local";

/// A model string resolved to one provider and model.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    pub provider: ProviderEntry,
    /// The model id as the provider names it (everything after the first `/`).
    pub model: String,
    /// What the catalog knows of it, if anything.
    pub info: Option<ModelInfo>,
    pub tuning: ProviderTuning,
}

impl ResolvedModel {
    /// `provider/model`, as the user would write it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.id, self.model)
    }
}

/// Everything needed to resolve models and find keys.
#[derive(Clone)]
pub struct Registry {
    catalog: Catalog,
    config: ProvidersConfig,
    store: Option<CredentialStore>,
    env: Arc<EnvLookup>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("providers", &self.catalog.providers.len())
            .finish()
    }
}

impl Registry {
    /// Builds the registry: `catalog` (built-in plus overlay), then `OLLAMA_HOST`, then the
    /// user's `[providers.*]`. Returns warnings for configuration that was ignored.
    pub fn new(
        mut catalog: Catalog,
        config: ProvidersConfig,
        store: Option<CredentialStore>,
        env: Arc<EnvLookup>,
    ) -> (Registry, Vec<String>) {
        if let Some(host) = env("OLLAMA_HOST").as_deref().and_then(ollama_host_url)
            && let Some(ollama) = catalog.providers.get_mut("ollama")
        {
            ollama.base_url = host;
        }
        let (catalog, warnings) = config.apply_to(catalog);
        (
            Registry {
                catalog,
                config,
                store,
                env,
            },
            warnings,
        )
    }

    /// The registry for this user: built-in catalog, the refresh overlay and credential file in
    /// tack's data directory, the process environment.
    pub fn for_user(config: ProvidersConfig) -> (Registry, Vec<String>) {
        let env: Arc<EnvLookup> = Arc::new(process_env);
        let mut catalog = Catalog::builtin();
        let mut warnings = Vec::new();
        if let Some(dir) = data_dir(env.as_ref()) {
            let overlay = dir.join(super::cli::OVERLAY_FILE);
            if let Ok(text) = std::fs::read_to_string(&overlay)
                && let Err(error) = catalog.apply_overlay(&text)
            {
                warnings.push(format!("{}: {error}", overlay.display()));
            }
        }
        let store = CredentialStore::in_data_dir(env.as_ref());
        let (registry, more) = Registry::new(catalog, config, store, env);
        warnings.extend(more);
        (registry, warnings)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn config(&self) -> &ProvidersConfig {
        &self.config
    }

    pub fn credential_store(&self) -> Option<&CredentialStore> {
        self.store.as_ref()
    }

    pub fn env(&self) -> &EnvLookup {
        self.env.as_ref()
    }

    /// The key for a provider, and where it was found.
    pub fn key_for(&self, provider: &ProviderEntry) -> Option<(ApiKey, KeySource)> {
        find_key(provider, self.store.as_ref(), self.env.as_ref())
    }

    /// Resolves `provider/model`. `local/<model>` picks the discovered server that lists the
    /// model, else the first discovered server. A string without a provider resolves only when
    /// exactly one catalog provider lists that model.
    pub fn resolve(
        &self,
        model: &str,
        local: &[LocalServer],
    ) -> Result<ResolvedModel, ResolveError> {
        let model = model.trim();
        let (provider_id, model_id) = match model.split_once('/') {
            Some((provider, rest))
                if self.catalog.get(provider).is_some() || provider == LOCAL_PREFIX =>
            {
                (provider.to_owned(), rest.to_owned())
            }
            Some((provider, _)) if self.catalog.providers_listing(model).len() != 1 => {
                return Err(ResolveError::UnknownProvider {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    known: self.known_providers(),
                });
            }
            _ => {
                let listing = self.catalog.providers_listing(model);
                match listing.as_slice() {
                    [only] => (only.id.clone(), model.to_owned()),
                    _ => {
                        return Err(ResolveError::NoProvider {
                            model: model.to_owned(),
                        });
                    }
                }
            }
        };
        if provider_id == LOCAL_PREFIX {
            return self.resolve_local(&model_id, local);
        }
        let provider = self.catalog.get(&provider_id).cloned().ok_or_else(|| {
            ResolveError::UnknownProvider {
                provider: provider_id.clone(),
                model: model.to_owned(),
                known: self.known_providers(),
            }
        })?;
        if provider.base_url.is_empty() {
            return Err(ResolveError::NoBaseUrl {
                provider: provider.id,
            });
        }
        Ok(self.resolved(provider, model_id))
    }

    fn resolve_local(
        &self,
        model: &str,
        local: &[LocalServer],
    ) -> Result<ResolvedModel, ResolveError> {
        let server = local
            .iter()
            .find(|server| server.models.iter().any(|m| m == model))
            .or_else(|| local.first())
            .ok_or(ResolveError::NoLocalServer)?;
        let mut provider = self
            .catalog
            .get(&server.provider)
            .cloned()
            .ok_or(ResolveError::NoLocalServer)?;
        provider.base_url = server.base_url.clone();
        let model = if model.is_empty() {
            server.models.first().cloned().unwrap_or_default()
        } else {
            model.to_owned()
        };
        Ok(self.resolved(provider, model))
    }

    fn resolved(&self, provider: ProviderEntry, model: String) -> ResolvedModel {
        let info = provider.model(&model).cloned();
        let tuning = self.config.tuning(&provider.id);
        ResolvedModel {
            provider,
            model,
            info,
            tuning,
        }
    }

    /// The model to use when the user named none: the configured one, else the first model of
    /// the first local server found. Never a remote model the user did not choose.
    pub fn default_model(&self, local: &[LocalServer]) -> Option<String> {
        if let Some(model) = &self.config.model {
            return Some(model.clone());
        }
        let server = local.iter().find(|s| !s.models.is_empty())?;
        Some(format!("{LOCAL_PREFIX}/{}", server.models[0]))
    }

    fn known_providers(&self) -> String {
        let mut ids: Vec<&str> = self.catalog.providers.keys().map(String::as_str).collect();
        ids.push(LOCAL_PREFIX);
        ids.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn registry_with(config_toml: &str, env: &'static [(&'static str, &'static str)]) -> Registry {
        let table: toml::Table = toml::from_str(config_toml).unwrap();
        let model = table
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let providers = table.get("providers").and_then(|p| p.as_table()).cloned();
        let (config, warnings) = ProvidersConfig::from_toml(model.as_deref(), providers.as_ref());
        assert!(warnings.is_empty(), "{warnings:?}");
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Registry::new(Catalog::builtin(), config, None, Arc::new(lookup)).0
    }

    #[test]
    fn provider_prefixed_models_resolve_with_catalog_facts() {
        let registry = registry_with("", &[]);
        let sonnet = registry
            .resolve("anthropic/claude-sonnet-4-5", &[])
            .unwrap();
        assert_eq!(sonnet.provider.id, "anthropic");
        assert_eq!(sonnet.info.unwrap().max_output, Some(64_000));
        let routed = registry
            .resolve("openrouter/anthropic/claude-sonnet-4.5", &[])
            .unwrap();
        assert_eq!(routed.provider.id, "openrouter");
        assert_eq!(routed.model, "anthropic/claude-sonnet-4.5");
        let ollama = registry.resolve("ollama/qwen2.5-coder:7b", &[]).unwrap();
        assert_eq!(ollama.provider.base_url, "http://127.0.0.1:11434");
        assert!(ollama.info.is_none());
    }

    #[test]
    fn bare_models_resolve_only_when_unambiguous() {
        let registry = registry_with("", &[]);
        assert_eq!(
            registry
                .resolve("claude-haiku-4-5", &[])
                .unwrap()
                .provider
                .id,
            "anthropic"
        );
        // gpt-5 is listed by openai and openai-responses (and openrouter as openai/gpt-5).
        assert!(matches!(
            registry.resolve("gpt-5", &[]),
            Err(ResolveError::NoProvider { .. })
        ));
        let error = registry.resolve("nowhere/model", &[]).unwrap_err();
        assert!(
            error.to_string().contains("unknown provider \"nowhere\""),
            "{error}"
        );
    }

    #[test]
    fn azure_needs_a_base_url() {
        let registry = registry_with("", &[]);
        assert_eq!(
            registry.resolve("azure/gpt-5", &[]).unwrap_err(),
            ResolveError::NoBaseUrl {
                provider: "azure".into()
            }
        );
        let configured = registry_with(
            "[providers.azure]\nbase_url = \"https://r.openai.azure.com/openai/v1\"\n",
            &[],
        );
        assert!(configured.resolve("azure/gpt-5", &[]).is_ok());
    }

    #[test]
    fn ollama_host_moves_the_ollama_endpoint() {
        let registry = registry_with("", &[("OLLAMA_HOST", "0.0.0.0:5555")]);
        let resolved = registry.resolve("ollama/llama3", &[]).unwrap();
        assert_eq!(resolved.provider.base_url, "http://127.0.0.1:5555");
    }

    #[test]
    fn local_models_go_to_the_server_that_has_them() {
        let registry = registry_with("", &[]);
        let servers = vec![
            LocalServer {
                provider: "ollama".into(),
                base_url: "http://127.0.0.1:11434".into(),
                models: vec!["llama3".into()],
            },
            LocalServer {
                provider: "llamacpp".into(),
                base_url: "http://127.0.0.1:8080/v1".into(),
                models: vec!["smollm2".into()],
            },
        ];
        let resolved = registry.resolve("local/smollm2", &servers).unwrap();
        assert_eq!(resolved.provider.id, "llamacpp");
        assert_eq!(resolved.provider.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(
            registry
                .resolve("local/other", &servers)
                .unwrap()
                .provider
                .id,
            "ollama"
        );
        assert_eq!(
            registry.resolve("local/x", &[]).unwrap_err(),
            ResolveError::NoLocalServer
        );
        assert_eq!(
            registry.default_model(&servers).as_deref(),
            Some("local/llama3")
        );
        assert_eq!(
            registry.default_model(&[]),
            None,
            "no hidden remote default"
        );
        let configured = registry_with("model = \"anthropic/claude-haiku-4-5\"", &[]);
        assert_eq!(
            configured.default_model(&servers).as_deref(),
            Some("anthropic/claude-haiku-4-5")
        );
    }

    #[test]
    fn keys_come_from_the_configured_variable() {
        let registry = registry_with(
            "[providers.mylocal]\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"MYLOCAL_KEY\"\n",
            &[("MYLOCAL_KEY", "my-local-key-123456")],
        );
        let resolved = registry.resolve("mylocal/m", &[]).unwrap();
        let (key, source) = registry.key_for(&resolved.provider).unwrap();
        assert_eq!(key.expose(), "my-local-key-123456");
        assert_eq!(source, KeySource::Env("MYLOCAL_KEY".into()));
    }
}
