//! The command line: every command, flag and its environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Tako: push to a branch, and the right environment gets tested, published,
/// tagged and announced.
#[derive(Debug, Parser)]
#[command(name = "tako", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a takofile and print every problem as file:line:col: message.
    ///
    /// Exits 0 when the takofile is valid (warnings allowed), 1 when not.
    Validate(ValidateArgs),
    /// Run a repository's takofile process locally, as a deployment would.
    ///
    /// The repository is copied into a fresh working directory; each step's
    /// output is streamed live; a summary table ends the run. Exits 0 only if
    /// the deployment succeeded.
    Run(RunArgs),
    /// Run the Tako server: webhook intake, releases, deployments.
    ///
    /// With no arguments it listens on 127.0.0.1:8080 and keeps everything in
    /// ./tako-data. Settings come from tako.toml (--config), then TAKO_*
    /// environment variables, then these flags.
    ///
    /// Example: tako serve --listen 0.0.0.0:8080 --public-url https://tako.example.com
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A tako.toml configuration file (default: ./tako.toml when present).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<String>,
    /// Directory for the database, mirrors, working directories and the
    /// master key [default: ./tako-data].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// sqlite://PATH [default: sqlite://<data-dir>/tako.db].
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// The server's public base URL, for links in notifications.
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// How many deployments may run at once [default: 4].
    #[arg(long, value_name = "N")]
    pub(crate) max_concurrent_deployments: Option<String>,
    /// How long finished working directories are kept [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub(crate) workdir_retention: Option<String>,
    /// Register a project from the takofile's Project on its first verified push.
    #[arg(long)]
    pub(crate) auto_register_projects: bool,
    /// Accept unsigned webhooks when no secret is configured (local trials only).
    #[arg(long)]
    pub(crate) insecure_unsigned_webhooks: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// A takofile, or a directory holding one (takofile, takofile.yml,
    /// takofile.yaml, first found).
    #[arg(default_value = ".")]
    pub(crate) path: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The repository to run (its takofile is looked up at its root).
    #[arg(default_value = ".")]
    pub(crate) path: PathBuf,
    /// The environment to deploy to; default: the one the branch maps to.
    #[arg(long = "env", env = "TAKO_ENV")]
    pub(crate) environment: Option<String>,
    /// The branch to act as; default: the repository's current branch.
    #[arg(long, env = "TAKO_BRANCH")]
    pub(crate) branch: Option<String>,
    /// A variable, NAME=VALUE (repeatable; beats takofile variables).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
    /// A sensitive variable, NAME=VALUE: masked wherever it would be printed.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub(crate) secrets: Vec<String>,
    /// A file of variables: NAME=VALUE lines (# comments, blank lines), or a
    /// JSON object of strings.
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_files: Vec<PathBuf>,
    /// The build counter (`Tako.Build`).
    #[arg(long, default_value_t = 1)]
    pub(crate) build: u64,
    /// Show verbose lines (write_verbose, output variables).
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Keep the working directory after the run and print its path.
    #[arg(long)]
    pub(crate) keep_workdir: bool,
}
