//! Instruction comments: `// tack: make this async and update callers` in any comment syntax,
//! for editors that cannot prompt for text. The code action "Run tack instruction" appears on
//! such a line; the line is removed when the change is applied.

/// Comment openers recognised before `tack:`, longest first so `///` wins over `//`.
const OPENERS: [&str; 10] = ["<!--", "///", "//!", "//", "/*", "--", "#", ";", "%", "*"];
/// Closers dropped from the end of the instruction.
const CLOSERS: [&str; 2] = ["*/", "-->"];

/// The instruction on `line`, if the line is a comment starting with `tack:`.
pub fn parse(line: &str) -> Option<String> {
    let rest = line.trim_start();
    let opener = OPENERS.iter().find(|opener| rest.starts_with(**opener))?;
    let rest = rest[opener.len()..].trim_start();
    let instruction = rest.strip_prefix("tack:")?;
    let mut instruction = instruction.trim();
    for closer in CLOSERS {
        if let Some(stripped) = instruction.strip_suffix(closer) {
            instruction = stripped.trim_end();
        }
    }
    (!instruction.is_empty()).then(|| instruction.to_owned())
}

/// `text` without the first line (from `near_line`, 0-based, outward) that holds `instruction`,
/// or `None` when no such line is left.
pub fn remove(text: &str, instruction: &str, near_line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let holds = |index: usize| parse(lines[index]).as_deref() == Some(instruction);
    let found = (0..lines.len())
        .filter(|index| holds(*index))
        .min_by_key(|index| index.abs_diff(near_line))?;
    let mut out = String::with_capacity(text.len());
    for (index, line) in lines.iter().enumerate() {
        if index != found {
            out.push_str(line);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_found_in_any_comment_syntax() {
        assert_eq!(
            parse("    // tack: make this async").as_deref(),
            Some("make this async")
        );
        assert_eq!(
            parse("# tack: add type hints").as_deref(),
            Some("add type hints")
        );
        assert_eq!(
            parse("/* tack: rename x to count */").as_deref(),
            Some("rename x to count")
        );
        assert_eq!(parse("-- tack: index this").as_deref(), Some("index this"));
        assert_eq!(parse("<!-- tack: fix -->").as_deref(), Some("fix"));
        assert_eq!(parse("let tack = 1; // tack: no"), None);
        assert_eq!(parse("// tack:"), None);
        assert_eq!(parse("// attack: no"), None);
    }

    #[test]
    fn the_nearest_instruction_line_is_removed() {
        let text = "a\n// tack: do it\nb\n// tack: do it\n";
        assert_eq!(
            remove(text, "do it", 3).as_deref(),
            Some("a\n// tack: do it\nb\n")
        );
        assert_eq!(remove("a\n", "do it", 0), None);
    }
}
