//! The fake language server driven directly by the test client: its flags, its diagnostics,
//! its scripting methods, and a clean shutdown.
