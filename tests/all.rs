//! The one integration-test binary: modules per area, sharing `support`.

// Tests may unwrap: a failed unwrap is a failed test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acp;
mod companion;
mod context;
mod e2e;
mod fake_lsp_selftest;
mod headless;
mod helix;
mod ledger;
mod mcp;
mod proxy;
mod run;
mod support;
mod surfaces;
