//! Behaviour tests of the snapshot store.
