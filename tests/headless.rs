//! The headless language session `tack run` uses: tack as the editor of its own proxy.

use crate::support::{Workspace, fake_lsp_path};
use serde_json::json;
use std::time::Duration;
use tack::diagnostics::ServerStatus;
use tack::headless::LanguageSession;
use tokio::time::Instant;

fn fake_workspace(flags: &[&str]) -> Workspace {
    let workspace = Workspace::new();
    let mut args = vec!["--name".to_owned(), "alpha".to_owned()];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    workspace.write(
        "tack.toml",
        &format!(
            "[languages.fake]\nextensions = [\"fk\"]\n\n[servers.alpha]\ncommand = {:?}\nargs = {:?}\nlanguages = [\"fake\"]\n",
            fake_lsp_path().display().to_string(),
            args
        ),
    );
    workspace.write("main.fk", "fine\n");
    workspace
}

#[tokio::test]
async fn edits_wait_for_fresh_versioned_diagnostics_from_every_responsible_server() {
    let workspace = fake_workspace(&[]);
    let session = LanguageSession::start(&workspace.root()).await.unwrap();
    let path = workspace.path("main.fk");
    assert_eq!(session.proxy().servers_for(&path).len(), 1);

    let deadline = Instant::now() + Duration::from_secs(30);
    let report = session
        .diagnostics_after(
            &[(path.clone(), "ok\nERROR: broken here\n".to_owned())],
            deadline,
        )
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let document = &report.documents[0];
    assert_eq!(document.diagnostics.len(), 1);
    assert_eq!(document.diagnostics[0].message, "broken here");
    assert!(matches!(
        document.servers[0].1,
        ServerStatus::Answered { version: Some(1) }
    ));

    // The fix: version 2, and the set is empty because the server answered, not because
    // nothing came.
    let report = session
        .diagnostics_after(&[(path.clone(), "ok\n".to_owned())], deadline)
        .await
        .unwrap();
    assert!(report.is_complete());
    assert!(report.documents[0].diagnostics.is_empty());
    assert!(matches!(
        report.documents[0].servers[0].1,
        ServerStatus::Answered { version: Some(2) }
    ));
    assert_eq!(session.open_text(&path).as_deref(), Some("ok\n"));

    // Navigation goes through the same proxy.
    let uri = tack::headless::file_uri(&path).unwrap();
    let hover = session
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 0 } }),
        )
        .await
        .unwrap();
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("alpha")
    );
    session.shutdown().await;
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_reported_pending_not_clean() {
    let workspace = fake_workspace(&["--pull-diagnostics"]);
    let session = LanguageSession::start(&workspace.root()).await.unwrap();
    let path = workspace.path("main.fk");
    // A deadline that has already passed: nothing can have answered for version 1 yet.
    let report = session
        .diagnostics_after(&[(path, "ERROR: x\n".to_owned())], Instant::now())
        .await
        .unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.pending().len(), 1);
    session.shutdown().await;
}
