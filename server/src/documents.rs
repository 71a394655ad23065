//! The store of open documents: ropey text, versions, UTF-16 positions, incremental sync.
//!
//! The proxy's main loop owns one [`DocumentStore`] and feeds it every `didOpen`,
//! `didChange` and `didClose` the editor sends, so tack always holds the exact text of
//! every open buffer (unsaved edits included). Positions are LSP positions: a zero-based
//! line and a column in UTF-16 code units. Lines end at `\n`, `\r\n` or a lone `\r` and
//! nowhere else: ropey is built with only its `cr_lines` feature (not `unicode_lines`), so
//! its line numbering is the LSP one; `tests::only_lsp_line_breaks_count` holds that.

use std::collections::HashMap;

use ropey::Rope;
use serde::{Deserialize, Serialize};

/// A position in a document: zero-based line, and a zero-based column counted in UTF-16
/// code units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// A range between two positions; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// One `TextDocumentContentChangeEvent`: a replacement of `range` by `text`, or, without a
/// range, the whole new text of the document. The deprecated `rangeLength` is accepted on
/// the wire and ignored (the range alone is authoritative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    pub text: String,
}

/// A place in a text: a line and a column counted in bytes from the line's start (what
/// tree-sitter calls a point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BytePoint {
    pub line: usize,
    pub byte_column: usize,
}

/// Where one applied change fell, in the byte offsets and points of the text before it
/// (`start`, `old_end`) and after it (`new_end`): what an incremental parser needs to follow
/// the edit without looking at the text again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteEdit {
    pub start_byte: usize,
    pub old_end_byte: usize,
    pub new_end_byte: usize,
    pub start_point: BytePoint,
    pub old_end_point: BytePoint,
    pub new_end_point: BytePoint,
}

/// What a `didChange` did to a document's text, for whoever follows it incrementally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextEdits {
    /// Every change had a range: where each fell, in order, each in the text the previous
    /// ones left.
    Ranges(Vec<ByteEdit>),
    /// A change replaced the whole text.
    Replaced,
}

/// A position found in a text.
#[derive(Debug, Clone, Copy)]
struct Located {
    char: usize,
    byte: usize,
    point: BytePoint,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("document {uri} is not open")]
    NotOpen { uri: String },
}

/// One open document as the editor last described it.
#[derive(Debug, Clone)]
pub struct Document {
    pub uri: String,
    pub language_id: String,
    pub version: i32,
    pub text: Rope,
}

impl Document {
    pub fn new(uri: String, language_id: String, version: i32, text: &str) -> Self {
        Self {
            uri,
            language_id,
            version,
            text: Rope::from_str(text),
        }
    }

    /// The char index a position designates, clamped the way the LSP asks: a column past
    /// the end of its line means the end of the line (before its line break), a line past
    /// the last line means the end of the document, and a column in the middle of a
    /// surrogate pair means the start of that character.
    pub fn position_to_char(&self, position: Position) -> usize {
        self.locate(position).char
    }

    /// Where a position (clamped as in [`Document::position_to_char`]) falls in the text:
    /// char and byte offsets and its point, from the line's start and its slice. On a line
    /// of ASCII text a UTF-16 column is its char and byte column, so nothing is counted.
    fn locate(&self, position: Position) -> Located {
        let line = position.line as usize;
        let Some(slice) = self.text.get_line(line) else {
            return self.locate_byte(self.text.len_bytes());
        };
        let line_start_char = self.text.line_to_char(line);
        let line_start_byte = self.text.line_to_byte(line);
        let content = slice.slice(..slice.len_chars() - line_break_chars(&slice));
        let wanted = position.character as usize;
        let (chars, bytes) = if content.len_bytes() == content.len_chars() {
            let column = wanted.min(content.len_chars());
            (column, column)
        } else {
            // Ropey maps a code unit inside a surrogate pair to the char that holds it.
            let chars = content.utf16_cu_to_char(wanted.min(content.len_utf16_cu()));
            (chars, content.char_to_byte(chars))
        };
        Located {
            char: line_start_char + chars,
            byte: line_start_byte + bytes,
            point: BytePoint {
                line,
                byte_column: bytes,
            },
        }
    }

