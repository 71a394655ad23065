//! A scriptable fake language server for tests and benchmarks.
fn main() {}
