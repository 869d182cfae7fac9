//! `slack`: posts a message to a Slack incoming webhook.
//!
//! Parameters: `WebhookUrl` (usually a sensitive variable), and optionally
//! `Channel`, `Username`, `IconUrl`, `Text`. With `Text`, that text is the
//! message, sent as written (so Slack's own markup in it works). Without it,
//! the message tells how the deployment went so far, in Slack's documented
//! incoming-webhook JSON: a `text` (also the notification's fallback) and
//! one attachment coloured `good` (green) or `danger` (red) with a title
//! linking to the deployment, fields for the project, release, environment
//! and, on failure, the step that failed, a footer and a timestamp. Texts
//! Tako writes escape Slack's control characters `&`, `<`, `>`.
//!
//! The webhook URL is a secret (its path is the token): no log line and no
//! failure message contains more than its scheme and host.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tako_core::log::LogLevel;
use tako_core::system::{DeploymentFacts, web_links};

use super::http::{self, BODY_MESSAGE_LIMIT};
use super::{StepContext, StepError, StepResult};

/// How long Slack has to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the step's parameters ask of the message, apart from the webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageOptions<'a> {
    /// `Text`: the whole message, sent as written.
    pub text: Option<&'a str>,
    /// `Channel`: overrides the webhook's channel.
    pub channel: Option<&'a str>,
    /// `Username`: overrides the webhook's name.
    pub username: Option<&'a str>,
    /// `IconUrl`: overrides the webhook's icon.
    pub icon_url: Option<&'a str>,
}

/// Escapes Slack's control characters (`&`, `<`, `>`) as Slack documents:
/// as the HTML entities `&amp;`, `&lt;`, `&gt;`, and nothing else.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A Slack link `<url|label>`, or the bare label when there is no URL.
fn link(url: Option<String>, label: &str) -> String {
    match url {
        Some(url) => format!("<{}|{}>", escape(&url), escape(label)),
        None => escape(label),
    }
}

/// The incoming-webhook JSON for a deployment whose first failure so far is
/// `error` (already masked) and whose steps so far are `steps_so_far`;
/// `ts` is the attachment's time (Unix seconds). Pure: no I/O, no clock.
pub fn message(
    facts: &DeploymentFacts,
    error: Option<&str>,
    steps_so_far: &[(String, String)],
    options: &MessageOptions<'_>,
    ts: i64,
) -> Value {
    let mut payload = Map::new();
    if let Some(text) = options.text {
        payload.insert("text".into(), json!(text));
    } else {
        let what = format!(
            "{} {} to {}",
            facts.project, facts.release_number, facts.environment
        );
        let failed_step = steps_so_far
            .iter()
            .find(|(_, state)| state == "Failed")
            .map(|(name, _)| name.as_str());
        let cancelled = steps_so_far.iter().any(|(_, state)| state == "Cancelled");
        let (title, text, color) = match error {
            Some(error) => {
                let title = format!("Failed to deploy {what}");
                let text = format!("{title}: {error}");
                (title, text, "danger")
            }
            None if cancelled => {
                let title = format!("Cancelled the deployment of {what}");
                (title.clone(), title, "warning")
            }
            None => {
                let title = format!("Deployed {what}");
                (title.clone(), title, "good")
            }
        };
        let links = web_links(facts);
        let mut fields = vec![
            json!({
                "title": "Project",
                "value": link(links.absolute(&links.project), &facts.project),
                "short": true,
            }),
            json!({
                "title": "Release",
                "value": link(links.absolute(&links.release), &facts.release_number),
                "short": true,
            }),
            json!({
                "title": "Environment",
                "value": escape(&facts.environment),
                "short": true,
            }),
        ];
        if let (Some(_), Some(step)) = (error, failed_step) {
            fields.push(json!({
                "title": "Step that failed",
                "value": escape(step),
                "short": true,
            }));
        }
        let mut attachment = Map::new();
        attachment.insert("color".into(), json!(color));
        attachment.insert("fallback".into(), json!(escape(&text)));
        attachment.insert("title".into(), json!(escape(&title)));
        if let Some(url) = links.absolute(&links.deployment) {
            attachment.insert("title_link".into(), json!(url));
        }
        attachment.insert("fields".into(), Value::Array(fields));
        attachment.insert("footer".into(), json!("Tako"));
        attachment.insert("ts".into(), json!(ts));
        payload.insert("text".into(), json!(escape(&text)));
        payload.insert("attachments".into(), json!([Value::Object(attachment)]));
    }
    for (key, value) in [
        ("channel", options.channel),
        ("username", options.username),
        ("icon_url", options.icon_url),
    ] {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            payload.insert(key.into(), json!(value));
        }
    }
    Value::Object(payload)
}

/// What a Slack answer other than success means, as a failure message.
/// `body` is Slack's answer text (`invalid_payload`, `no_service`, ...),
/// `retry_after` its `Retry-After` header.
pub fn failure(status: u16, body: &str, retry_after: Option<&str>) -> String {
    let code = body.trim();
    let answer = if code.is_empty() {
        format!("{status}")
    } else {
        format!("{status} {code}")
    };
    let meaning = match (status, code) {
        (400, _) => "Slack rejected the message as invalid",
        (403, "action_prohibited") => {
            "the Slack workspace's administrators do not allow this webhook to post"
        }
        (403, _) => "Slack refused the webhook's token (revoked or wrong WebhookUrl?)",
        (404, "channel_not_found") => "the Slack channel does not exist (check Channel)",
        (404, _) => "the Slack webhook does not exist any more (removed app or wrong WebhookUrl?)",
        (410, _) => "the Slack channel is archived",
        (429, _) => {
            return match retry_after.map(str::trim).filter(|r| !r.is_empty()) {
                Some(after) => format!(
                    "Slack is rate limiting this webhook (answered {answer}); retry after {after} seconds"
                ),
                None => format!("Slack is rate limiting this webhook (answered {answer})"),
            };
        }
        (500..=599, _) => "Slack had an error; try again later",
        _ => "Slack did not accept the message",
    };
    format!("{meaning} (answered {answer})")
}

