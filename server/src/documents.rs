//! The store of open documents: ropey text, versions, UTF-16 positions, incremental sync.
