//! A deployment's task log as text: `HH:MM:SS.mmm [STEP] STREAM: TEXT`
//! lines (with `/level` after the stream when the level is not the
//! stream's usual one), as `tako logs`, the API and the web UI's download
//! show it. An agent's lines carry the label `Step@agent` (`[Test@win-01]`);
//! [`AgentLabels`] tells such a label apart from a server step's name.

use std::collections::HashMap;

use tako_store::{
    DeploymentId, Job, LogCursor, LogLevel, LogLineRecord, LogStream, Store, StoreError,
};

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

/// The labels of a deployment's agent lines (`Step@agent`), from its jobs:
/// a label is an agent's only when one of the jobs has it (a step run on
/// the server may have an `@` in its name).
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentLabels {
    /// Label → (step, agent).
    labels: HashMap<String, (String, String)>,
}

impl AgentLabels {
    /// The labels of `jobs`.
    pub(crate) fn of(jobs: &[Job]) -> AgentLabels {
        AgentLabels {
            labels: jobs
                .iter()
                .map(|job| {
                    (
                        job.log_label(),
                        (job.step_name.clone(), job.agent_name.clone()),
                    )
                })
                .collect(),
        }
    }

    /// The step and the agent of an agent's line label; `None` for a label
    /// that is no job's.
    pub(crate) fn split(&self, label: &str) -> Option<(&str, &str)> {
        self.labels
            .get(label)
            .map(|(step, agent)| (step.as_str(), agent.as_str()))
    }

    /// Whether `label` may be an agent's that these labels do not know yet
    /// (a job created since they were read).
    pub(crate) fn may_be_new(&self, label: &str) -> bool {
        label.contains('@') && !self.labels.contains_key(label)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tako_store::{AgentId, JobId, JobState};

    use super::*;

    fn job(step: &str, agent: &str) -> Job {
        Job {
            id: JobId(format!("job-{step}-{agent}")),
            deployment: DeploymentId(1),
            step_index: 1,
            step_name: step.to_owned(),
            agent: AgentId(1),
            agent_name: agent.to_owned(),
            attempt: 1,
            state: JobState::Running,
            cancel_requested: false,
            stored_seq: 0,
            reason: None,
            duration_ms: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            lease_until: None,
        }
    }

    #[test]
    fn only_a_jobs_label_is_split_into_step_and_agent() {
        let labels = AgentLabels::of(&[job("Test", "win-01"), job("Mail ops@corp", "lin-2")]);
        assert_eq!(labels.split("Test@win-01"), Some(("Test", "win-01")));
        assert_eq!(
            labels.split("Mail ops@corp@lin-2"),
            Some(("Mail ops@corp", "lin-2"))
        );
        // A server step whose name holds an `@`, and a plain step.
        assert_eq!(labels.split("Mail ops@corp"), None);
        assert_eq!(labels.split("Test"), None);
        assert!(labels.may_be_new("Test@win-02"));
        assert!(!labels.may_be_new("Test@win-01"));
        assert!(!labels.may_be_new("Build"));
    }
}