/// The step: builds the message and posts it.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    let webhook = http::parse_url(context.required("WebhookUrl")?, "WebhookUrl")?;
    let options = MessageOptions {
        text: context.text("Text")?,
        channel: context.text("Channel")?,
        username: context.text("Username")?,
        icon_url: context.text("IconUrl")?,
    };
    let payload = message(
        context.facts,
        context.error,
        context.steps_so_far,
        &options,
        chrono::Utc::now().timestamp(),
    );
    let masker = context.log.masker();
    // The path of a webhook URL is its token: show the host only.
    let shown = http::shown_url(&webhook, masker, true);
    let hide = |text: &str| {
        let text = text.replace(webhook.as_str(), &shown);
        let text = if webhook.path().len() > 1 {
            text.replace(webhook.path(), "/…")
        } else {
            text
        };
        masker.mask(&text).into_owned()
    };
    let client = http::client(TIMEOUT)?;
    let builder = client.post(webhook.clone()).json(&payload);
    let (response, body) = http::send(builder, BODY_MESSAGE_LIMIT, TIMEOUT, &shown, context.cancel)
        .await
        .map_err(|e| hide(&format!("could not post to Slack: {e}")))?;
    let status = response.status();
    let body = String::from_utf8_lossy(&body);
    let quoted: String = body.trim().chars().take(200).collect();
    context.log.tako(
        LogLevel::Info,
        &hide(&format!("POST {shown} answered {status} {quoted}")),
    );
    if status.is_success() {
        return Ok(Vec::new());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok());
    Err(StepError::Failed(hide(&failure(
        status.as_u16(),
        &quoted,
        retry_after,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> DeploymentFacts {
        DeploymentFacts {
            project: "StatusCakeDSC".into(),
            environment: "Production".into(),
            release_number: "1.4.0".into(),
            release_id: "releases-12".into(),
            deployment_id: "deployments-34".into(),
            web_base_url: "https://tako.example.com/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn success_is_green_with_links() {
        let steps = [("Build".to_owned(), "Success".to_owned())];
        let value = message(
            &facts(),
            None,
            &steps,
            &MessageOptions::default(),
            1_700_000_000,
        );
        assert_eq!(
            value,
            json!({
                "text": "Deployed StatusCakeDSC 1.4.0 to Production",
                "attachments": [{
                    "color": "good",
                    "fallback": "Deployed StatusCakeDSC 1.4.0 to Production",
                    "title": "Deployed StatusCakeDSC 1.4.0 to Production",
                    "title_link": "https://tako.example.com/deployments/deployments-34",
                    "fields": [
                        {"title": "Project", "value": "<https://tako.example.com/projects/StatusCakeDSC|StatusCakeDSC>", "short": true},
                        {"title": "Release", "value": "<https://tako.example.com/releases/releases-12|1.4.0>", "short": true},
                        {"title": "Environment", "value": "Production", "short": true},
                    ],
                    "footer": "Tako",
                    "ts": 1_700_000_000,
                }],
            })
        );
    }

    #[test]
    fn failure_is_red_names_the_step_and_escapes() {
        let steps = [
            ("Build".to_owned(), "Success".to_owned()),
            ("Push <main>".to_owned(), "Failed".to_owned()),
        ];
        let facts = DeploymentFacts {
            web_base_url: String::new(),
            project: "A&B".into(),
            ..facts()
        };
        let value = message(
            &facts,
            Some("Step 'Push <main>' failed: exit code 1"),
            &steps,
            &MessageOptions::default(),
            5,
        );
        let text = "Failed to deploy A&amp;B 1.4.0 to Production: Step 'Push &lt;main&gt;' failed: exit code 1";
        assert_eq!(value["text"], text);
        let attachment = &value["attachments"][0];
        assert_eq!(attachment["color"], "danger");
        assert_eq!(attachment["fallback"], text);
        assert_eq!(
            attachment["title"],
            "Failed to deploy A&amp;B 1.4.0 to Production"
        );
        assert!(attachment.get("title_link").is_none());
        assert_eq!(attachment["fields"][0]["value"], "A&amp;B");
        assert_eq!(
            attachment["fields"][3],
            json!({"title": "Step that failed", "value": "Push &lt;main&gt;", "short": true})
        );
    }

    #[test]
    fn explicit_text_and_overrides() {
        let options = MessageOptions {
            text: Some("Hello <!here> & all"),
            channel: Some("#deploys"),
            username: Some("Tako"),
            icon_url: Some("https://example.com/tako.png"),
        };
        assert_eq!(
            message(&facts(), None, &[], &options, 0),
            json!({
                "text": "Hello <!here> & all",
                "channel": "#deploys",
                "username": "Tako",
                "icon_url": "https://example.com/tako.png",
            })
        );
    }

    #[test]
    fn slack_errors_read_clearly() {
        assert!(
            failure(400, "invalid_payload", None)
                .contains("invalid (answered 400 invalid_payload)")
        );
        assert!(failure(404, "channel_not_found", None).contains("channel does not exist"));
        assert!(failure(410, "channel_is_archived", None).contains("archived"));
        assert!(failure(429, "", Some("30")).contains("retry after 30 seconds"));
    }
}
