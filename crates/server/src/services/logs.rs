//! A deployment's task log as text: `HH:MM:SS.mmm [STEP] STREAM: TEXT`
//! lines (with `/level` after the stream when the level is not the
//! stream's usual one), as `tako logs`, the API and the web UI's download
//! show it.

use tako_store::{DeploymentId, LogCursor, LogLevel, LogLineRecord, LogStream, Store, StoreError};

/// Lines read from the store at once.
pub(crate) const READ_BATCH: u32 = 1_000;

/// The whole log of deployment `id` as text, one line each.
pub(crate) async fn read_all(store: &dyn Store, id: DeploymentId) -> Result<String, StoreError> {
    let mut text = String::new();
    let mut cursor = LogCursor::START;
    loop {
        let page = store.read_log(id, cursor, READ_BATCH).await?;
        if page.lines.is_empty() {
            return Ok(text);
        }
        for line in &page.lines {
            text.push_str(&format_line(line));
            text.push('\n');
        }
        cursor = page.next;
    }
}

/// One log line in the text format described in the module docs.
pub(crate) fn format_line(line: &LogLineRecord) -> String {
    let usual = match line.stream {
        LogStream::Stderr => LogLevel::Error,
        LogStream::Stdout | LogStream::Tako => LogLevel::Info,
    };
    let level = if line.level == usual {
        String::new()
    } else {
        format!("/{}", line.level.as_str())
    };
    format!(
        "{} [{}] {}{}: {}",
        line.timestamp.format("%H:%M:%S%.3f"),
        line.step.as_deref().unwrap_or("-"),
        line.stream.as_str(),
        level,
        line.text
    )
}
