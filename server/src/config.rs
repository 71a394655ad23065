//! STUB
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
pub struct ConfigSources;
impl ConfigSources {
    pub fn from_env(_root: Option<PathBuf>, _i: Option<serde_json::Value>) -> Self {
        Self
    }
}
pub struct ConfigWarning;
impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("w")
    }
}
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
    pub files_read: Vec<PathBuf>,
}
#[derive(Clone, Default)]
pub struct Config {
    pub servers: BTreeMap<String, ()>,
    pub languages: BTreeMap<String, ()>,
}
impl Config {
    pub fn load(_s: &ConfigSources) -> LoadedConfig {
        LoadedConfig {
            config: Config::default(),
            warnings: vec![],
            files_read: vec![],
        }
    }
    pub fn language_of_path(&self, _p: &Path) -> Option<&str> {
        None
    }
    pub fn servers_for_language(
        &self,
        _l: &str,
        _w: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Vec<ResolvedServer> {
        vec![]
    }
}
#[derive(Clone, Debug)]
pub struct ResolvedServer {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub settings: serde_json::Value,
    pub initialization_options: Option<serde_json::Value>,
    pub root_markers: Vec<String>,
}
pub fn find_in_path(_c: &str) -> Option<PathBuf> {
    None
}
pub fn detect_languages(_r: &Path, _c: &Config, _l: usize) -> BTreeSet<String> {
    BTreeSet::new()
}
