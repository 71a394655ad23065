//! MCP both ways.
//!
//! - `config`: the MCP servers a user has — `[mcp.<name>]` in tack's configuration and the
//!   project's `.mcp.json` (`mcpServers`).
//! - `client`: those servers started for a session, their tools given to tack's agent as
//!   `<server>__<tool>` beside the built-in ones.
//! - `server`: `tack mcp`, tack's own language intelligence (merged, versioned diagnostics,
//!   navigation, snapshot-backed edits with undo/redo) served over stdio to any MCP client.

pub mod client;
pub mod config;
pub mod server;

pub use client::{McpClients, McpStart, ServerReport, ServerStatus};
pub use config::{McpConfig, McpEntry, McpServerSpec, McpTransport};
