//! `tack lsp --listen`: editor connections over loopback TCP or a Unix socket, one session
//! each. Any other address is refused: tack exposes no network service; remote use goes
//! through an SSH tunnel to the loopback port.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "refusing to listen on {0}: tack serves only loopback addresses (127.0.0.1, ::1, localhost) or a Unix socket path; for remote use, forward the port over SSH (ssh -L 9257:127.0.0.1:9257 host)"
    )]
    NotLoopback(String),
    #[error(
        "cannot understand listen address {0:?}: expected 127.0.0.1:PORT, [::1]:PORT, localhost:PORT, or unix:/path/to/socket"
    )]
    Unparsable(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Parses `--listen`: a loopback `host:port`, or `unix:PATH` / a path containing `/`.
pub fn parse_listen_address(text: &str) -> Result<ListenAddress, ListenError> {
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(ListenAddress::Unix(PathBuf::from(path)));
    }
    if text.contains('/') {
        return Ok(ListenAddress::Unix(PathBuf::from(text)));
    }
    let addresses: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|_| ListenError::Unparsable(text.to_owned()))?
        .collect();
    // `localhost` may resolve to both families; every result must be loopback.
    match addresses.first() {
        Some(first) if addresses.iter().all(|a| a.ip().is_loopback()) => {
            Ok(ListenAddress::Tcp(*first))
        }
        Some(_) => Err(ListenError::NotLoopback(text.to_owned())),
        None => Err(ListenError::Unparsable(text.to_owned())),
    }
}

/// Accepts connections forever, serving each as its own session.
pub async fn serve_listener(address: ListenAddress) -> Result<(), ListenError> {
    let bind_error = |source| ListenError::Bind {
        address: format!("{address:?}"),
        source,
    };
    match &address {
        ListenAddress::Tcp(socket) => {
            let listener = tokio::net::TcpListener::bind(socket)
                .await
                .map_err(bind_error)?;
            let local = listener.local_addr().map_err(bind_error)?;
            tracing::info!(address = %local, "listening for editor connections");
            loop {
                let (stream, peer) = listener.accept().await.map_err(bind_error)?;
                tracing::info!(%peer, "editor connected");
                let (reader, writer) = stream.into_split();
                tokio::spawn(async move {
                    let end = super::serve(reader, writer).await;
                    tracing::info!(%peer, ?end, "editor session ended");
                });
            }
        }
        ListenAddress::Unix(path) => {
            if path.exists() {
                // A stale socket of an earlier run; a live one would still fail to bind below.
                let _ = std::fs::remove_file(path);
            }
            let listener = tokio::net::UnixListener::bind(path).map_err(bind_error)?;
            tracing::info!(path = %path.display(), "listening for editor connections");
            loop {
                let (stream, _) = listener.accept().await.map_err(bind_error)?;
                tracing::info!("editor connected");
                let (reader, writer) = stream.into_split();
                tokio::spawn(async move {
                    let end = super::serve(reader, writer).await;
                    tracing::info!(?end, "editor session ended");
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_accepted() {
        assert_eq!(
            parse_listen_address("127.0.0.1:9257").unwrap(),
            ListenAddress::Tcp("127.0.0.1:9257".parse().unwrap())
        );
        assert!(matches!(
            parse_listen_address("[::1]:9257").unwrap(),
            ListenAddress::Tcp(_)
        ));
        assert!(matches!(
            parse_listen_address("localhost:9257").unwrap(),
            ListenAddress::Tcp(a) if a.ip().is_loopback()
        ));
        assert_eq!(
            parse_listen_address("unix:/tmp/tack.sock").unwrap(),
            ListenAddress::Unix("/tmp/tack.sock".into())
        );
    }

    #[test]
    fn other_addresses_are_refused_with_a_clear_error() {
        for address in ["0.0.0.0:9257", "192.168.1.10:9257", "[::]:9257"] {
            let error = parse_listen_address(address).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("refusing to listen"), "{text}");
            assert!(text.contains("ssh -L"), "{text}");
        }
        assert!(matches!(
            parse_listen_address("nonsense").unwrap_err(),
            ListenError::Unparsable(_)
        ));
    }
}
