//! `tako agent …` on an admin's machine: enrollment tokens and what admins
//! do to agents, over the HTTP API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tako_protocol::api::{
    AgentDto, CreateEnrollmentToken, CreatedEnrollmentToken, RotatedAgentCredential,
};

use super::http::segment;
use super::{client, print_listing};
use crate::cli::{AgentArgs, AgentCommand};

/// The longest an enrollment token may live.
const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// `--expires` as whole minutes (at least one).
fn expiry_minutes(text: &str) -> Result<u32> {
    let duration = humantime::parse_duration(text.trim()).with_context(|| {
        format!("--expires {text:?} is not a duration: write it like 30m, 1h or 2d")
    })?;
    if duration < Duration::from_secs(60) || duration > MAX_EXPIRY {
        bail!("--expires must be between 1 minute and 30 days, not {text}");
    }
    Ok(u32::try_from(duration.as_secs() / 60).unwrap_or(u32::MAX))
}

pub(crate) fn agent(args: AgentArgs) -> Result<ExitCode> {
    let client = client(&args.client);
    match args.command {
        AgentCommand::Run(run) => return crate::agent::run(args.client.server.clone(), run),
        AgentCommand::EnrollToken {
            environments,
            roles,
            name,
            expires,
            auto_approve,
        } => {
            let created: CreatedEnrollmentToken = client.post(
                "/agents/enrollment-tokens",
                Some(&CreateEnrollmentToken {
                    name,
                    environments,
                    roles,
                    expires_in_minutes: Some(expiry_minutes(&expires)?),
                    auto_approve,
                }),
            )?;
            eprintln!(
                "Created an enrollment token for {} (environments {}; roles {}), usable once until {}{}. On the agent's machine:",
                created.name.as_deref().unwrap_or("an agent"),
                created.environments.join(", "),
                created.roles.join(", "),
                created.expires_at,
                if created.auto_approve {
                    ""
                } else {
                    "; approve the agent once it has enrolled (tako agent approve NAME)"
                },
            );
            eprintln!("  tako agent run --server URL --enroll <token>");
            println!("{}", created.token);
        }
        AgentCommand::List { output } => {
            let agents: Vec<AgentDto> = client.get("/agents")?;
            print_listing(
                output,
                &agents,
                &[
                    "NAME",
                    "STATE",
                    "ENVIRONMENTS",
                    "ROLES",
                    "VERSION",
                    "LAST SEEN",
                    "CURRENT JOB",
                ],
                |a| {
                    vec![
                        a.name.clone(),
                        a.state.clone(),
                        a.environments.join(","),
                        a.roles.join(","),
                        a.version.clone().unwrap_or_else(|| "-".to_owned()),
                        a.last_seen_at.clone().unwrap_or_else(|| "-".to_owned()),
                        a.current_job.as_ref().map_or_else(
                            || "-".to_owned(),
                            |job| format!("deployment {}: {}", job.deployment, job.step),
                        ),
                    ]
                },
            )?;
        }
        AgentCommand::Approve { name } => change(&client, &name, "approve", "approved")?,
        AgentCommand::Disable { name } => change(&client, &name, "disable", "disabled")?,
        AgentCommand::Enable { name } => change(&client, &name, "enable", "enabled")?,
        AgentCommand::Remove { name } => {
            client.delete(&format!("/agents/{}", segment(&name)))?;
            eprintln!("Removed agent {name}: its credential no longer works");
        }
        AgentCommand::Rotate { name } => {
            let rotated: RotatedAgentCredential =
                client.post(&format!("/agents/{}/rotate", segment(&name)), None::<&()>)?;
            eprintln!(
                "Agent {} has a new credential (shown only this once); write it to the file `credential` in the agent's data directory. The old one no longer works:",
                rotated.agent.name
            );
            println!("{}", rotated.credential);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn change(client: &super::http::Client, name: &str, verb: &str, done: &str) -> Result<()> {
    let agent: AgentDto = client.post(&format!("/agents/{}/{verb}", segment(name)), None::<&()>)?;
    eprintln!("Agent {} {done} (now {})", agent.name, agent.state);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_minutes_between_one_and_thirty_days() {
        assert_eq!(expiry_minutes("1h").unwrap(), 60);
        assert_eq!(expiry_minutes("30m").unwrap(), 30);
        assert_eq!(expiry_minutes("2d").unwrap(), 2880);
        assert!(expiry_minutes("10s").is_err());
        assert!(expiry_minutes("31d").is_err());
        let error = expiry_minutes("soon").unwrap_err().to_string();
        assert!(error.contains("30m, 1h or 2d"), "{error}");
    }
}
