//! Proxy benchmark: the same request mix directly against a server and through tack.
fn main() {}
