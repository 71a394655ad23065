//! `tack export --format activitywatch`: agent sessions as ActivityWatch heartbeats, so they
//! can be joined by time with the user's own activity tracking.
//!
//! The bucket `tack-agent_<hostname>` of type `app.agent.activity` is created first
//! (`POST /api/0/buckets/<id>` with `client`, `type` and `hostname`; an existing bucket is
//! fine). Then every turn start, model call, tool call, turn end and session end is sent as a
//! heartbeat (`POST /api/0/buckets/<id>/heartbeat?pulsetime=N`, an event with `timestamp`,
//! `duration` 0 and `data`): the server merges consecutive heartbeats with equal data within
//! `pulsetime` seconds into one event, so a session becomes one event per stretch of work.
//! `data` is the session, workspace, model and client: no prompt or file content.

use serde_json::{Value, json};

use super::reader::LedgerFile;
use super::record::Line;
use super::{LedgerError, time};

/// The bucket type of tack's events.
pub const BUCKET_TYPE: &str = "app.agent.activity";

/// The line types that become heartbeats.
const BEATS: &[&str] = &[
    "session_started",
    "turn_started",
    "model_call",
    "tool_call_ended",
    "turn_done",
    "session_ended",
];

/// This machine's name, as ActivityWatch buckets are named.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The bucket id for a host.
pub fn bucket_id(host: &str) -> String {
    format!("tack-agent_{host}")
}

/// The heartbeats of the sessions, in time order: (timestamp ms, event JSON).
pub fn heartbeats(sessions: &[(LedgerFile, Vec<Line>)]) -> Vec<(u64, Value)> {
    let mut beats = Vec::new();
    for (file, lines) in sessions {
        let mut data = json!({ "session": file.session });
        for line in lines {
            if line.kind() == "session_started" {
                data["workspace"] = line.get("workspace").clone();
                data["model"] = json!(format!(
                    "{}/{}",
                    line.str("provider").unwrap_or(""),
                    line.str("model").unwrap_or("")
                ));
                data["client"] = line.get("client").clone();
            }
            if BEATS.contains(&line.kind()) {
                beats.push((
                    line.header.ts,
                    json!({
                        "timestamp": time::iso8601(line.header.ts),
                        "duration": 0,
                        "data": data,
                    }),
                ));
            }
        }
    }
    beats.sort_by_key(|(ts, _)| *ts);
    beats
}

/// Creates the bucket and sends the heartbeats to the ActivityWatch server at `base_url`.
pub async fn send(
    base_url: &str,
    pulsetime_secs: u64,
    sessions: &[(LedgerFile, Vec<Line>)],
) -> Result<String, LedgerError> {
    crate::providers::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| LedgerError::Export(e.to_string()))?;
    let host = hostname();
    let bucket = bucket_id(&host);
    let base = base_url.trim_end_matches('/');
    let bucket_url = format!("{base}/api/0/buckets/{bucket}");
    let created = client
        .post(&bucket_url)
        .json(&json!({ "client": "tack", "type": BUCKET_TYPE, "hostname": host }))
        .send()
        .await
        .map_err(|e| LedgerError::Export(format!("{bucket_url}: {e}")))?;
    // 304: the bucket exists already.
    if !created.status().is_success() && created.status().as_u16() != 304 {
        let status = created.status();
        let text: String = created
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        if !text.contains("already exists") {
            return Err(LedgerError::Export(format!(
                "{bucket_url}: HTTP {status}: {text}"
            )));
        }
    }
    let beats = heartbeats(sessions);
    let url = format!("{bucket_url}/heartbeat?pulsetime={pulsetime_secs}");
    for (_, beat) in &beats {
        let response = client
            .post(&url)
            .json(beat)
            .send()
            .await
            .map_err(|e| LedgerError::Export(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(LedgerError::Export(format!(
                "{url}: HTTP {}",
                response.status()
            )));
        }
    }
    Ok(format!(
        "sent {} heartbeat(s) of {} session(s) to bucket {bucket} at {base}\n",
        beats.len(),
        sessions.len()
    ))
}
