//! Finding model servers already running on this machine: Ollama (11434, or `OLLAMA_HOST`),
//! LM Studio (1234), llama.cpp's server (8080).
//!
//! Only loopback addresses are ever probed, with one short timeout, all at once: discovery
//! never sends anything off the machine (invariant 6). A probe asks the server for its model
//! list, which also tells which models `local/<model>` can name.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::catalog::{Catalog, WireApi};
use super::client::ModelClient;

/// How long one probe may take, connection included.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// The catalog providers discovery looks for, in order of preference.
pub const LOCAL_PROVIDERS: [&str; 3] = ["ollama", "lmstudio", "llamacpp"];

/// A model server that answered a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServer {
    /// The catalog id of the kind of server (`ollama`, `lmstudio`, `llamacpp`).
    pub provider: String,
    pub base_url: String,
    pub models: Vec<String>,
}

/// One place to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub provider: String,
    pub api: WireApi,
    pub base_url: String,
}

/// The probe targets from the catalog (which already has `OLLAMA_HOST` applied): the local
/// servers' base URLs, loopback only.
pub fn probe_targets(catalog: &Catalog) -> Vec<ProbeTarget> {
    LOCAL_PROVIDERS
        .iter()
        .filter_map(|id| catalog.get(id))
        .filter(|entry| is_loopback_url(&entry.base_url))
        .map(|entry| ProbeTarget {
            provider: entry.id.clone(),
            api: entry.api,
            base_url: entry.base_url.trim_end_matches('/').to_owned(),
        })
        .collect()
}

/// Probes every target at once; returns those that answered, in the targets' order.
pub async fn discover(client: &ModelClient, targets: &[ProbeTarget]) -> Vec<LocalServer> {
    let probes = targets.iter().map(|target| probe(client, target));
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn probe(client: &ModelClient, target: &ProbeTarget) -> Option<LocalServer> {
    if !is_loopback_url(&target.base_url) {
        return None;
    }
    let http = client.http(PROBE_TIMEOUT, true).ok()?;
    let url = match target.api {
        WireApi::Ollama => format!("{}/api/tags", target.base_url),
        _ => format!("{}/models", target.base_url),
    };
    let fetch = async {
        let response = http.get(&url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok()
    };
    let body = tokio::time::timeout(PROBE_TIMEOUT, fetch).await.ok()??;
    let models = model_names(target.api, &body)?;
    tracing::debug!(provider = %target.provider, url = %target.base_url, models = models.len(), "local model server found");
    Some(LocalServer {
        provider: target.provider.clone(),
        base_url: target.base_url.clone(),
        models,
    })
}

/// Ollama lists `{"models": [{"name": …}]}`; OpenAI-compatible servers `{"data": [{"id": …}]}`.
fn model_names(api: WireApi, body: &Value) -> Option<Vec<String>> {
    let (list, key) = match api {
        WireApi::Ollama => (body.get("models")?, "name"),
        _ => (body.get("data")?, "id"),
    };
    Some(
        list.as_array()?
            .iter()
            .filter_map(|model| model.get(key).and_then(Value::as_str).map(str::to_owned))
            .collect(),
    )
}

/// Whether a URL's host is this machine's loopback.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// `OLLAMA_HOST` as a base URL: `host`, `host:port` or a URL; `0.0.0.0` (listen everywhere)
/// means this machine.
pub fn ollama_host_url(value: &str) -> Option<String> {
    let value = value.trim().trim_end_matches('/');
    if value.is_empty() {
        return None;
    }
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let mut url = url::Url::parse(&with_scheme).ok()?;
    if url.host_str() == Some("0.0.0.0") {
        url.set_host(Some("127.0.0.1")).ok()?;
    }
    if url.port().is_none() && !value.contains("://") {
        url.set_port(Some(11434)).ok()?;
    }
    Some(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_counts() {
        assert!(is_loopback_url("http://127.0.0.1:11434"));
        assert!(is_loopback_url("http://127.3.2.1:1/v1"));
        assert!(is_loopback_url("http://localhost:1234/v1"));
        assert!(is_loopback_url("http://[::1]:8080/v1"));
        assert!(!is_loopback_url("http://192.168.1.5:11434"));
        assert!(!is_loopback_url("http://ollama.example:11434"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn ollama_host_forms() {
        assert_eq!(
            ollama_host_url("0.0.0.0").as_deref(),
            Some("http://127.0.0.1:11434")
        );
        assert_eq!(
            ollama_host_url("127.0.0.1:5000").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            ollama_host_url("http://localhost:7/").as_deref(),
            Some("http://localhost:7")
        );
        assert_eq!(ollama_host_url("").as_deref(), None);
    }

    #[test]
    fn remote_ollama_hosts_are_not_probe_targets() {
        let mut catalog = Catalog::builtin();
        if let Some(ollama) = catalog.providers.get_mut("ollama") {
            ollama.base_url = "http://10.0.0.9:11434".into();
        }
        let targets = probe_targets(&catalog);
        assert!(
            targets.iter().all(|t| t.provider != "ollama"),
            "{targets:?}"
        );
        assert_eq!(targets.len(), 2);
    }
}
