//! Transport tasks: one reader task that turns a byte stream into [`Incoming`] items sent to a
//! channel, and one writer task that frames and writes outgoing messages, flushing only when
//! its queue is empty so bursts cost one flush.

use super::framing::{Frame, FrameReader, FramingError, write_frame};
use super::message::{Message, MessageError};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// What the reader task reports.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// A well-framed body that is not a valid message; the peer should get `error.to_response()`
    /// when it was a request (a server logs it instead).
    Invalid(MessageError),
    /// Bytes skipped because the framing was broken; logged, not answered.
    Skipped(String),
    /// The stream ended; `Some` when it ended badly (truncated body, i/o error).
    Closed(Option<String>),
}

/// Spawns a task that reads frames until the stream ends, mapping each item through `wrap`
/// into the receiver's event type. The task ends when the stream ends or the receiver is gone.
pub fn spawn_reader<R, E, F>(reader: R, events: mpsc::UnboundedSender<E>, wrap: F)
where
    R: AsyncBufRead + Unpin + Send + 'static,
    E: Send + 'static,
    F: Fn(Incoming) -> E + Send + 'static,
{
    tokio::spawn(async move {
        let mut frames = FrameReader::new(reader);
        loop {
            let item = match frames.next_frame().await {
                Ok(Frame::Body(body)) => match Message::parse(&body) {
                    Ok(message) => Incoming::Message(message),
                    Err(error) => Incoming::Invalid(error),
                },
                Ok(Frame::Skipped(why)) => Incoming::Skipped(why),
                Ok(Frame::Eof) => Incoming::Closed(None),
                Err(error @ FramingError::TruncatedBody { .. }) => {
                    Incoming::Closed(Some(error.to_string()))
                }
                Err(FramingError::Io(error)) => Incoming::Closed(Some(error.to_string())),
            };
            let closed = matches!(item, Incoming::Closed(_));
            if events.send(wrap(item)).is_err() || closed {
                return;
            }
        }
    });
}

/// The sending half of a writer task. Dropping every clone ends the task after it has written
/// what was queued.
#[derive(Clone, Debug)]
pub struct Outgoing {
    queue: mpsc::UnboundedSender<Message>,
}

impl Outgoing {
    /// Queues a message; returns false when the writer has stopped (peer gone).
    pub fn send(&self, message: Message) -> bool {
        self.queue.send(message).is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// Spawns the writer task. `on_error` is called once if writing fails.
pub fn spawn_writer<W>(writer: W) -> Outgoing
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (queue, mut rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, writer);
        while let Some(message) = rx.recv().await {
            if let Err(error) = write_message(&mut writer, &message).await {
                tracing::warn!(%error, "writing a message failed; the peer is gone");
                return;
            }
            // Write whatever else is queued before paying for a flush.
            while let Ok(message) = rx.try_recv() {
                if let Err(error) = write_message(&mut writer, &message).await {
                    tracing::warn!(%error, "writing a message failed; the peer is gone");
                    return;
                }
            }
            if let Err(error) = writer.flush().await {
                tracing::warn!(%error, "flushing failed; the peer is gone");
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    Outgoing { queue }
}

async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
) -> std::io::Result<()> {
    let body = message.to_json().map_err(std::io::Error::other)?;
    write_frame(writer, body.as_bytes()).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::jsonrpc::message::{Notification, RequestId};

    #[tokio::test]
    async fn writer_and_reader_roundtrip_over_a_pipe() {
        let (a, b) = tokio::io::duplex(1024);
        let out = spawn_writer(a);
        let (tx, mut rx) = mpsc::unbounded_channel();
        spawn_reader(tokio::io::BufReader::new(b), tx, |i| i);
        for n in 0..100 {
            let m = Notification::with_value("n", &serde_json::json!({ "n": n })).unwrap();
            assert!(out.send(Message::Notification(m)));
        }
        for n in 0..100 {
            match rx.recv().await.unwrap() {
                Incoming::Message(Message::Notification(m)) => {
                    assert_eq!(m.params.unwrap().get(), format!("{{\"n\":{n}}}"))
                }
                other => panic!("{other:?}"),
            }
        }
        drop(out);
        assert!(matches!(rx.recv().await.unwrap(), Incoming::Closed(None)));
    }

    #[tokio::test]
    async fn invalid_body_is_reported_and_reading_goes_on() {
        let input = b"Content-Length: 3\r\n\r\n{x}Content-Length: 37\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"m\"}".to_vec();
        let (tx, mut rx) = mpsc::unbounded_channel();
        spawn_reader(std::io::Cursor::new(input), tx, |i| i);
        assert!(matches!(
            rx.recv().await.unwrap(),
            Incoming::Invalid(MessageError::InvalidJson(_))
        ));
        match rx.recv().await.unwrap() {
            Incoming::Message(Message::Request(r)) => assert_eq!(r.id, RequestId::Number(5)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(rx.recv().await.unwrap(), Incoming::Closed(None)));
    }
}
