//! API keys: found in the provider's environment variables or in tack's credential file
//! (`$XDG_DATA_HOME/tack/credentials.toml`, mode 0600, written by `tack auth login`).
//!
//! A key is an [`ApiKey`], whose `Debug` prints `[redacted]` and which has no `Display`: it
//! cannot end up in a log line or an error by accident (invariant 7).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::ProviderEntry;

/// A secret. Only [`ApiKey::expose`] gives the text, at the one place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Where a key was found (shown by `tack models` and `tack doctor`, never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    CredentialFile(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(name) => write!(f, "${name}"),
            KeySource::CredentialFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Reads environment variables; injectable so tests never touch the process environment.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid credential file: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("no data directory: set XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error("the key is empty")]
    EmptyKey,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialFile {
    #[serde(flatten)]
    providers: BTreeMap<String, StoredCredential>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCredential {
    api_key: String,
}

/// tack's data directory: `$XDG_DATA_HOME/tack`, else `~/.local/share/tack`.
pub fn data_dir(env: &EnvLookup) -> Option<PathBuf> {
    if let Some(dir) = env("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Some(PathBuf::from(dir).join("tack"));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/tack"))
}

/// The credential file.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        CredentialStore { path: path.into() }
    }

    pub fn in_data_dir(env: &EnvLookup) -> Option<Self> {
        data_dir(env).map(|dir| CredentialStore::at(dir.join("credentials.toml")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<CredentialFile, AuthError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialFile::default());
            }
            Err(source) => {
                return Err(AuthError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        warn_if_readable_by_others(&self.path);
        // The parse error is not shown: it could quote a line holding a key.
        toml::from_str(&text).map_err(|_| AuthError::Parse {
            path: self.path.clone(),
            detail: "expected [provider] tables with api_key = \"…\"".to_owned(),
        })
    }

    pub fn load(&self, provider: &str) -> Result<Option<ApiKey>, AuthError> {
        let file = self.read()?;
        Ok(file
            .providers
            .get(provider)
            .map(|c| ApiKey::new(c.api_key.clone())))
    }

    /// Stores a key, replacing the provider's previous one. The file is written to a temporary
    /// file created with mode 0600 and renamed over the old one.
    pub fn save(&self, provider: &str, key: &ApiKey) -> Result<(), AuthError> {
        if key.expose().is_empty() {
            return Err(AuthError::EmptyKey);
        }
        let mut file = self.read()?;
        file.providers.insert(
            provider.to_owned(),
            StoredCredential {
                api_key: key.expose().to_owned(),
            },
        );
        self.write(&file)
    }

    /// Forgets a provider's key; returns whether there was one.
    pub fn remove(&self, provider: &str) -> Result<bool, AuthError> {
        let mut file = self.read()?;
        let removed = file.providers.remove(provider).is_some();
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }

    fn write(&self, file: &CredentialFile) -> Result<(), AuthError> {
        let write_error = |source| AuthError::Write {
            path: self.path.clone(),
            source,
        };
        let text = toml::to_string(file).map_err(|error| AuthError::Parse {
            path: self.path.clone(),
            detail: error.to_string(),
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(write_error)?;
        let temp = self.path.with_extension("toml.tmp");
        let mut out = open_private(&temp).map_err(write_error)?;
        out.write_all(text.as_bytes()).map_err(write_error)?;
        out.sync_all().map_err(write_error)?;
        drop(out);
        std::fs::rename(&temp, &self.path).map_err(write_error)
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through `open`; force it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "credential file is readable by others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Finds a provider's key: its environment variables in order, then the credential file.
/// A file that cannot be read is logged (without content) and skipped.
pub fn find_key(
    entry: &ProviderEntry,
    store: Option<&CredentialStore>,
    env: &EnvLookup,
) -> Option<(ApiKey, KeySource)> {
    for name in &entry.api_key_env {
        if let Some(value) = env(name).filter(|v| !v.trim().is_empty()) {
            return Some((ApiKey::new(value), KeySource::Env(name.clone())));
        }
    }
    let store = store?;
    match store.load(&entry.id) {
        Ok(Some(key)) => Some((key, KeySource::CredentialFile(store.path().to_owned()))),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "credential file skipped");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::providers::catalog::Catalog;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sk-secret-1234567890");
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
    }

    #[cfg(unix)]
    #[test]
    fn saved_credentials_are_private_and_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("nested/credentials.toml"));
        store
            .save("anthropic", &ApiKey::new("sk-ant-one-1234567890"))
            .unwrap();
        store
            .save("openai", &ApiKey::new("sk-two-1234567890"))
            .unwrap();
        store
            .save("anthropic", &ApiKey::new("sk-ant-three-1234567890"))
            .unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(store.path().parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(
            store.load("anthropic").unwrap().unwrap().expose(),
            "sk-ant-three-1234567890"
        );
        assert_eq!(
            store.load("openai").unwrap().unwrap().expose(),
            "sk-two-1234567890"
        );
        assert!(store.remove("openai").unwrap());
        assert!(store.load("openai").unwrap().is_none());
        assert!(matches!(
            store.save("x", &ApiKey::new("  ")),
            Err(AuthError::EmptyKey)
        ));
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("credentials.toml"));
        store
            .save("gemini", &ApiKey::new("from-file-1234567890"))
            .unwrap();
        let catalog = Catalog::builtin();
        let gemini = catalog.get("gemini").unwrap();
        let env = |name: &str| (name == "GOOGLE_API_KEY").then(|| "from-env-1234567890".to_owned());
        let (key, source) = find_key(gemini, Some(&store), &env).unwrap();
        assert_eq!(key.expose(), "from-env-1234567890");
        assert_eq!(source, KeySource::Env("GOOGLE_API_KEY".into()));
        let (key, source) = find_key(gemini, Some(&store), &|_: &str| None).unwrap();
        assert_eq!(key.expose(), "from-file-1234567890");
        assert!(matches!(source, KeySource::CredentialFile(_)));
    }

    #[test]
    fn a_broken_file_never_echoes_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "[openai]\napi_key = \"sk-unterminated-1234567890\n").unwrap();
        let error = CredentialStore::at(&path)
            .load("openai")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("sk-unterminated"), "{error}");
    }

    #[test]
    fn data_dir_follows_xdg() {
        let env = |name: &str| match name {
            "XDG_DATA_HOME" => Some("/x/data".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(data_dir(&env), Some(PathBuf::from("/x/data/tack")));
        let env = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            data_dir(&env),
            Some(PathBuf::from("/home/u/.local/share/tack"))
        );
    }
}
