//! `tako run`: the takofile's process, run locally through the same engine a
//! server deployment uses.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{DeploymentOutcome, DeploymentPlan, RunSettings, run_deployment};
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
        run_deployment(&plan, &settings, &sink, &cancel).await
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
    }
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
