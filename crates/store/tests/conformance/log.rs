//! The task log: batched appends, ordered reads with cursors, a million
//! lines.

use chrono::{DateTime, Utc};
use tako_store::{DeploymentId, LogCursor, LogLevel, LogLineRecord, LogStream, StoreError};

use super::{StoreFactory, project, queue};

fn line(n: u64) -> LogLineRecord {
    LogLineRecord {
        timestamp: DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + n as i64)
            .expect("in range"),
        step: (!n.is_multiple_of(3)).then(|| format!("step {}", n % 3)),
        stream: if n.is_multiple_of(2) {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        },
        level: if n.is_multiple_of(5) {
            LogLevel::Warning
        } else {
            LogLevel::Info
        },
        text: format!("line {n}"),
    }
}

pub(crate) async fn log_reads_back_in_order_across_batches(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let empty = store.read_log(d.id, LogCursor::START, 10).await.unwrap();
    assert!(empty.lines.is_empty());
    assert_eq!(empty.next, LogCursor::START);

    let mut next = 0u64;
    for size in [3u64, 2_500, 1, 0, 7] {
        let batch: Vec<LogLineRecord> = (next..next + size).map(line).collect();
        store.append_log(d.id, &batch).await.unwrap();
        next += size;
    }
    assert_eq!(store.get_deployment(d.id).await.unwrap().log_lines, next);

    let mut read = Vec::new();
    let mut cursor = LogCursor::START;
    loop {
        let page = store.read_log(d.id, cursor, 333).await.unwrap();
        if page.lines.is_empty() {
            assert_eq!(page.next, cursor);
            break;
        }
        assert_eq!(page.next.0, cursor.0 + page.lines.len() as u64);
        read.extend(page.lines);
        cursor = page.next;
    }
    let expected: Vec<LogLineRecord> = (0..next).map(line).collect();
    assert_eq!(read, expected);

    // From any cursor, including one inside a chunk.
    let middle = store.read_log(d.id, LogCursor(1_002), 5).await.unwrap();
    assert_eq!(middle.lines, expected[1_002..1_007]);
    assert_eq!(middle.next, LogCursor(1_007));
    let tail = store
        .read_log(d.id, LogCursor(next - 2), 100)
        .await
        .unwrap();
    assert_eq!(tail.lines, expected[next as usize - 2..]);

    // A follower sees lines appended after its last read.
    store.append_log(d.id, &[line(next)]).await.unwrap();
    let followed = store.read_log(d.id, tail.next, 100).await.unwrap();
    assert_eq!(followed.lines, [line(next)]);
}

pub(crate) async fn a_million_lines_in_batches(factory: &dyn StoreFactory) {
    const LINES: u64 = 1_000_000;
    const BATCH: u64 = 1_000;
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let mut batch = Vec::with_capacity(BATCH as usize);
    for start in (0..LINES).step_by(BATCH as usize) {
        batch.clear();
        batch.extend((start..start + BATCH).map(|n| LogLineRecord {
            timestamp: DateTime::<Utc>::from_timestamp_millis(n as i64).expect("in range"),
            step: Some("Build".to_owned()),
            stream: LogStream::Stdout,
            level: LogLevel::Info,
            text: n.to_string(),
        }));
        store.append_log(d.id, &batch).await.unwrap();
    }
    let mut cursor = LogCursor::START;
    let mut count = 0u64;
    loop {
        let page = store.read_log(d.id, cursor, 50_000).await.unwrap();
        if page.lines.is_empty() {
            break;
        }
        for line in &page.lines {
            assert_eq!(line.text.parse::<u64>().expect("a number"), count);
            count += 1;
        }
        cursor = page.next;
    }
    assert_eq!(count, LINES);
}

pub(crate) async fn log_of_unknown_deployment_is_not_found(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let error = store
        .append_log(DeploymentId(999), &[line(0)])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = store
        .read_log(DeploymentId(999), LogCursor::START, 10)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}
