//! Layered configuration (defaults < user file < project `tack.toml` < initializationOptions < `TACK_*`).
