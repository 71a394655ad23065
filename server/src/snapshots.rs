//! Snapshots: a git2 shadow store for undo/redo of agent changes.
