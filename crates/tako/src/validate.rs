//! `tako validate`: every diagnostic of a takofile, as `file:line:col: message`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ValidateArgs;
use crate::local::find_takofile;

pub(crate) fn validate(args: &ValidateArgs) -> Result<ExitCode> {
    let path = find_takofile(&args.path)?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let file_name = path.display().to_string();
    match tako_takofile::parse(&file_name, &text) {
        Ok(takofile) => {
            for warning in &takofile.warnings {
                println!("{warning}");
            }
            println!("{file_name}: valid (project {})", takofile.project);
            if let Some(lifecycle) = &takofile.lifecycle {
                let phases: Vec<String> = lifecycle.phases.iter().map(|p| p.to_string()).collect();
                println!("lifecycle: {}", phases.join(" → "));
            }
            for step in takofile.steps.iter().flatten() {
                if step.retry.retries > 0 {
                    println!(
                        "step {}: Retries {} (up to {} attempts), RetryDelay {}",
                        step.name,
                        step.retry.retries,
                        step.retry.attempts(),
                        step.retry.delay_text
                    );
                }
                if let Some((_, roles)) = step.manual_intervention() {
                    let roles = if roles.is_empty() {
                        "admin or deployer".to_owned()
                    } else {
                        roles.join(" or ")
                    };
                    println!(
                        "step {}: waits for a person (manual-intervention), answered by {roles}",
                        step.name
                    );
                }
                if step.on_failure == tako_takofile::OnFailure::Ask {
                    println!(
                        "step {}: OnFailure: ask (a failure pauses for a person to retry, ignore or abort)",
                        step.name
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            for diagnostic in &diagnostics.0 {
                println!("{diagnostic}");
            }
            let errors = diagnostics
                .0
                .iter()
                .filter(|d| d.severity == tako_takofile::Severity::Error)
                .count();
            eprintln!(
                "{file_name}: invalid ({errors} error{})",
                if errors == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}
