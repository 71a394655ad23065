//! The editor-facing proxy: `tack lsp`.
//!
//! One [`Proxy`](main_loop::Proxy) per editor connection owns the session: the document store,
//! the diagnostics store and the child language servers. Code map:
//! - [`main_loop`]: the `Event` enum and the loop that handles one event at a time;
//! - [`initialize`], [`lifecycle`]: starting, restarting, shutting down children;
//! - [`text_sync`], [`diagnostics_flow`]: documents and diagnostics;
//! - [`forward`], [`from_child`]: everything tack passes through, with ids mapped;
//! - [`routing`], [`merge`], [`capabilities`]: pure decisions over JSON;
//! - [`child`]: one child process; [`listen`]: loopback TCP and Unix socket serving.

pub mod capabilities;
pub mod child;
mod diagnostics_flow;
mod forward;
mod from_child;
mod initialize;
mod lifecycle;
pub mod listen;
pub mod main_loop;
pub mod merge;
pub mod routing;
mod text_sync;

pub use main_loop::{ProxyHandle, SessionEnd};

use crate::jsonrpc;
use main_loop::{Event, Proxy};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::mpsc;

/// Serves one editor connection until it sends `exit` or goes away.
pub async fn serve<R, W>(reader: R, writer: W) -> SessionEnd
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (_, session) = start(reader, writer);
    session.await.unwrap_or(SessionEnd::Abrupt)
}

/// Starts serving one connection in a task; returns a handle on the session's state and the
/// task, which ends with the session.
pub fn start<R, W>(reader: R, writer: W) -> (ProxyHandle, tokio::task::JoinHandle<SessionEnd>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    jsonrpc::spawn_reader(
        BufReader::with_capacity(64 * 1024, reader),
        events_tx.clone(),
        Event::Editor,
    );
    let editor = jsonrpc::spawn_writer(writer);
    let proxy = Proxy::new(editor, events_tx);
    let handle = proxy.handle();
    let task = tokio::spawn(async move {
        let end = proxy.run(events_rx).await;
        // Let the writer task drain what was queued (the last responses) before returning.
        tokio::task::yield_now().await;
        end
    });
    (handle, task)
}

/// Serves the editor on stdin/stdout.
pub async fn serve_stdio() -> SessionEnd {
    serve(tokio::io::stdin(), tokio::io::stdout()).await
}