    /// Where a byte offset (clamped to the text) falls; it must be a char boundary.
    fn locate_byte(&self, byte: usize) -> Located {
        let byte = byte.min(self.text.len_bytes());
        let line = self.text.byte_to_line(byte);
        Located {
            char: self.text.byte_to_char(byte),
            byte,
            point: BytePoint {
                line,
                byte_column: byte - self.text.line_to_byte(line),
            },
        }
    }

    /// The position of a char index (clamped to the end of the document).
    pub fn char_to_position(&self, char_index: usize) -> Position {
        let char_index = char_index.min(self.text.len_chars());
        let line = self.text.char_to_line(char_index);
        let line_start = self.text.line_to_char(line);
        let column =
            self.text.char_to_utf16_cu(char_index) - self.text.char_to_utf16_cu(line_start);
        Position {
            line: saturating_u32(line),
            character: saturating_u32(column),
        }
    }

    pub fn text_string(&self) -> String {
        self.text.to_string()
    }

    /// The number of lines as the LSP counts them: a document ending in a line break has
    /// an empty last line after it, and an empty document has one line.
    pub fn line_count(&self) -> usize {
        self.text.len_lines()
    }

    /// Applies one content change and says where it fell (`None` for a whole-text
    /// replacement). A range whose end comes before its start is taken with its ends
    /// swapped (and logged): the editor and the children see the same change, and
    /// refusing it would leave tack's text out of step with both.
    pub fn apply_change(&mut self, change: &ContentChange) -> Option<ByteEdit> {
        let Some(range) = change.range else {
            self.text = Rope::from_str(&change.text);
            return None;
        };
        let mut start = self.locate(range.start);
        // Typing inserts at one position: it is looked up once.
        let mut end = if range.end == range.start {
            start
        } else {
            self.locate(range.end)
        };
        if end.char < start.char {
            tracing::warn!(uri = %self.uri, ?range, "content change range ends before it starts; swapping its ends");
            std::mem::swap(&mut start, &mut end);
        }
        self.text.remove(start.char..end.char);
        self.text.insert(start.char, &change.text);
        let new_end_byte = start.byte + change.text.len();
        // Text without a line break ends on the line it starts on, unless the edit joined a
        // `\r` ending the line before to a `\n` after it (a start at column 0 past line 0).
        let has_break = change.text.bytes().any(|b| b == b'\n' || b == b'\r');
        let new_end_point = if has_break || (start.point.byte_column == 0 && start.point.line > 0) {
            self.locate_byte(new_end_byte).point
        } else {
            BytePoint {
                line: start.point.line,
                byte_column: start.point.byte_column + change.text.len(),
            }
        };
        Some(ByteEdit {
            start_byte: start.byte,
            old_end_byte: end.byte,
            new_end_byte,
            start_point: start.point,
            old_end_point: end.point,
            new_end_point,
        })
    }
}

/// How many chars of a line (as ropey slices it, break included) are its line break.
fn line_break_chars(line: &ropey::RopeSlice<'_>) -> usize {
    let len = line.len_chars();
    match (
        len.checked_sub(2).map(|i| line.char(i)),
        len.checked_sub(1).map(|i| line.char(i)),
    ) {
        (Some('\r'), Some('\n')) => 2,
        (_, Some('\n' | '\r')) => 1,
        _ => 0,
    }
}

fn saturating_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Every document the editor has open, by uri. Owned by the proxy's main loop.
#[derive(Debug, Default)]
pub struct DocumentStore {
    documents: HashMap<String, Document>,
}

