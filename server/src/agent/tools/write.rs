//! `write`: create a file or replace its whole content (folders are created as needed).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Effect, FileEdit, Tool, ToolContext, ToolError, ToolFuture, ToolOutput, object_schema,
    parse_args,
};
use crate::agent::workspace::Workspace;

pub struct Write;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    content: String,
}

impl Tool for Write {
    fn name(&self) -> &'static str {
        "write"
    }

    fn description(&self) -> &'static str {
        "Create a file or overwrite it with content. Prefer edit for changes to existing files."
    }

    fn parameters(&self) -> Value {
        object_schema(
            json!({"path": {"type": "string"}, "content": {"type": "string"}}),
            &["path", "content"],
        )
    }

    fn effect(&self) -> Effect {
        Effect::Edits
    }

    fn subjects(&self, args: &Value, workspace: &Workspace) -> Result<Vec<String>, ToolError> {
        let args: Args = parse_args(args)?;
        Ok(vec![workspace.relative(&workspace.resolve(&args.path)?)])
    }

    fn run(&self, args: Value, context: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let args: Args = parse_args(&args)?;
            let workspace = &context.workspace;
            let path = workspace.resolve(&args.path)?;
            let shown = workspace.relative(&path);
            if path.is_dir() {
                return Err(ToolError::Failed(format!("{shown} is a folder")));
            }
            let before = if workspace.exists(&path) {
                Some(
                    workspace
                        .read_text(&path)
                        .map_err(|error| ToolError::io(shown.clone(), error))?,
                )
            } else {
                None
            };
            let verb = if before.is_some() {
                "Overwrote"
            } else {
                "Created"
            };
            let lines = args.content.lines().count();
            Ok(ToolOutput::Edits {
                edits: vec![FileEdit {
                    path,
                    before,
                    after: args.content,
                }],
                message: format!("{verb} {shown} ({lines} lines)."),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::ToolOutput;
    use super::super::tests::{call, context};
    use serde_json::json;

    #[tokio::test]
    async fn creates_or_overwrites() {
        let (_dir, cx) = context(&[("old.txt", "was\n")]);
        let ToolOutput::Edits { edits, message } = call(
            &cx,
            "write",
            json!({"path": "new/a.txt", "content": "x\ny\n"}),
        )
        .await
        .unwrap() else {
            panic!("edits expected");
        };
        assert_eq!(edits[0].before, None);
        assert_eq!(message, "Created new/a.txt (2 lines).");
        let ToolOutput::Edits { edits, message } =
            call(&cx, "write", json!({"path": "old.txt", "content": "now\n"}))
                .await
                .unwrap()
        else {
            panic!("edits expected");
        };
        assert_eq!(edits[0].before.as_deref(), Some("was\n"));
        assert_eq!(message, "Overwrote old.txt (1 lines).");
        let error = call(&cx, "write", json!({"path": "/tmp/x", "content": ""}))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("outside the workspace"));
    }
}
