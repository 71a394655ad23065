//! The fake server's view of document text: lines, LSP positions (UTF-16 code units), edits,
//! and the facts it derives from content (`ERROR:` diagnostics, the word under the cursor,
//! `fn` symbols).
//!
//! Lines end at `\n`, `\r\n` or `\r`, as LSP says. A position past the end of its line means
//! the end of the line; a line past the last means the end of the text.

use serde_json::{Value, json};

/// The marker that makes a line an error.
pub const ERROR_MARKER: &str = "ERROR:";

/// A position as LSP counts it: line, and UTF-16 code units into the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub fn from_json(value: &Value) -> Option<Position> {
        Some(Position {
            line: u32::try_from(value.get("line")?.as_u64()?).ok()?,
            character: u32::try_from(value.get("character")?.as_u64()?).ok()?,
        })
    }

    pub fn to_json(self) -> Value {
        json!({ "line": self.line, "character": self.character })
    }
}

pub fn range_json(start: Position, end: Position) -> Value {
    json!({ "start": start.to_json(), "end": end.to_json() })
}

/// One line of a text: its byte span without the line ending.
struct Line<'a> {
    start: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\n' => {
                lines.push(Line {
                    start,
                    text: &text[start..at],
                });
                at += 1;
                start = at;
            }
            b'\r' => {
                lines.push(Line {
                    start,
                    text: &text[start..at],
                });
                at += if bytes.get(at + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = at;
            }
            _ => at += 1,
        }
    }
    lines.push(Line {
        start,
        text: &text[start..],
    });
    lines
}

fn utf16_len(text: &str) -> u32 {
    let units: usize = text.chars().map(char::len_utf16).sum();
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The byte offset of `position` in `text`. A position inside a surrogate pair means the start
/// of that character.
pub fn offset_of(text: &str, position: Position) -> usize {
    let lines = lines(text);
    let Some(line) = lines.get(position.line as usize) else {
        return text.len();
    };
    let mut units = 0u32;
    for (at, ch) in line.text.char_indices() {
        let next = units + ch.len_utf16() as u32;
        if next > position.character {
            return line.start + at;
        }
        units = next;
    }
    line.start + line.text.len()
}

/// Replaces `start..end` with `new_text` (a reversed range is taken in order).
pub fn apply_edit(text: &mut String, start: Position, end: Position, new_text: &str) {
    let (a, b) = (offset_of(text, start), offset_of(text, end));
    let (from, to) = if a <= b { (a, b) } else { (b, a) };
    text.replace_range(from..to, new_text);
}

/// One diagnostic fact: the line's `ERROR:` span and the message after it.
pub struct ErrorLine {
    pub start: Position,
    pub end: Position,
    pub message: String,
}

/// Every line containing `ERROR:` (its first occurrence), in order.
pub fn error_lines(text: &str) -> Vec<ErrorLine> {
    let mut found = Vec::new();
    for (n, line) in lines(text).iter().enumerate() {
        let Some(at) = line.text.find(ERROR_MARKER) else {
            continue;
        };
        let line_number = u32::try_from(n).unwrap_or(u32::MAX);
        let character = utf16_len(&line.text[..at]);
        found.push(ErrorLine {
            start: Position {
                line: line_number,
                character,
            },
            end: Position {
                line: line_number,
                character: character + utf16_len(ERROR_MARKER),
            },
            message: line.text[at + ERROR_MARKER.len()..].trim().to_owned(),
        });
    }
    found
}

/// The identifier-like word (letters, digits, `_`) touching `position`; empty if none.
pub fn word_at(text: &str, position: Position) -> &str {
    let at = offset_of(text, position);
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word(c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|&(_, c)| !is_word(c))
        .map_or(text.len(), |(i, _)| at + i);
    &text[start..end]
}

/// `fn NAME` occurrences: (name, line, UTF-16 range of the name).
pub fn functions(text: &str) -> Vec<(String, Position, Position)> {
    let mut found = Vec::new();
    for (n, line) in lines(text).iter().enumerate() {
        let Some(at) = line.text.find("fn ") else {
            continue;
        };
        let rest = &line.text[at + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let line_number = u32::try_from(n).unwrap_or(u32::MAX);
        let character = utf16_len(&line.text[..at + 3]);
        found.push((
            name.clone(),
            Position {
                line: line_number,
                character,
            },
            Position {
                line: line_number,
                character: character + utf16_len(&name),
            },
        ));
    }
    found
}
