//! JSON-RPC 2.0 over LSP base-protocol framing: messages, framing, transport tasks.
//!
//! Layers, bottom up: [`framing`] (bytes ⇄ frames), [`message`] (frames ⇄ typed messages with
//! raw params), [`transport`] (tasks that move messages between a byte stream and channels).

pub mod framing;
pub mod message;
pub mod transport;

pub use message::{
    Message, MessageError, Notification, Request, RequestId, Response, ResponseError, error_code,
};
pub use transport::{Incoming, Outgoing, spawn_reader, spawn_writer};
