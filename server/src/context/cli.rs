//! `tack context <file>[:line[-line]]`: prints exactly the context items an editor request at
//! that place would send the model, each with its reason and token estimate (`--raw`: the
//! text as the model gets it; `--json`: one object per item). Language
//! servers are not started: definitions come from the tree-sitter tags (an editor run asks
//! its language servers first) and there are no diagnostics.

use std::path::{Path, PathBuf};

use super::{ContextRequest, ContextSettings, DocumentView, Intent, Sources, assemble};
use crate::documents::{Position, Range};
use crate::syntax::{Language, MapOptions, RepoIndex};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{target:?} is not FILE, FILE:LINE or FILE:FIRST-LAST (lines count from 1)")]
    Target { target: String },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is outside the workspace {root}")]
    Outside { path: PathBuf, root: PathBuf },
    #[error("--intent {0:?} is not one of fix, fix-file, explain, refactor, ask, instruction")]
    Intent(String),
}

/// What the command line passes in.
#[derive(Debug, Clone, Default)]
pub struct ContextOptions {
    pub target: String,
    pub folder: PathBuf,
    pub intent: Option<String>,
    pub prompt: Option<String>,
    pub budget: Option<usize>,
    pub json: bool,
    /// The model's text itself.
    pub raw: bool,
}

/// Splits `file:line` or `file:first-last` (1-based); a bare file has no lines.
pub fn parse_target(target: &str) -> Result<(String, Option<(u32, u32)>), ContextError> {
    let bad = || ContextError::Target {
        target: target.to_owned(),
    };
    let Some((file, lines)) = target.rsplit_once(':') else {
        return Ok((target.to_owned(), None));
    };
    if file.is_empty() {
        return Err(bad());
    }
    let (first, last) = lines.split_once('-').unwrap_or((lines, lines));
    let first: u32 = first.trim().parse().map_err(|_| bad())?;
    let last: u32 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || last < first {
        return Err(bad());
    }
    Ok((file.to_owned(), Some((first - 1, last - 1))))
}

/// The report `tack context` prints (text, or JSON lines with `json`).
pub fn run(options: &ContextOptions) -> Result<String, ContextError> {
    let (file, lines) = parse_target(&options.target)?;
    let read_error = |path: &Path, error: std::io::Error| ContextError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    };
    let root = options
        .folder
        .canonicalize()
        .map_err(|e| read_error(&options.folder, e))?;
    let path = Path::new(&file);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| read_error(Path::new("."), e))?
            .join(path)
    };
    let path = path.canonicalize().map_err(|e| read_error(&path, e))?;
    let relative = crate::syntax::repo_map::relative_path(&root, &path).ok_or_else(|| {
        ContextError::Outside {
            path: path.clone(),
            root: root.clone(),
        }
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
    let loaded = crate::config::Config::load(&crate::config::ConfigSources::from_env(
        Some(root.clone()),
        None,
    ));
    let (mut settings, _) = ContextSettings::from_config(loaded.config.section("context"));
    if let Some(budget) = options.budget {
        settings.budget = budget;
    }
    let intent = match &options.intent {
        Some(name) => Intent::parse(name).ok_or_else(|| ContextError::Intent(name.clone()))?,
        None if lines.is_some() => Intent::Ask,
        None => Intent::FixFile,
    };
    let index = build_index(&root, &settings);
    let tags = Language::from_path(&path)
        .and_then(|language| crate::syntax::tags::tag_text(language, text.as_bytes()).ok());
    let line_count = text.lines().count().max(1) as u32;
    let (first, last) = lines.unwrap_or((0, line_count - 1));
    let range = Range {
        start: Position {
            line: first,
            character: 0,
        },
        end: Position {
            line: last.min(line_count - 1),
            character: u32::MAX,
        },
    };
    let uri = crate::headless::file_uri(&path).unwrap_or_else(|_| path.display().to_string());
    let request = ContextRequest {
        uri: uri.clone(),
        range,
        intent,
        instruction: options
            .prompt
            .clone()
            .unwrap_or_else(|| "(the request you type)".to_owned()),
        budget: settings.budget,
        repo_map_tokens: settings.repo_map_tokens,
        quote_selection: true,
    };
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let items = assemble(
        &request,
        &Sources {
            root: &root,
            document: DocumentView {
                uri: &uri,
                relative: &relative,
                text: &text,
                tags: tags.as_ref(),
            },
            resolved: &[],
            diagnostics: &[],
            index: Some(&index),
            read: &read,
        },
    );
    if options.json {
        return Ok(items
            .iter()
            .filter_map(|item| serde_json::to_string(item).ok())
            .collect::<Vec<_>>()
            .join("\n"));
    }
    if options.raw {
        return Ok(super::render_for_model(&items));
    }
    Ok(super::render_for_user(&items))
}

/// The workspace's tags index, from the cache when it is warm (the cache is saved after).
pub fn build_index(root: &Path, settings: &ContextSettings) -> RepoIndex {
    let mut options = MapOptions::for_root(root);
    options.max_file_bytes = settings.max_file_bytes;
    let mut index = RepoIndex::build(root, options);
    if let Err(error) = index.save_cache() {
        tracing::warn!(%error, "tags cache not saved");
    }
    index
}
