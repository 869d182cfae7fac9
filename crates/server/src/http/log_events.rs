//! A deployment's task log as server-sent events, for the API's
//! `?follow=true` and the web UI's live log: `line` events (data: the
//! line's JSON, id: its cursor, so a reconnect with `Last-Event-ID` resumes)
//! then one `end` event with the deployment's final state. The store is
//! read when its wake-ups say lines of this deployment were stored (through
//! any node, on PostgreSQL) and polled besides, so it follows a deployment
//! running on any node or agent. An agent's line
//! (labelled `Step@agent`) names its agent in `agent`, read from the
//! deployment's jobs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use futures_util::stream::{self, Stream};
use tako_protocol::api::{LogEnd, LogLineDto};
use tako_store::{DeploymentId, LogCursor, Store, StoreError, Wakeups};

use crate::http::wire::time;
use crate::services::logs::{AgentLabels, READ_BATCH};

/// How often a followed log is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

struct Follow {
    store: Arc<dyn Store>,
    id: DeploymentId,
    cursor: LogCursor,
    pending: VecDeque<Event>,
    read_now: bool,
    done: bool,
    agents: AgentLabels,
    wakeups: Wakeups,
}

/// The events of a followed log; see the module docs.
pub(crate) fn follow(
    store: Arc<dyn Store>,
    id: DeploymentId,
    from: LogCursor,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = Follow {
        wakeups: store.wakeups(),
        store,
        id,
        cursor: from,
        pending: VecDeque::new(),
        read_now: true,
        done: false,
        agents: AgentLabels::default(),
    };
    stream::unfold(start, |mut follow| async move {
        loop {
            if let Some(event) = follow.pending.pop_front() {
                return Some((Ok(event), follow));
            }
            if follow.done {
                return None;
            }
            if !follow.read_now {
                let id = follow.id;
                let _ = tokio::time::timeout(POLL_INTERVAL, follow.wakeups.log_of(id)).await;
            }
            follow.read_now = false;
            follow.poll().await;
        }
    })
}

impl Follow {
    /// Reads what is new into `pending`; ends the stream when the deployment
    /// has ended and everything is sent.
    async fn poll(&mut self) {
        // The state is read before the log: lines written before the end are
        // then always read before `end` is sent.
        let deployment = match self.store.get_deployment(self.id).await {
            Ok(deployment) => deployment,
            Err(error) => return self.fail(&error),
        };
        let page = match self.store.read_log(self.id, self.cursor, READ_BATCH).await {
            Ok(page) => page,
            Err(error) => return self.fail(&error),
        };
        if page.lines.is_empty() {
            if deployment.state.is_final() {
                let end = LogEnd {
                    state: deployment.state.as_str().to_owned(),
                    error: deployment.error.clone(),
                };
                self.pending.push_back(json_event("end", &end));
                self.done = true;
            }
            return;
        }
        let new_label = page
            .lines
            .iter()
            .filter_map(|l| l.step.as_deref())
            .any(|label| self.agents.may_be_new(label));
        if new_label {
            // Jobs are created before their agents write: read them again.
            match self.store.list_jobs(self.id).await {
                Ok(jobs) => self.agents = AgentLabels::of(&jobs),
                Err(error) => return self.fail(&error),
            }
        }
        let mut cursor = self.cursor.0;
        for line in &page.lines {
            cursor += 1;
            let agent = line
                .step
                .as_deref()
                .and_then(|label| self.agents.split(label))
                .map(|(_, agent)| agent.to_owned());
            let dto = LogLineDto {
                timestamp: time(line.timestamp),
                step: line.step.clone(),
                agent,
                stream: line.stream.as_str().to_owned(),
                level: line.level.as_str().to_owned(),
                text: line.text.clone(),
            };
            self.pending
                .push_back(json_event("line", &dto).id(cursor.to_string()));
        }
        self.cursor = page.next;
        // More may be waiting: read again at once rather than after a pause.
        self.read_now = true;
    }

    fn fail(&mut self, error: &StoreError) {
        tracing::error!(deployment = %self.id, %error, "cannot follow the task log");
        self.pending.push_back(json_event(
            "error",
            &serde_json::json!({ "error": "the log could not be read; reconnect to resume" }),
        ));
        self.done = true;
    }
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    match Event::default().event(name).json_data(data) {
        Ok(event) => event,
        // Serialising these plain structs cannot fail; an empty event of the
        // same name keeps the stream well formed if it ever did.
        Err(_) => Event::default().event(name),
    }
}
