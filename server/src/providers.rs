//! Model providers: catalog, wire adapters, auth, usage and cost.
