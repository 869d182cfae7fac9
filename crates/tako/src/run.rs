//! `tako run`: the takofile's process, run locally through the same engine a
//! server deployment uses. A step that waits for a person (`Uses:
//! manual-intervention`, or a failed step with `OnFailure: ask`) asks on
//! the terminal when stdin is one, and the run resumes with the answer;
//! otherwise the run fails saying how to answer.

use std::io::{BufRead, IsTerminal, Write};

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tako_core::state::InterventionAction;
use tako_core::step::{StepReport, StepState};
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{
    DeploymentOutcome, DeploymentPlan, Pause, RecordedStep, RunSettings, resume_deployment_with,
};
use tako_exec::executor::{LocalExecutor, StepOutput};
use tako_takofile::Takofile;
use tokio_util::sync::CancellationToken;

use crate::cli::{LocalArgs, RunArgs};
use crate::console::{ConsoleSink, summary};
use crate::local::{copy_tree, find_takofile, parse_assignment, read_var_file, repo_facts};

/// A local repository's process, ready to run or plan.
pub(crate) struct Local {
    /// The repository's root.
    pub(crate) repo: std::path::PathBuf,
    /// The environment.
    pub(crate) environment: String,
    /// The branch acted as.
    pub(crate) branch: String,
    /// What to run.
    pub(crate) plan: DeploymentPlan,
}

/// Reads the repository's takofile and builds its deployment: `Ok(None)`
/// when the takofile is invalid (every problem printed).
pub(crate) fn prepare(args: &LocalArgs) -> Result<Option<Local>> {
    let repo = args
        .path
        .canonicalize()
        .with_context(|| format!("cannot open {}", args.path.display()))?;
    let takofile_path = find_takofile(&repo)?;
    let text = std::fs::read_to_string(&takofile_path)
        .with_context(|| format!("cannot read {}", takofile_path.display()))?;
    let file_name = takofile_path
        .strip_prefix(&repo)
        .unwrap_or(&takofile_path)
        .display()
        .to_string();
    let takofile = match tako_takofile::parse(&file_name, &text) {
        Ok(takofile) => takofile,
        Err(diagnostics) => {
            for diagnostic in &diagnostics.0 {
                println!("{diagnostic}");
            }
            eprintln!("{file_name} is invalid: nothing was run");
            return Ok(None);
        }
    };
    let Some(steps) = takofile.steps.clone() else {
        bail!(
            "{file_name} has no Steps: its process lives on the Tako server; add Steps to run it locally"
        );
    };

    let git = repo_facts(&repo);
    let branch = args
        .branch
        .clone()
        .or(git.branch.clone())
        .unwrap_or_default();
    let environment = match &args.environment {
        Some(environment) => environment.clone(),
        None => match takofile.environment_for_branch(&branch) {
            Some(environment) => environment.to_owned(),
            None if branch.is_empty() => {
                bail!("cannot tell the current branch; pass --env NAME or --branch NAME")
            }
            None => bail!("branch {branch} maps to no environment in {file_name}; pass --env NAME"),
        },
    };

    let mut variables = tako_core::variables::from_takofile(&takofile);
    for path in &args.var_files {
        for (name, value) in read_var_file(path)? {
            variables.push(VariableValue::new(VariableSource::DeployTime, name, value));
        }
    }
    for assignment in &args.vars {
        let (name, value) = parse_assignment(assignment, "--var")?;
        variables.push(VariableValue::new(VariableSource::DeployTime, name, value));
    }
    for assignment in &args.secrets {
        let (name, value) = parse_assignment(assignment, "--secret")?;
        variables.push(VariableValue::new(VariableSource::DeployTime, name, value).sensitive());
    }

    let manifest = match &takofile.manifest {
        Some(path) => Some(tako_exec::prepare::read_manifest(&repo, path)?),
        None => None,
    };
    let deployment_id = format!("local-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let mut facts = DeploymentFacts {
        project: takofile.project.clone(),
        environment: environment.clone(),
        release_number: String::new(),
        release_notes: format!("Local run of {} on branch {branch}", short(&git.commit)),
        release_id: "local".to_owned(),
        deployment_id,
        build: args.build,
        git_repository: git.origin.clone(),
        git_branch: branch.clone(),
        git_commit: git.commit.clone(),
        git_pusher: git.author.clone(),
        web_base_url: String::new(),
        manifest,
    };
    facts.release_number = release_number(&takofile, &facts, &variables)?;
    Ok(Some(Local {
        repo,
        environment,
        branch,
        plan: DeploymentPlan {
            steps,
            facts,
            variables,
        },
    }))
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    let Some(Local {
        repo,
        environment,
        branch,
        plan,
    }) = prepare(&args.local)?
    else {
        return Ok(ExitCode::from(1));
    };

    let run_dir = tempfile::Builder::new()
        .prefix("tako-run-")
        .tempdir()
        .context("cannot create a working directory")?;
    let working_dir = run_dir.path().join("work");
    let scratch_dir = run_dir.path().join("scratch");
    copy_tree(&repo, &working_dir)?;
    std::fs::create_dir_all(&scratch_dir).context("cannot create the scratch directory")?;
    println!(
        "Running {} release {} in {environment} (branch {branch}) from {}",
        plan.facts.project,
        plan.facts.release_number,
        repo.display()
    );

    let settings = RunSettings {
        working_dir: working_dir.clone(),
        scratch_dir,
        kill_grace: Duration::from_secs(5),
    };
    let sink = ConsoleSink::new(args.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_interrupt.cancel();
            }
        });
        let local = LocalExecutor::new(settings.clone());
        let mut done = Vec::new();
        loop {
            let mut report =
                resume_deployment_with(&plan, &settings, &sink, &cancel, &local, done).await;
            let DeploymentOutcome::Paused(pause) = &report.outcome else {
                return report;
            };
            let pause = pause.clone();
            let asked = tokio::task::spawn_blocking({
                let pause = pause.clone();
                move || ask(&pause)
            })
            .await;
            let answer = match asked {
                Ok(Ok(answer)) => answer,
                Ok(Err(refusal)) => {
                    report.outcome = DeploymentOutcome::Failed { error: refusal };
                    return report;
                }
                Err(_) => {
                    report.outcome = DeploymentOutcome::Failed {
                        error: "the question on the terminal failed".to_owned(),
                    };
                    return report;
                }
            };
            match answered(pause, answer) {
                Ok(next) => done = next,
                Err(error) => {
                    report.outcome = DeploymentOutcome::Failed { error };
                    return report;
                }
            }
        }
    });
    drop(sink);
    println!();
    print!("{}", summary(&report.steps));
    if !report.outputs.is_empty() {
        println!();
        for output in &report.outputs {
            println!(
                "output Octopus.Action[{}].Output.{} = {}",
                output.step, output.name, output.value
            );
        }
    }
    if args.keep_workdir {
        let kept = run_dir.keep();
        println!("working directory kept at {}", kept.join("work").display());
    }
    match report.outcome {
        DeploymentOutcome::Succeeded => {
            println!("Deployment succeeded");
            Ok(ExitCode::SUCCESS)
        }
        DeploymentOutcome::Failed { error } => {
            println!("Deployment failed: {error}");
            Ok(ExitCode::from(1))
        }
        DeploymentOutcome::Cancelled => {
            println!("Deployment cancelled");
            Ok(ExitCode::from(130))
        }
        DeploymentOutcome::Paused(pause) => {
            println!(
                "Deployment paused at step '{}' and nobody answered",
                pause.step
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// A person's answer on the terminal: what, and their note.
struct Answer {
    action: InterventionAction,
    note: String,
}

/// Asks on the terminal what to do about `pause`; `Err` (the run's error)
/// when stdin is no terminal.
fn ask(pause: &Pause) -> std::result::Result<Answer, String> {
    let choices: Vec<&str> = pause.kind.actions().iter().map(|a| a.as_str()).collect();
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "step '{}' waits for a person ({}), and tako run can only ask on a terminal:              run it again in a terminal to answer, or deploy through a Tako server and answer              with `tako intervention {} ID`",
            pause.step,
            choices.join(", "),
            choices.join("|")
        ));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nStep '{}' waits for you:\n{}",
        pause.step, pause.instructions
    );
    let stdin = std::io::stdin();
    loop {
        let _ = write!(out, "Answer {}: ", choices.join(", "));
        let _ = out.flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return Err(format!("step '{}': no answer (end of input)", pause.step));
        }
        let word = line.trim().to_ascii_lowercase();
        let Some(action) = pause
            .kind
            .actions()
            .iter()
            .copied()
            .find(|a| !word.is_empty() && a.as_str().starts_with(&word))
        else {
            let _ = writeln!(out, "Please answer {}.", choices.join(", "));
            continue;
        };
        let _ = write!(out, "Note (optional): ");
        let _ = out.flush();
        let mut note = String::new();
        let _ = stdin.lock().read_line(&mut note);
        return Ok(Answer {
            action,
            note: note.trim().to_owned(),
        });
    }
}

