//! The identity of one child language server within a session.

use std::fmt;
use std::sync::Arc;

/// Names one configured language server (the key of its `[servers.<name>]` table,
/// for example `clangd`). Cheap to clone; used as a map key by the diagnostics store,
/// the child registry and the request tables.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(Arc<str>);

impl ServerId {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({})", self.0)
    }
}

impl From<&str> for ServerId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}
