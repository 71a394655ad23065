//! The editor-facing proxy: main loop, child servers, routing and merging.

pub mod capabilities;
