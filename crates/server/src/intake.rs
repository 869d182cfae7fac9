//! Webhook intake: verify, classify, store durably, answer.
//!
//! The signature is checked on the raw bytes, in constant time, before the
//! payload is parsed. Which secret applies depends on the repository (a
//! project's own secret beats the server's), so when any project has its own
//! secret, the repository's URL is read from the unverified body *only to
//! choose the key*; nothing else of an unverified body is looked at.
//!
//! A push is answered 202 only after its delivery is committed: requests
//! arriving together are stored in one transaction by [`IntakeWriter`], which
//! batches them (one fsync for many pushes), then each request gets its own
//! answer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde::Deserialize;
use tako_github::{DeliveryHeaders, Event, HeaderError, PayloadError, SignatureError};
use tako_store::{
    DeliveryId, InsertOutcome, NewDelivery, Store, StoreError, normalize_repository_url,
};
use tokio::sync::{Notify, mpsc, oneshot};

/// How many deliveries one transaction stores at most.
const MAX_BATCH: usize = 512;

/// What the intake answers, before it becomes HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeReply {
    /// `ping`: 200.
    Pong,
    /// A push stored: 202.
    Queued {
        /// The delivery id.
        delivery: String,
    },
    /// The same delivery id again: 200, nothing created.
    Duplicate {
        /// The delivery id.
        delivery: String,
    },
    /// An event Tako does not act on: 200 with the reason.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No secret applies and unsigned webhooks are not allowed: 401.
    #[error(
        "no webhook secret is configured for this repository or the server; set webhook_secret (or start with --insecure-unsigned-webhooks for a local trial)"
    )]
    NoSecret,
    /// Missing or wrong signature: 401.
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    /// Missing or malformed GitHub headers: 400.
    #[error("{0}")]
    Headers(#[from] HeaderError),
    /// The body is not a payload of its event: 400.
    #[error("{0}")]
    Payload(#[from] PayloadError),
    /// Missing or malformed headers of another forge: 400.
    #[error("{0}")]
    ForgeHeaders(#[from] tako_forges::HeaderError),
    /// Missing or wrong signature or token of another forge: 401.
    #[error("signature check failed: {0}")]
    ForgeSignature(#[from] tako_forges::SignatureError),
    /// Another forge's body is not a payload of its event: 400.
    #[error("{0}")]
    ForgePayload(#[from] tako_forges::PayloadError),
    /// The store could not commit the delivery: 503.
    #[error("the delivery could not be stored: {0}")]
    Store(#[from] StoreError),
    /// The intake writer has stopped (shutting down): 503.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Project secrets by normalised repository URL, kept in memory so that the
/// common case (no project secrets) never looks into an unverified body.
#[derive(Debug, Default)]
pub struct SecretIndex {
    by_repository: HashMap<String, String>,
}

impl SecretIndex {
    /// Replaces the index with these (repository URL, secret) pairs.
    pub fn replace(&mut self, pairs: impl IntoIterator<Item = (String, String)>) {
        self.by_repository = pairs
            .into_iter()
            .map(|(url, secret)| (normalize_repository_url(&url), secret))
            .collect();
    }

    /// Adds or replaces one project's secret.
    pub fn insert(&mut self, repository_url: &str, secret: String) {
        self.by_repository
            .insert(normalize_repository_url(repository_url), secret);
    }

    /// Forgets one project's secret (the server's applies again).
    pub fn remove(&mut self, repository_url: &str) {
        self.by_repository
            .remove(&normalize_repository_url(repository_url));
    }

    fn is_empty(&self) -> bool {
        self.by_repository.is_empty()
    }

    fn secret_for(&self, repository_urls: &[&str]) -> Option<&str> {
        repository_urls
            .iter()
            .find_map(|url| self.by_repository.get(&normalize_repository_url(url)))
            .map(String::as_str)
    }
}

/// The intake's project secrets, shared with the services that change them
/// (registering a project, rotating its secret): one lock, taken briefly.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets(Arc<RwLock<SecretIndex>>);

impl WebhookSecrets {
    /// Secrets from these (repository URL, secret) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> WebhookSecrets {
        let mut index = SecretIndex::default();
        index.replace(pairs);
        WebhookSecrets(Arc::new(RwLock::new(index)))
    }

    /// Replaces every secret with these (repository URL, secret) pairs
    /// (a reload after another node changed a project).
    pub fn replace(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(pairs);
    }

    /// Sets (or, with `None`, forgets) one project's secret.
    pub fn set(&self, repository_url: &str, secret: Option<String>) {
        let mut index = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match secret {
            Some(secret) => index.insert(repository_url, secret),
            None => index.remove(repository_url),
        }
    }
}

/// Only the repository's URLs, read from an unverified body to choose the
/// key; everything else is skipped by serde without being built.
#[derive(Deserialize)]
struct KeySelector {
    repository: Option<KeySelectorRepository>,
}

#[derive(Deserialize)]
struct KeySelectorRepository {
    clone_url: Option<String>,
    html_url: Option<String>,
    url: Option<String>,
}

/// The repository's URLs of another forge's unverified body, to choose the
/// key: GitLab's `project`, Bitbucket's `repository.links.html` (and its
/// `.git`), Gitea's GitHub-shaped `repository`.
#[derive(Deserialize)]
struct ForgeKeySelector {
    repository: Option<ForgeKeyRepository>,
    project: Option<GitLabKeyProject>,
}

#[derive(Deserialize)]
struct ForgeKeyRepository {
    clone_url: Option<String>,
    html_url: Option<String>,
    links: Option<BitbucketKeyLinks>,
}

#[derive(Deserialize)]
struct BitbucketKeyLinks {
    html: Option<BitbucketKeyHref>,
}

#[derive(Deserialize)]
struct BitbucketKeyHref {
    href: Option<String>,
}

#[derive(Deserialize)]
struct GitLabKeyProject {
    git_http_url: Option<String>,
    web_url: Option<String>,
}

fn forge_repository_urls_of(body: &[u8]) -> Vec<String> {
    let Ok(selector) = serde_json::from_slice::<ForgeKeySelector>(body) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    if let Some(project) = selector.project {
        urls.extend(
            [project.git_http_url, project.web_url]
                .into_iter()
                .flatten(),
        );
    }
    if let Some(repository) = selector.repository {
        urls.extend(
            [repository.clone_url, repository.html_url]
                .into_iter()
                .flatten(),
        );
        if let Some(href) = repository.links.and_then(|l| l.html).and_then(|h| h.href) {
            urls.push(format!("{}.git", href.trim_end_matches('/')));
            urls.push(href);
        }
    }
    urls
}

fn repository_urls_of(content_type: Option<&str>, body: &[u8]) -> Vec<String> {
    let Ok(json) = tako_github::payload_json(content_type, body) else {
        return Vec::new();
    };
    let Ok(selector) = serde_json::from_slice::<KeySelector>(&json) else {
        return Vec::new();
    };
    selector
        .repository
        .map(|r| {
            [r.clone_url, r.html_url, r.url]
                .into_iter()
                .flatten()
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the intake needs.
#[derive(Clone)]
pub struct Intake {
    /// The server-wide secret.
    pub server_secret: Option<String>,
    /// Accept unsigned hooks when no secret applies.
    pub insecure_unsigned: bool,
    /// Project secrets.
    pub secrets: WebhookSecrets,
    /// The batching writer.
    pub writer: IntakeWriter,
}

/// The request as the HTTP layer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

impl Intake {
    /// Verifies, parses and (for a push) durably stores one webhook.
    pub async fn receive(&self, request: WebhookRequest<'_>) -> Result<IntakeReply, IntakeError> {
        let headers = DeliveryHeaders::parse(request.event, request.delivery, request.signature)?;
        self.verify(&request)?;
        let event = tako_github::parse_event(&headers.event, request.content_type, request.body)?;
        match event {
            Event::Ping { .. } => Ok(IntakeReply::Pong),
            Event::Push(push) => {
                // Stored: the verified JSON document itself (for a form body,
                // its `payload` field), so the router can parse it again
                // after a restart.
                let json = tako_github::payload_json(request.content_type, request.body)?;
                let delivery = NewDelivery {
                    id: DeliveryId(headers.delivery_id.clone()),
                    event: headers.event.clone(),
                    received_at: Utc::now(),
                    body: json.into_owned(),
                    repository_url: Some(push.repository.clone_url.clone()),
                    git_ref: Some(push.git_ref.clone()),
                    after: Some(push.after.clone()),
                    recovered: false,
                };
                match self.writer.insert(delivery).await? {
                    InsertOutcome::Inserted => Ok(IntakeReply::Queued {
                        delivery: headers.delivery_id,
                    }),
                    InsertOutcome::Duplicate => Ok(IntakeReply::Duplicate {
                        delivery: headers.delivery_id,
                    }),
                }
            }
            other => Ok(IntakeReply::Ignored {
                reason: other.ignored_reason().unwrap_or_default(),
            }),
        }
    }

    /// Verifies, parses and (for a push) durably stores one webhook of
    /// Gitea/Forgejo, GitLab or Bitbucket. The push is stored normalized
    /// (as the router reads every push, event `push`), under the forge's
    /// delivery id with the forge as prefix; a Bitbucket push moving several
    /// refs is one delivery per ref, stored together.
    pub async fn receive_forge(
        &self,
        forge: tako_forges::Forge,
        headers: &tako_forges::Headers<'_>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<IntakeReply, IntakeError> {
        let delivery = tako_forges::Delivery::parse(forge, headers)?;
        self.verify_forge(&delivery, content_type, body)?;
        let event = tako_forges::parse_event(forge, &delivery.event, content_type, body)?;
        let pushes = match event {
            tako_forges::ForgeEvent::Ping => return Ok(IntakeReply::Pong),
            tako_forges::ForgeEvent::Ignored { reason } => {
                return Ok(IntakeReply::Ignored { reason });
            }
            tako_forges::ForgeEvent::Pushes(pushes) => pushes,
        };
        let received_at = Utc::now();
        let mut deliveries = Vec::with_capacity(pushes.len());
        for (index, push) in pushes.iter().enumerate() {
            deliveries.push(normalized(
                delivery.stored_id(index),
                push,
                received_at,
                false,
            )?);
        }
        let mut any_new = false;
        for new in deliveries {
            if self.writer.insert(new).await? == InsertOutcome::Inserted {
                any_new = true;
            }
        }
        let id = delivery.stored_id(0);
        Ok(if any_new {
            IntakeReply::Queued { delivery: id }
        } else {
            IntakeReply::Duplicate { delivery: id }
        })
    }

    /// Stores a push the missed-push sweep recovered (`crate::sweep`): a
    /// head of a mapped branch Tako never received a push for. It takes the
    /// normalized path of another forge's push (event `push`, the [`Push`]
    /// as JSON), marked recovered, under `id` (deterministic, so a second
    /// sweep stores nothing more).
    pub async fn receive_recovered(
        &self,
        id: String,
        push: &tako_github::Push,
    ) -> Result<IntakeReply, IntakeError> {
        let new = normalized(id.clone(), push, Utc::now(), true)?;
        Ok(match self.writer.insert(new).await? {
            InsertOutcome::Inserted => IntakeReply::Queued { delivery: id },
            InsertOutcome::Duplicate => IntakeReply::Duplicate { delivery: id },
        })
    }

    fn verify_forge(
        &self,
        delivery: &tako_forges::Delivery,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), IntakeError> {
        let secrets = self
            .secrets
            .0
            .read()
            .map_err(|_| IntakeError::ShuttingDown)?;
        let project_secret;
        let secret = if secrets.is_empty() {
            self.server_secret.as_deref()
        } else {
            let json = tako_github::payload_json(content_type, body).unwrap_or_default();
            let urls = forge_repository_urls_of(&json);
            let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
            project_secret = secrets.secret_for(&urls).map(str::to_owned);
            project_secret.as_deref().or(self.server_secret.as_deref())
        };
        match secret {
            Some(secret) => Ok(delivery.verify(secret, body, Utc::now().timestamp())?),
            None if self.insecure_unsigned => Ok(()),
            None => Err(IntakeError::NoSecret),
        }
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), IntakeError> {
        let secrets = self
            .secrets
            .0
            .read()
            .map_err(|_| IntakeError::ShuttingDown)?;
        let project_secret;
        let secret = if secrets.is_empty() {
            self.server_secret.as_deref()
        } else {
            let urls = repository_urls_of(request.content_type, request.body);
            let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
            project_secret = secrets.secret_for(&urls).map(str::to_owned);
            project_secret.as_deref().or(self.server_secret.as_deref())
        };
        match secret {
            Some(secret) => Ok(tako_github::verify_signature(
                secret.as_bytes(),
                request.body,
                request.signature,
            )?),
            None if self.insecure_unsigned => Ok(()),
            None => Err(IntakeError::NoSecret),
        }
    }
}

/// A normalized push as the delivery that stores it (event `push`).
fn normalized(
    id: String,
    push: &tako_github::Push,
    received_at: chrono::DateTime<Utc>,
    recovered: bool,
) -> Result<NewDelivery, IntakeError> {
    let body = serde_json::to_vec(push).map_err(|error| {
        IntakeError::Store(StoreError::Unavailable {
            context: "encoding a push".to_owned(),
            source: error.to_string().into(),
        })
    })?;
    Ok(NewDelivery {
        id: DeliveryId(id),
        event: "push".to_owned(),
        received_at,
        body,
        repository_url: Some(push.repository.clone_url.clone()),
        git_ref: Some(push.git_ref.clone()),
        after: Some(push.after.clone()),
        recovered,
    })
}

type Pending = (
    NewDelivery,
    oneshot::Sender<Result<InsertOutcome, StoreError>>,
);

/// Stores deliveries in batches: concurrent requests share one transaction,
/// and each is answered only after that transaction commits.
#[derive(Clone)]
pub struct IntakeWriter {
    sender: mpsc::Sender<Pending>,
    activity: IntakeActivity,
}

/// When this node's intake last received a push: background work that
/// writes much (a retention pass) waits for a quiet moment with it, so a
/// push's request, open until its commit, does not wait behind that work.
#[derive(Debug, Clone)]
pub struct IntakeActivity {
    since: std::time::Instant,
    /// Milliseconds after `since` of the last push; 0: none yet.
    last: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for IntakeActivity {
    fn default() -> Self {
        IntakeActivity {
            since: std::time::Instant::now(),
            last: Arc::default(),
        }
    }
}

impl IntakeActivity {
    /// Records a push received now.
    pub fn record(&self) {
        let now = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last
            .store(now.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long ago the last push was received; `None` if none was.
    pub fn quiet_for(&self) -> Option<std::time::Duration> {
        let last = self.last.load(std::sync::atomic::Ordering::Relaxed);
        if last == 0 {
            return None;
        }
        Some(
            self.since
                .elapsed()
                .saturating_sub(std::time::Duration::from_millis(last)),
        )
    }
}

impl IntakeWriter {
    /// Starts the writer task; `stored` is notified after each commit that
    /// stored something new (the router wakes on it). Up to `in_flight`
    /// batches are written at once (at least one): a store with one writer
    /// (SQLite) gains nothing from more than one, while PostgreSQL commits
    /// batches on several connections in parallel, so a push waits for a
    /// free connection rather than for the whole previous batch.
    pub fn spawn(store: Arc<dyn Store>, stored: Arc<Notify>, in_flight: usize) -> IntakeWriter {
        let (sender, receiver) = mpsc::channel::<Pending>(MAX_BATCH * 4);
        tokio::spawn(write_batches(store, receiver, stored, in_flight.max(1)));
        IntakeWriter {
            sender,
            activity: IntakeActivity::default(),
        }
    }

    /// When pushes last arrived here (see [`IntakeActivity`]).
    pub fn activity(&self) -> IntakeActivity {
        self.activity.clone()
    }

    async fn insert(&self, delivery: NewDelivery) -> Result<InsertOutcome, IntakeError> {
        self.activity.record();
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((delivery, reply))
            .await
            .map_err(|_| IntakeError::ShuttingDown)?;
        answer
            .await
            .map_err(|_| IntakeError::ShuttingDown)?
            .map_err(IntakeError::Store)
    }
}

/// Forms batches from what is waiting (while every slot is busy, waiting
/// pushes gather into the next batch) and writes each in its own task.
async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Pending>,
    stored: Arc<Notify>,
    in_flight: usize,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(in_flight));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let store = Arc::clone(&store);
        let stored = Arc::clone(&stored);
        tokio::spawn(async move {
            write_batch(store.as_ref(), batch, &stored).await;
            drop(slot);
        });
    }
}

/// Stores one batch in one commit and answers each of its requests.
async fn write_batch(store: &dyn Store, batch: Vec<Pending>, stored: &Notify) {
    let (deliveries, replies): (Vec<NewDelivery>, Vec<_>) = batch.into_iter().unzip();
    // How the intake batches, for `TAKO_LOG=tako_server::intake::batches=debug`:
    // each batch's size, how long its first push waited for it (since it
    // was received) and how long the store took.
    let waited_us = deliveries
        .first()
        .and_then(|first| (Utc::now() - first.received_at).num_microseconds())
        .unwrap_or(0);
    let started = std::time::Instant::now();
    let written = store.insert_deliveries(&deliveries).await;
    tracing::debug!(target: "tako_server::intake::batches", size = deliveries.len(), waited_us,
        took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "a batch of deliveries written");
    match written {
        Ok(outcomes) => {
            let any_new = outcomes.contains(&InsertOutcome::Inserted);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            if any_new {
                stored.notify_one();
            }
        }
        Err(error) => {
            let message = error.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable {
                    context: "storing a batch of deliveries".to_owned(),
                    source: message.clone().into(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intake_activity_says_how_long_ago_the_last_push_arrived() {
        let activity = IntakeActivity::default();
        assert_eq!(activity.quiet_for(), None, "no push yet");
        activity.record();
        let quiet = activity.quiet_for().expect("a push was recorded");
        assert!(quiet < std::time::Duration::from_secs(1), "{quiet:?}");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let later = activity.clone().quiet_for().expect("clones share it");
        assert!(later >= std::time::Duration::from_millis(25), "{later:?}");
    }
}