/// The steps to resume with after `answer`, or the run's error (abort).
fn answered(pause: Pause, answer: Answer) -> std::result::Result<Vec<RecordedStep>, String> {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "local user".to_owned());
    let said = if answer.note.is_empty() {
        String::new()
    } else {
        format!(": {}", answer.note)
    };
    let mut done = pause.done;
    let step = |outputs| RecordedStep {
        report: StepReport {
            name: pause.step.clone(),
            state: StepState::Success,
            duration: Duration::ZERO,
        },
        outputs,
    };
    match answer.action {
        InterventionAction::Abort => {
            return Err(format!("aborted at step '{}' by {who}{said}", pause.step));
        }
        InterventionAction::Retry => {}
        InterventionAction::Ignore => done.push(step(Vec::new())),
        InterventionAction::Proceed => done.push(step(
            [
                ("Manual.ResponsibleUser.Username", who.clone()),
                ("Manual.ResponsibleUser.DisplayName", who),
                ("Manual.Notes", answer.note.replace("#{", "##{")),
            ]
            .into_iter()
            .map(|(name, value)| StepOutput {
                name: name.to_owned(),
                value,
                sensitive: false,
                machine: None,
            })
            .collect(),
        )),
    }
    Ok(done)
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// The takofile's `Version` template evaluated, or the next increment (the
/// first local release is `0.0.1`), by the same rule as the server.
fn release_number(
    takofile: &Takofile,
    facts: &DeploymentFacts,
    variables: &[VariableValue],
) -> Result<String> {
    Ok(tako_core::release::release_number(
        takofile.version.as_deref(),
        None,
        facts,
        variables.to_vec(),
        &tako_exec::clock::eval_context(),
    )?)
}
