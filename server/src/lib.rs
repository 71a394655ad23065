//! tack: an open, provider-agnostic coding-agent harness shipped as a language server.
//!
//! The library holds everything; `main.rs` is only the command-line edge. See
//! `ARCHITECTURE.md` at the repository root for the code map and the invariants.

pub mod acp;
pub mod agent;
pub mod config;
pub mod context;
pub mod diagnostics;
pub mod doctor;
pub mod documents;
pub mod fast_hash;
pub mod headless;
pub mod helix;
pub mod jsonrpc;
pub mod ledger;
pub mod logging;
pub mod mcp;
pub mod providers;
pub mod proxy;
pub mod run;
pub mod server_id;
pub mod snapshots;
pub mod surfaces;
pub mod syntax;