impl DocumentStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a `didOpen`. Opening a uri that is already open replaces it (the editor
    /// should not do that; the newest text wins).
    pub fn open(&mut self, uri: String, language_id: String, version: i32, text: &str) {
        if self.documents.contains_key(&uri) {
            tracing::warn!(%uri, "document opened twice; the new text replaces the old");
        }
        let document = Document::new(uri.clone(), language_id, version, text);
        self.documents.insert(uri, document);
    }

    /// Applies a `didChange`: the changes in order, then the new version; says where the
    /// changes fell.
    pub fn change(
        &mut self,
        uri: &str,
        version: i32,
        changes: &[ContentChange],
    ) -> Result<TextEdits, DocumentError> {
        let document = self
            .documents
            .get_mut(uri)
            .ok_or_else(|| DocumentError::NotOpen {
                uri: uri.to_owned(),
            })?;
        let mut edits = Vec::with_capacity(changes.len());
        let mut replaced = false;
        for change in changes {
            match document.apply_change(change) {
                Some(edit) => edits.push(edit),
                None => replaced = true,
            }
        }
        document.version = version;
        Ok(if replaced {
            TextEdits::Replaced
        } else {
            TextEdits::Ranges(edits)
        })
    }

    pub fn close(&mut self, uri: &str) -> Option<Document> {
        self.documents.remove(uri)
    }

    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.documents.get(uri)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Document> {
        self.documents.values()
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    fn edit(start: Position, end: Position, text: &str) -> ContentChange {
        ContentChange {
            range: Some(Range { start, end }),
            text: text.to_owned(),
        }
    }

    fn doc(text: &str) -> Document {
        Document::new("file:///a.rs".into(), "rust".into(), 1, text)
    }

    #[test]
    fn content_change_reads_lsp_json_and_ignores_range_length() {
        let change: ContentChange = serde_json::from_str(
            r#"{"range":{"start":{"line":1,"character":2},"end":{"line":1,"character":4}},"rangeLength":2,"text":"x"}"#,
        )
        .unwrap();
        assert_eq!(change, edit(pos(1, 2), pos(1, 4), "x"));
        let full: ContentChange = serde_json::from_str(r#"{"text":"all"}"#).unwrap();
        assert_eq!(full.range, None);
        assert_eq!(serde_json::to_string(&full).unwrap(), r#"{"text":"all"}"#);
    }

    #[test]
    fn incremental_edit_across_lines() {
        let mut document = doc("fn main() {\n    let x = 1;\n}\n");
        document.apply_change(&edit(pos(0, 9), pos(1, 9), " -> i32 {\n    let y"));
        assert_eq!(
            document.text_string(),
            "fn main() -> i32 {\n    let y = 1;\n}\n"
        );
        document.apply_change(&edit(pos(1, 14), pos(2, 0), "\n    y\n"));
        assert_eq!(
            document.text_string(),
            "fn main() -> i32 {\n    let y = 1;\n    y\n}\n"
        );
        assert_eq!(document.line_count(), 5);
    }

    #[test]
    fn insert_and_delete_at_document_end() {
        let mut document = doc("ab\ncd");
        document.apply_change(&edit(pos(1, 2), pos(1, 2), "\nef"));
        assert_eq!(document.text_string(), "ab\ncd\nef");
        document.apply_change(&edit(pos(1, 2), pos(2, 2), ""));
        assert_eq!(document.text_string(), "ab\ncd");
        // A document ending in a line break has an empty last line to insert into.
        let mut trailing = doc("ab\n");
        assert_eq!(trailing.line_count(), 2);
        trailing.apply_change(&edit(pos(1, 0), pos(1, 0), "z"));
        assert_eq!(trailing.text_string(), "ab\nz");
    }

    #[test]
    fn multi_byte_and_astral_characters_count_utf16_units() {
        // é and 中 are one UTF-16 unit each, 😀 is two.
        let mut document = doc("é中😀x\n");
        assert_eq!(document.position_to_char(pos(0, 2)), 2);
        assert_eq!(document.position_to_char(pos(0, 4)), 3);
        assert_eq!(document.char_to_position(3), pos(0, 4));
        assert_eq!(document.char_to_position(4), pos(0, 5));
        document.apply_change(&edit(pos(0, 2), pos(0, 4), "ü"));
        assert_eq!(document.text_string(), "é中üx\n");
    }

    #[test]
    fn position_inside_a_surrogate_pair_clamps_to_the_character_start() {
        let mut document = doc("a😀b");
        assert_eq!(document.position_to_char(pos(0, 2)), 1);
        document.apply_change(&edit(pos(0, 2), pos(0, 2), "X"));
        assert_eq!(document.text_string(), "aX😀b");
        // From inside the pair to after it: the whole character is replaced.
        document.apply_change(&edit(pos(0, 3), pos(0, 4), "Y"));
        assert_eq!(document.text_string(), "aXYb");
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let mut document = doc("ab\r\ncd\ref\n");
        assert_eq!(document.line_count(), 4);
        assert_eq!(document.position_to_char(pos(1, 0)), 4);
        assert_eq!(document.position_to_char(pos(2, 1)), 8);
        // A column past the end of a CRLF line stops before the `\r`.
        assert_eq!(document.position_to_char(pos(0, 9)), 2);
        assert_eq!(document.position_to_char(pos(1, 9)), 6);
        assert_eq!(document.char_to_position(7), pos(2, 0));
        document.apply_change(&edit(pos(0, 2), pos(1, 0), " "));
        assert_eq!(document.text_string(), "ab cd\ref\n");
        assert_eq!(document.line_count(), 3);
    }

    #[test]
    fn only_lsp_line_breaks_count() {
        // Vertical tab, form feed, NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are
        // ordinary characters to the LSP.
        let document = doc("a\u{0b}b\u{0c}c\u{85}d\u{2028}e\u{2029}f\ng");
        assert_eq!(document.line_count(), 2);
        assert_eq!(document.position_to_char(pos(0, 10)), 10);
        assert_eq!(document.position_to_char(pos(1, 0)), 12);
        assert_eq!(document.char_to_position(9), pos(0, 9));
    }

    #[test]
    fn full_replacement_change() {
        let mut document = doc("old\ntext");
        document.apply_change(&ContentChange {
            range: None,
            text: "new".into(),
        });
        assert_eq!(document.text_string(), "new");
        assert_eq!(document.line_count(), 1);
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let document = doc("abc\nde");
        assert_eq!(document.position_to_char(pos(0, 99)), 3);
        assert_eq!(document.position_to_char(pos(1, 99)), 6);
        assert_eq!(document.position_to_char(pos(7, 0)), 6);
        assert_eq!(document.position_to_char(pos(u32::MAX, u32::MAX)), 6);
        assert_eq!(document.char_to_position(99), pos(1, 2));
        let mut reversed = doc("abcdef");
        reversed.apply_change(&edit(pos(0, 4), pos(0, 1), "X"));
        assert_eq!(reversed.text_string(), "aXef");
    }

    #[test]
    fn store_tracks_open_change_close() {
        let mut store = DocumentStore::new();
        assert!(store.is_empty());
        store.open("file:///a.py".into(), "python".into(), 1, "x = 1\n");
        store.open("file:///b.py".into(), "python".into(), 3, "");
        assert_eq!(store.len(), 2);
        let edits = store
            .change(
                "file:///a.py",
                4,
                &[
                    edit(pos(0, 4), pos(0, 5), "2"),
                    edit(pos(1, 0), pos(1, 0), "y = x\n"),
                ],
            )
            .unwrap();
        let point = |line, byte_column| BytePoint { line, byte_column };
        assert_eq!(
            edits,
            TextEdits::Ranges(vec![
                ByteEdit {
                    start_byte: 4,
                    old_end_byte: 5,
                    new_end_byte: 5,
                    start_point: point(0, 4),
                    old_end_point: point(0, 5),
                    new_end_point: point(0, 5),
                },
                ByteEdit {
                    start_byte: 6,
                    old_end_byte: 6,
                    new_end_byte: 12,
                    start_point: point(1, 0),
                    old_end_point: point(1, 0),
                    new_end_point: point(2, 0),
                },
            ])
        );
        let whole = ContentChange {
            range: None,
            text: "x = 2\n".into(),
        };
        let after_whole = store
            .change("file:///b.py", 4, &[edit(pos(0, 0), pos(0, 0), "#"), whole])
            .unwrap();
        assert_eq!(after_whole, TextEdits::Replaced);
        let changed = store.get("file:///a.py").unwrap();
        assert_eq!(changed.version, 4);
        assert_eq!(changed.text_string(), "x = 2\ny = x\n");
        let error = store.change("file:///c.py", 2, &[]).unwrap_err();
        assert!(error.to_string().contains("file:///c.py"), "{error}");
        let mut uris: Vec<_> = store.iter().map(|d| d.uri.as_str()).collect();
        uris.sort_unstable();
        assert_eq!(uris, ["file:///a.py", "file:///b.py"]);
        let closed = store.close("file:///a.py").unwrap();
        assert_eq!(closed.language_id, "python");
        assert!(store.get("file:///a.py").is_none());
        assert!(store.close("file:///a.py").is_none());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn reopening_replaces_the_text() {
        let mut store = DocumentStore::new();
        store.open("file:///a.py".into(), "python".into(), 1, "old");
        store.open("file:///a.py".into(), "python".into(), 7, "new");
        let document = store.get("file:///a.py").unwrap();
        assert_eq!(
            (document.version, document.text_string().as_str()),
            (7, "new")
        );
        assert_eq!(store.len(), 1);
    }

    /// A deliberately simple model of an LSP document: UTF-16 code units in a Vec, lines
    /// found by scanning.
    struct Utf16Document {
        units: Vec<u16>,
    }

    impl Utf16Document {
        /// (start, content end) of every line, in code units.
        fn lines(&self) -> Vec<(usize, usize)> {
            let mut lines = Vec::new();
            let (mut start, mut i) = (0, 0);
            while i < self.units.len() {
                match self.units[i] {
                    0x0a => {
                        lines.push((start, i));
                        i += 1;
                        start = i;
                    }
                    0x0d => {
                        lines.push((start, i));
                        i += if self.units.get(i + 1) == Some(&0x0a) {
                            2
                        } else {
                            1
                        };
                        start = i;
                    }
                    _ => i += 1,
                }
            }
            lines.push((start, self.units.len()));
            lines
        }

        fn offset(&self, position: Position) -> usize {
            let lines = self.lines();
            let Some(&(start, end)) = lines.get(position.line as usize) else {
                return self.units.len();
            };
            let offset = (start + position.character as usize).min(end);
            let inside_pair = offset > start
                && self
                    .units
                    .get(offset)
                    .is_some_and(|u| (0xdc00..0xe000).contains(u))
                && (0xd800..0xdc00).contains(&self.units[offset - 1]);
            if inside_pair { offset - 1 } else { offset }
        }

        fn position(&self, offset: usize) -> Position {
            let lines = self.lines();
            let line = lines
                .iter()
                .rposition(|&(start, _)| start <= offset)
                .unwrap();
            Position {
                line: line as u32,
                character: (offset - lines[line].0) as u32,
            }
        }

        fn apply(&mut self, change: &ContentChange) {
            let new_units = change.text.encode_utf16();
            match change.range {
                None => self.units = new_units.collect(),
                Some(range) => {
                    let (a, b) = (self.offset(range.start), self.offset(range.end));
                    self.units.splice(a.min(b)..a.max(b), new_units);
                }
            }
        }

        fn text(&self) -> String {
            String::from_utf16(&self.units).unwrap()
        }
    }

    /// Checks a change's `ByteEdit` against the texts before and after it: the replaced
    /// bytes and the inserted ones are where it says, and its points are the (line, byte
    /// column) of its offsets, lines numbered as ropey numbers them.
    fn check_byte_edit(before: &str, after: &str, change: &ContentChange, edit: ByteEdit) {
        let why = format!("{change:?} gave {edit:?}");
        assert_eq!(before[..edit.start_byte], after[..edit.start_byte], "{why}");
        assert_eq!(
            &after[edit.start_byte..edit.new_end_byte],
            change.text,
            "{why}"
        );
        assert_eq!(
            before[edit.old_end_byte..],
            after[edit.new_end_byte..],
            "{why}"
        );
        let point = |text: &str, byte: usize| {
            let rope = Rope::from_str(text);
            let line = rope.byte_to_line(byte);
            BytePoint {
                line,
                byte_column: byte - rope.line_to_byte(line),
            }
        };
        assert_eq!(edit.start_point, point(before, edit.start_byte), "{why}");
        assert_eq!(
            edit.old_end_point,
            point(before, edit.old_end_byte),
            "{why}"
        );
        assert_eq!(edit.new_end_point, point(after, edit.new_end_byte), "{why}");
    }

    /// xorshift64*: deterministic, good enough to pick edits.
    struct Prng(u64);

    impl Prng {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
        }
    }

    #[test]
    fn random_edits_match_a_utf16_model() {
        const PIECES: [&str; 11] = [
            "a", "bc", "é", "中", "😀", "\n", "\r\n", "\r", " ", "xy😀é", "\u{2028}",
        ];
        let mut rng = Prng(0x9e37_79b9_7f4a_7c15);
        for round in 0..40 {
            let initial = "line one\r\nzwei 😀\rdrei 中\n\nend";
            let mut store = DocumentStore::new();
            store.open("file:///r.txt".into(), "plaintext".into(), 0, initial);
            let mut model = Utf16Document {
                units: initial.encode_utf16().collect(),
            };
            for step in 1..=60 {
                let text: String = (0..rng.below(4))
                    .map(|_| PIECES[rng.below(PIECES.len())])
                    .collect();
                let lines = model.lines().len();
                let random_position =
                    |rng: &mut Prng| pos(rng.below(lines + 2) as u32, rng.below(14) as u32);
                let change = if rng.below(25) == 0 {
                    ContentChange { range: None, text }
                } else {
                    let (start, end) = (random_position(&mut rng), random_position(&mut rng));
                    edit(start.min(end), start.max(end), &text)
                };
                let text_before = model.text();
                model.apply(&change);
                let edits = store
                    .change("file:///r.txt", step, std::slice::from_ref(&change))
                    .unwrap();
                let document = store.get("file:///r.txt").unwrap();
                let expected = model.text();
                match (&change.range, edits) {
                    (None, TextEdits::Replaced) => {}
                    (Some(_), TextEdits::Ranges(edits)) => {
                        let [edit] = edits[..] else {
                            panic!("one change, {edits:?}")
                        };
                        check_byte_edit(&text_before, &expected, &change, edit);
                    }
                    (range, edits) => panic!("{range:?} gave {edits:?}"),
                }
                assert_eq!(
                    document.text_string(),
                    expected,
                    "round {round} step {step} after {change:?}"
                );
                assert_eq!(
                    document.line_count(),
                    model.lines().len(),
                    "round {round} step {step}"
                );

                let char_index = rng.below(expected.chars().count() + 1);
                let offset: usize = expected.chars().take(char_index).map(char::len_utf16).sum();
                assert_eq!(
                    document.char_to_position(char_index),
                    model.position(offset),
                    "round {round} step {step} char {char_index}"
                );
                let probe = random_position(&mut rng);
                let probe_offset = model.offset(probe);
                let probe_char = document.position_to_char(probe);
                let probe_char_offset: usize =
                    expected.chars().take(probe_char).map(char::len_utf16).sum();
                assert_eq!(
                    probe_char_offset, probe_offset,
                    "round {round} step {step} probe {probe:?}"
                );
            }
        }
    }
}
