//! The terminal as a log sink: live step output for `tako run`, and the
//! summary table at the end.

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tako_core::log::{LogLevel, LogLine, LogStream};
use tako_core::step::{StepReport, StepState};
use tako_exec::engine::human;
use tako_exec::sink::LogSink;

/// Prints masked lines as `[Step] text`; buffered, flushed every 100 ms and at
/// the end of each step so a million-line step does not cost a million writes.
pub(crate) struct ConsoleSink {
    out: Arc<Mutex<BufWriter<Stdout>>>,
    verbose: bool,
}

impl ConsoleSink {
    pub(crate) fn new(verbose: bool) -> ConsoleSink {
        let out = Arc::new(Mutex::new(BufWriter::with_capacity(
            64 * 1024,
            io::stdout(),
        )));
        let weak = Arc::downgrade(&out);
        thread::spawn(move || {
            while let Some(out) = weak.upgrade() {
                if let Ok(mut out) = out.lock() {
                    let _ = out.flush();
                }
                drop(out);
                thread::sleep(Duration::from_millis(100));
            }
        });
        ConsoleSink { out, verbose }
    }
}

impl LogSink for ConsoleSink {
    fn append(&self, line: LogLine) {
        if line.level() == LogLevel::Verbose && !self.verbose {
            return;
        }
        let Ok(mut out) = self.out.lock() else { return };
        let step = line.step().unwrap_or("");
        let time = line.timestamp().format("%H:%M:%S");
        let _ = match (line.stream(), step.is_empty()) {
            (LogStream::Tako, true) => writeln!(out, "{time} ==> {}", line.text()),
            (LogStream::Tako, false) => writeln!(out, "{time} --> [{step}] {}", line.text()),
            (LogStream::Stderr, _) => writeln!(out, "{time}  !  [{step}] {}", line.text()),
            (LogStream::Stdout, _) => writeln!(out, "{time}     [{step}] {}", line.text()),
        };
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// The summary table: step, state, duration.
pub(crate) fn summary(reports: &[StepReport]) -> String {
    let name_width = reports
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let rows: Vec<(String, String, String)> = reports
        .iter()
        .map(|report| {
            let duration = match report.state {
                StepState::Skipped(_) => "-".to_owned(),
                _ => human(report.duration),
            };
            (report.name.clone(), report.state.to_string(), duration)
        })
        .collect();
    let state_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<name_width$}  {:<state_width$}  {:>8}\n",
        "STEP", "STATE", "DURATION"
    ));
    for (name, state, duration) in rows {
        out.push_str(&format!(
            "{name:<name_width$}  {state:<state_width$}  {duration:>8}\n"
        ));
    }
    out
}
