//! Diagnostics per (server, uri), versioned; the merged view; waiting for fresh results.
