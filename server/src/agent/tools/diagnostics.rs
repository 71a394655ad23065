//! `diagnostics`: the language servers' errors and warnings for some files (waiting for
//! fresh results) or for the whole workspace (what is known now), with servers that have not
//! answered named.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema, parse_args,
};
use crate::agent::feedback::render_report;
use crate::agent::workspace::Workspace;

/// Lines the tool returns at most.
const MAX_LINES: usize = 60;

pub struct Diagnostics;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    paths: Vec<String>,
}

impl Tool for Diagnostics {
    fn name(&self) -> &'static str {
        "diagnostics"
    }

    fn description(&self) -> &'static str {
        "Compiler/linter errors and warnings for paths (fresh), or for the whole workspace if none given."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({"paths": {"type": "array", "items": {"type": "string"}}}),
            &[],
        )
    }

    fn effect(&self) -> Effect {
        Effect::ReadOnly
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        args.paths
            .iter()
            .map(|path| Ok(workspace.relative(&workspace.resolve(path)?)))
            .collect()
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = &context.workspace;
            let feedback = workspace.feedback().clone();
            let report = if args.paths.is_empty() {
                feedback.known_diagnostics()
            } else {
                let paths = args
                    .paths
                    .iter()
                    .map(|path| workspace.resolve(path))
                    .collect::<Result<Vec<_>, _>>()?;
                let deadline = std::time::Instant::now() + context.settings.diagnostics_deadline;
                feedback.fresh_diagnostics(&paths, deadline).await
            };
            let uncovered =
                !report.files.is_empty() && report.files.iter().all(|file| file.servers.is_empty());
            if uncovered {
                return Ok(ToolOutput::Text(
                    "No language server covers these files.".to_owned(),
                ));
            }
            Ok(ToolOutput::Text(render_report(
                &report,
                |path| workspace.relative(path),
                MAX_LINES,
            )))
        })
    }
}
