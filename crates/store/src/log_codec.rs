//! The binary encoding of a task log chunk: many lines in one row, so a
//! million-line log is a thousand rows and an append costs one insert per
//! chunk.
//!
//! Per line: timestamp (i64 unix ms, little-endian), stream (u8), level (u8),
//! step (u32 length, `u32::MAX` for none, then UTF-8), text (u32 length, then
//! UTF-8). Driver-neutral: PostgreSQL stores the same bytes in a `bytea`.

use chrono::{DateTime, Utc};

use crate::model::{LogLevel, LogLineRecord, LogStream};

/// At most this many lines go in one chunk.
pub(crate) const CHUNK_MAX_LINES: usize = 1_000;

const NO_STEP: u32 = u32::MAX;

/// Why a chunk could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt task log chunk: {0}")]
pub(crate) struct CorruptChunk(&'static str);

fn stream_code(stream: LogStream) -> u8 {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
        LogStream::Tako => 2,
    }
}

fn level_code(level: LogLevel) -> u8 {
    match level {
        LogLevel::Verbose => 0,
        LogLevel::Info => 1,
        LogLevel::Highlight => 2,
        LogLevel::Wait => 3,
        LogLevel::Warning => 4,
        LogLevel::Error => 5,
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Lines longer than 4 GiB do not reach the store (the sink splits them).
    let len = u32::try_from(text.len()).unwrap_or(NO_STEP - 1);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Encodes lines into one chunk.
pub(crate) fn encode(lines: &[LogLineRecord]) -> Vec<u8> {
    let size: usize = lines
        .iter()
        .map(|l| 18 + l.text.len() + l.step.as_ref().map_or(0, String::len))
        .sum();
    let mut out = Vec::with_capacity(size);
    for line in lines {
        out.extend_from_slice(&line.timestamp.timestamp_millis().to_le_bytes());
        out.push(stream_code(line.stream));
        out.push(level_code(line.level));
        match &line.step {
            Some(step) => put_str(&mut out, step),
            None => out.extend_from_slice(&NO_STEP.to_le_bytes()),
        }
        put_str(&mut out, &line.text);
    }
    out
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptChunk> {
        if self.data.len() < n {
            return Err(CorruptChunk("truncated"));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, CorruptChunk> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn string(&mut self, len: u32) -> Result<String, CorruptChunk> {
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CorruptChunk("invalid UTF-8"))
    }
}

/// Decodes a chunk, skipping its first `skip` lines and keeping at most
/// `keep`.
pub(crate) fn decode_into(
    data: &[u8],
    skip: usize,
    keep: usize,
    out: &mut Vec<LogLineRecord>,
) -> Result<(), CorruptChunk> {
    let mut reader = Reader { data };
    let mut index = 0usize;
    let mut kept = 0usize;
    while !reader.data.is_empty() && kept < keep {
        let ts = reader.take(8)?;
        let millis = i64::from_le_bytes([ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], ts[6], ts[7]]);
        let codes = reader.take(2)?;
        let step_len = reader.u32()?;
        if index < skip {
            if step_len != NO_STEP {
                reader.take(step_len as usize)?;
            }
            let text_len = reader.u32()?;
            reader.take(text_len as usize)?;
            index += 1;
            continue;
        }
        let stream = match codes[0] {
            0 => LogStream::Stdout,
            1 => LogStream::Stderr,
            2 => LogStream::Tako,
            _ => return Err(CorruptChunk("unknown stream")),
        };
        let level = match codes[1] {
            0 => LogLevel::Verbose,
            1 => LogLevel::Info,
            2 => LogLevel::Highlight,
            3 => LogLevel::Wait,
            4 => LogLevel::Warning,
            5 => LogLevel::Error,
            _ => return Err(CorruptChunk("unknown level")),
        };
        let step = if step_len == NO_STEP {
            None
        } else {
            Some(reader.string(step_len)?)
        };
        let text_len = reader.u32()?;
        let text = reader.string(text_len)?;
        let timestamp: DateTime<Utc> =
            DateTime::from_timestamp_millis(millis).ok_or(CorruptChunk("bad timestamp"))?;
        out.push(LogLineRecord {
            timestamp,
            step,
            stream,
            level,
            text,
        });
        index += 1;
        kept += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_skips() {
        let lines: Vec<LogLineRecord> = (0..5)
            .map(|i| LogLineRecord {
                timestamp: DateTime::from_timestamp_millis(1_700_000_000_000 + i).unwrap(),
                step: (i % 2 == 0).then(|| format!("step {i}")),
                stream: LogStream::Stderr,
                level: LogLevel::Warning,
                text: format!("line {i} ✓"),
            })
            .collect();
        let data = encode(&lines);
        let mut out = Vec::new();
        decode_into(&data, 0, usize::MAX, &mut out).unwrap();
        assert_eq!(out, lines);
        out.clear();
        decode_into(&data, 2, 2, &mut out).unwrap();
        assert_eq!(out, lines[2..4]);
        assert!(decode_into(&data[..data.len() - 1], 0, usize::MAX, &mut out).is_err());
    }
}
