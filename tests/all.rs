//! The one integration-test binary: modules per area, sharing `support`.
mod e2e;
