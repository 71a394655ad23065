//! LSP base-protocol framing: `Content-Length: N\r\n\r\n` followed by N bytes.
//!
//! The reader never gives up on a bad frame header: it logs, skips forward to the next line
//! that starts a header (`Content-Length:`), and carries on. Servers that print garbage to
//! stdout and editors that send a broken header therefore cost one message, not the session.
//! Only end of input (clean or in the middle of a body) ends the stream.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest body accepted; a larger `Content-Length` is treated as a corrupt header.
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

const CONTENT_LENGTH: &str = "content-length";

#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("input ended in the middle of a message body ({read} of {expected} bytes)")]
    TruncatedBody { read: usize, expected: usize },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// What one call to [`FrameReader::next_frame`] found.
#[derive(Debug)]
pub enum Frame {
    Body(Vec<u8>),
    /// Bytes that were skipped because they were not a valid header; the text says why.
    Skipped(String),
    /// The input ended cleanly between messages.
    Eof,
}

/// Reads frames from a buffered byte stream.
pub struct FrameReader<R> {
    reader: R,
    line: Vec<u8>,
    /// A header line already read while skipping garbage.
    pending_header: Option<Vec<u8>>,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: Vec::with_capacity(64),
            pending_header: None,
        }
    }

    /// Reads the next frame.
    pub async fn next_frame(&mut self) -> Result<Frame, FramingError> {
        let mut content_length: Option<usize> = None;
        let mut problem: Option<String> = None;
        let mut saw_header = false;
        loop {
            let line = match self.pending_header.take() {
                Some(line) => line,
                None => {
                    self.line.clear();
                    let n = self.reader.read_until(b'\n', &mut self.line).await?;
                    if n == 0 {
                        return Ok(if saw_header {
                            Frame::Skipped("input ended inside a message header".to_owned())
                        } else {
                            Frame::Eof
                        });
                    }
                    std::mem::take(&mut self.line)
                }
            };
            let text = trim_line_end(&line);
            if text.is_empty() {
                if !saw_header {
                    // Blank lines between messages are tolerated.
                    continue;
                }
                break;
            }
            match parse_header(text) {
                Some((name, value)) => {
                    saw_header = true;
                    if name.eq_ignore_ascii_case(CONTENT_LENGTH) {
                        match value.trim().parse::<usize>() {
                            Ok(n) if n <= MAX_BODY_BYTES => content_length = Some(n),
                            Ok(n) => {
                                problem = Some(format!(
                                    "Content-Length {n} exceeds the limit of {MAX_BODY_BYTES} bytes"
                                ))
                            }
                            Err(_) => {
                                problem = Some(format!("invalid Content-Length value {value:?}"))
                            }
                        }
                    }
                }
                None => {
                    let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                    return Ok(Frame::Skipped(
                        self.skip_to_next_header(format!("not a header line: {shown:?}"))
                            .await?,
                    ));
                }
            }
        }
        if let Some(problem) = problem {
            return Ok(Frame::Skipped(self.skip_to_next_header(problem).await?));
        }
        let Some(expected) = content_length else {
            return Ok(Frame::Skipped(
                self.skip_to_next_header("header without Content-Length".to_owned())
                    .await?,
            ));
        };
        let mut body = vec![0u8; expected];
        let mut read = 0;
        while read < expected {
            let n = self.reader.read(&mut body[read..]).await?;
            if n == 0 {
                return Err(FramingError::TruncatedBody { read, expected });
            }
            read += n;
        }
        Ok(Frame::Body(body))
    }

    /// Discards lines until one that starts a header, which is kept for the next frame.
    async fn skip_to_next_header(&mut self, reason: String) -> Result<String, FramingError> {
        loop {
            self.line.clear();
            let n = self.reader.read_until(b'\n', &mut self.line).await?;
            if n == 0 {
                return Ok(reason);
            }
            // A header may follow garbage on the same line (a body without a newline).
            if let Some(at) = find_ascii_case_insensitive(&self.line, b"content-length:") {
                self.pending_header = Some(self.line[at..].to_vec());
                return Ok(reason);
            }
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_header(line: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(line).ok()?;
    let (name, value) = text.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    Some((name, value.trim()))
}

fn find_ascii_case_insensitive(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

/// Writes one frame (header and body). The caller flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    writer.write_all(header.as_bytes()).await?;
    writer.write_all(body).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<String> {
        let mut reader = FrameReader::new(input);
        let mut out = Vec::new();
        loop {
            match reader.next_frame().await {
                Ok(Frame::Body(b)) => out.push(format!("body:{}", String::from_utf8(b).unwrap())),
                Ok(Frame::Skipped(why)) => out.push(format!("skipped:{why}")),
                Ok(Frame::Eof) => break,
                Err(e) => {
                    out.push(format!("error:{e}"));
                    break;
                }
            }
        }
        out
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[tokio::test]
    async fn reads_consecutive_frames_and_other_headers() {
        let input = format!(
            "{}content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{{}}{}",
            frame("{\"a\":1}"),
            frame("é")
        );
        assert_eq!(
            frames(input.as_bytes()).await,
            ["body:{\"a\":1}", "body:{}", "body:é"]
        );
    }

    #[tokio::test]
    async fn garbage_before_a_header_is_skipped() {
        let input = format!("hello from a chatty server\n{}", frame("{}"));
        let got = frames(input.as_bytes()).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("skipped:not a header line"), "{got:?}");
        assert_eq!(got[1], "body:{}");
    }

    #[tokio::test]
    async fn bad_content_length_skips_to_next_frame() {
        let input = format!(
            "Content-Length: twelve\r\n\r\n{{\"x\":1}}\n{}",
            frame("{\"ok\":true}")
        );
        let got = frames(input.as_bytes()).await;
        assert!(
            got[0].contains("invalid Content-Length value \"twelve\""),
            "{got:?}"
        );
        assert_eq!(got[1], "body:{\"ok\":true}");
    }

    #[tokio::test]
    async fn body_without_newline_then_header_on_same_line_recovers() {
        let input = format!("Content-Length: x\r\n\r\n{{}}{}", frame("{}"));
        let got = frames(input.as_bytes()).await;
        assert_eq!(got.last().unwrap(), "body:{}", "{got:?}");
    }

    #[tokio::test]
    async fn missing_and_oversized_lengths_are_skipped() {
        let input = format!("Content-Type: x\r\n\r\n{}", frame("1"));
        let got = frames(input.as_bytes()).await;
        assert!(got[0].contains("without Content-Length"), "{got:?}");
        assert_eq!(got[1], "body:1");
        let input = format!("Content-Length: 99999999999\r\n\r\n{}", frame("2"));
        let got = frames(input.as_bytes()).await;
        assert!(got[0].contains("exceeds the limit"), "{got:?}");
        assert_eq!(got[1], "body:2");
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let got = frames(b"Content-Length: 10\r\n\r\n{\"a\"").await;
        assert_eq!(
            got,
            ["error:input ended in the middle of a message body (4 of 10 bytes)"]
        );
    }

    #[tokio::test]
    async fn eof_inside_header_is_reported() {
        let got = frames(b"Content-Length: 10\r\n").await;
        assert_eq!(got, ["skipped:input ended inside a message header"]);
    }

    #[tokio::test]
    async fn write_then_read_roundtrip() {
        let mut out = Vec::new();
        write_frame(&mut out, "{\"ü\":1}".as_bytes()).await.unwrap();
        assert_eq!(frames(&out).await, ["body:{\"ü\":1}"]);
    }
}
