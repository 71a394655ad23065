//! Generated, code-like documents for the benchmark: valid C (so clangd can work on it, and
//! the fake server sees realistic line lengths), of a chosen size, with the positions the
//! request mix points at.

/// A generated C source and the places the benchmark's requests and edits use.
pub struct CodeText {
    pub text: String,
    /// (line, character) of the start of an identifier that names a function (a call).
    pub calls: Vec<(u32, u32)>,
    /// Lines that hold a block comment opening `/* `: an edit at character 3 stays inside it.
    pub comment_lines: Vec<u32>,
}

/// A C translation unit of about `target_bytes` (never less): a state struct and a chain of
/// functions that call each other. `module` makes the names unique per document. With
/// `error_line`, one comment says `ERROR:` (the fake server reports it as an error).
pub fn c_source(module: usize, target_bytes: usize, error_line: bool) -> CodeText {
    let mut out = CodeText {
        text: String::with_capacity(target_bytes + 600),
        calls: Vec::new(),
        comment_lines: Vec::new(),
    };
    let mut line = 0u32;
    let mut push = |out: &mut CodeText, text: &str| {
        out.text.push_str(text);
        out.text.push('\n');
        line += 1;
        line - 1
    };
    push(
        &mut out,
        &format!("/* m{module}.c: generated for the proxy benchmark. */"),
    );
    push(&mut out, "");
    push(&mut out, &format!("struct m{module}_state {{"));
    push(&mut out, "    int bias;");
    push(&mut out, "    int count;");
    push(&mut out, "    int weights[16];");
    push(&mut out, "};");
    push(&mut out, "");
    if error_line {
        push(&mut out, "/* ERROR: this module is not finished */");
        push(&mut out, "");
    }
    let mut step = 0usize;
    // At least three steps, so there are calls to point at.
    while out.text.len() < target_bytes || step < 3 {
        let comment = push(
            &mut out,
            &format!("/* m{module}: step {step} folds the weights into the running total. */"),
        );
        out.comment_lines.push(comment);
        push(
            &mut out,
            &format!(
                "static int m{module}_step_{step}(int value, const struct m{module}_state *state) {{"
            ),
        );
        push(
            &mut out,
            &format!("    int total = value * {} + state->bias;", step % 7 + 3),
        );
        if step > 0 {
            push(
                &mut out,
                &format!("    if (total > {}) {{", 1000 + step * 17),
            );
            let call = format!(
                "        total = m{module}_step_{}(total / 2, state);",
                step - 1
            );
            let at = push(&mut out, &call);
            out.calls.push((at, 16));
            push(&mut out, "    }");
        }
        push(&mut out, "    for (int i = 0; i < state->count; i++) {");
        push(
            &mut out,
            &format!("        total += state->weights[i % 16] ^ (i + {step});"),
        );
        push(&mut out, "    }");
        push(&mut out, "    return total;");
        push(&mut out, "}");
        push(&mut out, "");
        step += 1;
    }
    out
}
