//! The editor-facing proxy: `tack lsp`.
//!
//! One [`Proxy`](main_loop::Proxy) per editor connection owns the session: the document store,
//! the diagnostics store and the child language servers. Code map:
//! - [`main_loop`]: the `Event` enum and the loop that handles one event at a time;
//! - [`initialize`], [`lifecycle`]: starting, restarting, shutting down children;
//! - [`text_sync`], [`diagnostics_flow`]: documents and diagnostics;
//! - [`forward`], [`from_child`]: everything tack passes through, with ids mapped;
//! - [`routing`], [`merge`], [`capabilities`]: pure decisions over JSON;
//! - [`agent_flow`]: the agent in the editor (code actions, commands, proposals, undo);
//! - [`companion`]: companion mode (the editor's own servers, their diagnostics reported to tack);
//! - [`child`]: one child process; [`listen`]: loopback TCP and Unix socket serving.

mod agent_flow;
pub mod capabilities;
pub mod child;
pub mod companion;
mod context_flow;
mod diagnostics_flow;
mod forward;
mod from_child;
mod initialize;
mod late_servers;
mod lifecycle;
pub mod listen;
pub mod main_loop;
pub mod merge;
pub mod routing;
mod text_sync;

pub use agent_flow::SurfaceEvent;
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

/// Serves the editor on stdin/stdout. Pipes and sockets are read and written without
/// blocking, on the session's own thread; tokio's `stdin()`/`stdout()` would hand every read
/// and write to a blocking thread, which costs a thread hand-off per message.
pub async fn serve_stdio() -> SessionEnd {
    match nonblocking_stdio() {
        Some((reader, writer)) => serve(reader, writer).await,
        None => serve(tokio::io::stdin(), tokio::io::stdout()).await,
    }
}

type BoxedReader = Box<dyn AsyncRead + Unpin + Send>;
type BoxedWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// Stdin and stdout as non-blocking pipes or a socket, when they are that (not a terminal
/// or a file).
fn nonblocking_stdio() -> Option<(BoxedReader, BoxedWriter)> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let stdout = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    let stdin_type = std::fs::File::from(stdin.try_clone().ok()?)
        .metadata()
        .ok()?
        .file_type();
    let stdout_type = std::fs::File::from(stdout.try_clone().ok()?)
        .metadata()
        .ok()?
        .file_type();
    use std::os::unix::fs::FileTypeExt;
    let reader: BoxedReader = if stdin_type.is_fifo() {
        Box::new(tokio::net::unix::pipe::Receiver::from_owned_fd(stdin).ok()?)
    } else if stdin_type.is_socket() {
        Box::new(unix_stream(stdin)?)
    } else {
        return None;
    };
    let writer: BoxedWriter = if stdout_type.is_fifo() {
        Box::new(tokio::net::unix::pipe::Sender::from_owned_fd(stdout).ok()?)
    } else if stdout_type.is_socket() {
        Box::new(unix_stream(stdout)?)
    } else {
        return None;
    };
    Some((reader, writer))
}

fn unix_stream(fd: std::os::fd::OwnedFd) -> Option<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(stream).ok()
}
