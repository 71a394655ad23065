//! Token estimates without a tokenizer: text is cut the way BPE tokenizers pre-split it
//! (letter runs with the one character before them, digit groups of three, punctuation
//! runs, whitespace runs) and each piece is counted by its length. On code this stays within
//! ±15% of a real BPE tokenizer (`tests::estimate_is_close_to_a_real_bpe_tokenizer_on_code`
//! compares it with cl100k and o200k on Rust, Python, TypeScript, JavaScript, Go, C, C++ and
//! Java), at a fraction of the cost.

/// The estimated number of tokens of `text`.
pub fn estimate_tokens(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut tokens = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte.is_ascii_alphabetic() || byte >= 0x80 {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] >= 0x80) {
                i += 1;
            }
            tokens += word_tokens(&bytes[start..i]);
        } else if byte.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            tokens += (i - start).div_ceil(3);
        } else if byte.is_ascii_whitespace() {
            // Line breaks right after a symbol join it (`;\n`, ` {\n`); other line breaks
            // are one token however many; indentation after them is one more; a single
            // space joins the word or symbol after it.
            let after_symbol = i > 0 && is_symbol(bytes[i - 1]);
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let run = &bytes[start..i];
            let last_break = run.iter().rposition(|b| *b == b'\n' || *b == b'\r');
            let leading_breaks = run
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            match last_break {
                Some(last) => {
                    let free = after_symbol && leading_breaks == last + 1;
                    tokens += usize::from(!free);
                    tokens += usize::from(run.len() - last - 1 > 1);
                }
                None => tokens += usize::from(run.len() > 1),
            }
        } else {
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_alphanumeric()
                && !bytes[i].is_ascii_whitespace()
                && bytes[i] < 0x80
            {
                i += 1;
            }
            // The last symbol before a word joins it (`.append`, `_name`, `(self`).
            let joins_word =
                i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] >= 0x80);
            tokens += punctuation_tokens(i - start - usize::from(joins_word));
        }
    }
    tokens
}

fn is_symbol(byte: u8) -> bool {
    byte < 0x80 && !byte.is_ascii_alphanumeric() && !byte.is_ascii_whitespace()
}

/// A run of letters: short ones are one token, longer ones split every few letters;
/// non-ASCII text costs about a token per character.
fn word_tokens(word: &[u8]) -> usize {
    let non_ascii = word.iter().filter(|b| **b >= 0xc0 || **b < 0x80).count();
    if word.iter().any(|b| *b >= 0x80) {
        return non_ascii.max(1);
    }
    let capitals = word
        .iter()
        .skip(1)
        .filter(|b| b.is_ascii_uppercase())
        .count();
    let by_length = match word.len() {
        0..=8 => 1,
        9..=14 => 2,
        n => n.div_ceil(6),
    };
    by_length.max(capitals + 1).min(word.len())
}

/// A run of punctuation: pairs merge often (`::`, `->`, `()`, `);`).
fn punctuation_tokens(run: usize) -> usize {
    run.div_ceil(2)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Code samples in every language tack parses: the fixture repositories and tack's own
    /// sources.
    fn samples() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for folder in [
            "../tests/fixtures/context",
            "src/syntax",
            "src/documents.rs",
            "src/proxy",
        ] {
            for entry in ignore::Walk::new(root.join(folder)).flatten() {
                let source = entry.path().extension().is_some_and(|e| e != "snap");
                if entry.file_type().is_some_and(|t| t.is_file()) && source {
                    let path = entry.path().to_path_buf();
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        files.push((path.display().to_string(), text));
                    }
                }
            }
        }
        files
    }

    #[test]
    fn estimate_is_close_to_a_real_bpe_tokenizer_on_code() {
        let encoders = [
            ("cl100k", tiktoken_rs::cl100k_base().unwrap()),
            ("o200k", tiktoken_rs::o200k_base().unwrap()),
        ];
        // Per language (by extension): the estimate and each tokenizer's count, summed.
        let mut by_extension: std::collections::BTreeMap<String, (usize, [usize; 2])> =
            Default::default();
        for (path, text) in samples() {
            let extension = path.rsplit('.').next().unwrap_or("").to_owned();
            let entry = by_extension.entry(extension).or_default();
            entry.0 += estimate_tokens(&text);
            for (i, (_, encoder)) in encoders.iter().enumerate() {
                entry.1[i] += encoder.encode_ordinary(&text).len();
            }
        }
        let mut report = String::new();
        let mut worst: f64 = 0.0;
        for (extension, (estimate, real)) in &by_extension {
            for (i, (name, _)) in encoders.iter().enumerate() {
                let ratio = *estimate as f64 / real[i] as f64;
                report.push_str(&format!(
                    "{extension:>5} {name}: estimate {estimate} real {} ratio {ratio:.3}\n",
                    real[i]
                ));
                worst = worst.max((ratio - 1.0).abs());
            }
        }
        for extension in ["rs", "py", "ts", "tsx", "js", "go", "c", "h", "cpp", "java"] {
            assert!(
                by_extension.contains_key(extension),
                "no {extension} sample"
            );
        }
        assert!(
            worst <= 0.15,
            "an estimate is off by more than 15%:\n{report}"
        );
        eprintln!("{report}");
    }

    #[test]
    fn empty_and_small_texts() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("fn"), 1);
        assert!(estimate_tokens("let x = 1;") >= 4);
    }
}
