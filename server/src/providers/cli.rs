//! The provider side of `tack models [--refresh]` and `tack auth login <provider>`: functions
//! that return text and records; the binary wires them to the command line.

/// The catalog overlay `tack models --refresh` writes into tack's data directory.
pub const OVERLAY_FILE: &str = "catalog.toml";
