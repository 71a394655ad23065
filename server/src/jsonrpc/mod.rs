//! JSON-RPC 2.0 over LSP base-protocol framing: messages, framing, transport tasks.
