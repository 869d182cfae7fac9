//! [`StoreSink`]: where a deployment's masked lines, step progress and
//! steps' output variables wait (at most one flush interval) until the
//! lease watcher stores them, and [`store_progress`], which stores them in
//! batches. Outputs are kept (sealed by the store) so a deployment resumed
//! after a restart has them: [`outputs_to_json`] and [`outputs_from_json`]
//! are their stored form.

use std::sync::Mutex;

use chrono::Utc;
use tako_core::log::LogLine;
use tako_core::step::{StepReport, StepState};
use tako_exec::executor::StepOutput;
use tako_exec::sink::LogSink;
use tako_store::{DeploymentId, LogLineRecord, StepRecord, StepRunState, Store};

/// At most this many lines per stored batch.
const LOG_BATCH: usize = 2_000;

/// Buffers masked lines and step progress until they are stored.
#[derive(Default)]
pub(super) struct StoreSink {
    buffer: Mutex<Vec<LogLineRecord>>,
    steps: Mutex<Vec<StepRecord>>,
    outputs: Mutex<Vec<(u32, String)>>,
}

/// A step's output variables as stored.
pub(crate) fn outputs_to_json(outputs: &[StepOutput]) -> String {
    serde_json::Value::Array(
        outputs
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name, "value": o.value, "sensitive": o.sensitive, "machine": o.machine,
                })
            })
            .collect(),
    )
    .to_string()
}

/// A step's output variables read back (`None` for a value this build
/// cannot read).
pub(super) fn outputs_from_json(json: &str) -> Option<Vec<StepOutput>> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value
        .as_array()?
        .iter()
        .map(|o| {
            Some(StepOutput {
                name: o["name"].as_str()?.to_owned(),
                value: o["value"].as_str()?.to_owned(),
                sensitive: o["sensitive"].as_bool()?,
                machine: o["machine"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

impl StoreSink {
    fn take_steps(&self) -> Vec<StepRecord> {
        self.steps
            .lock()
            .map(|mut steps| std::mem::take(&mut *steps))
            .unwrap_or_default()
    }

    fn push_step(&self, record: StepRecord) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(record);
        }
    }

    fn take(&self, at_most: usize) -> Vec<LogLineRecord> {
        let Ok(mut buffer) = self.buffer.lock() else {
            return Vec::new();
        };
        let n = buffer.len().min(at_most);
        buffer.drain(..n).collect()
    }

    /// One of the scheduler's own lines: fixed texts about the deployment
    /// (never a variable's value, so there is nothing to mask).
    pub(super) fn system_line(&self, text: &str) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.push(LogLineRecord {
                timestamp: Utc::now(),
                step: None,
                stream: tako_store::LogStream::Tako,
                level: tako_store::LogLevel::Warning,
                text: text.to_owned(),
            });
        }
    }
}

impl LogSink for StoreSink {
    fn append(&self, line: LogLine) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.push(LogLineRecord::from(&line));
        }
    }

    fn step_started(&self, index: usize, name: &str) {
        self.push_step(StepRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: name.to_owned(),
            state: StepRunState::Running,
            reason: None,
            started_at: Some(Utc::now()),
            duration: None,
        });
    }

    fn step_outputs(&self, index: usize, outputs: &[StepOutput]) {
        if let Ok(mut kept) = self.outputs.lock() {
            kept.push((
                u32::try_from(index).unwrap_or(u32::MAX),
                outputs_to_json(outputs),
            ));
        }
    }

    fn step_finished(&self, index: usize, report: &StepReport) {
        let (state, reason) = match &report.state {
            StepState::Success => (StepRunState::Success, None),
            StepState::Failed { reason } => (StepRunState::Failed, Some(reason.clone())),
            StepState::Skipped(reason) => (StepRunState::Skipped, Some(reason.to_string())),
            StepState::Cancelled => (StepRunState::Failed, Some("cancelled".to_owned())),
        };
        let started_at = (state != StepRunState::Skipped)
            .then(|| {
                chrono::Duration::from_std(report.duration)
                    .ok()
                    .map(|d| Utc::now() - d)
            })
            .flatten();
        self.push_step(StepRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: report.name.clone(),
            state,
            reason,
            started_at,
            duration: Some(report.duration),
        });
    }
}

/// Stores every buffered line (in batches) and step update, so the buffer
/// never holds more than one flush interval of output.
pub(super) async fn store_progress(store: &dyn Store, id: DeploymentId, sink: &StoreSink) {
    loop {
        let lines = sink.take(LOG_BATCH);
        if lines.is_empty() {
            break;
        }
        if let Err(error) = store.append_log(id, &lines).await {
            tracing::error!(deployment = %id, %error, "cannot store log lines");
            break;
        }
    }
    for record in sink.take_steps() {
        if let Err(error) = store.update_step(id, record).await {
            tracing::error!(deployment = %id, %error, "cannot record a step");
        }
    }
    let outputs = sink
        .outputs
        .lock()
        .map(|mut kept| std::mem::take(&mut *kept))
        .unwrap_or_default();
    for (index, json) in outputs {
        if let Err(error) = store.set_step_outputs(id, index, json).await {
            tracing::error!(deployment = %id, step = index, %error, "cannot keep a step's outputs");
        }
    }
}
