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
    /// Show what a deployment would do, without running or creating
    /// anything: the release number, which steps run or are skipped (and
    /// why), where, and the variables each sees (sensitive ones `********`).
    ///
    /// Locally from a repository's takofile, or with --project from the
    /// server (its variables, policies, lifecycle and agents).
    ///
    /// Example: tako plan . --env Production --var Channel=beta
    /// Example: tako plan --project web --env Production --branch main
    Plan(PlanArgs),
    /// Deployment freezes (admins): a frozen environment refuses manual
    /// deployments and holds automatic ones (a push's, AutoDeploy's) until
    /// the freeze ends.
    ///
    /// Example: tako freeze create --env Production --from 2026-11-27T00:00:00Z --to 2026-11-30T00:00:00Z --reason "Black Friday"
    /// Example: tako freeze create --env Production --every sat,sun --from 00:00 --to 24:00 --reason weekend
    Freeze(FreezeArgs),
    /// Run the Tako server: webhook intake, releases, deployments.
    ///
    /// With no arguments it listens on 127.0.0.1:8080 and keeps everything in
    /// ./tako-data. Settings come from tako.toml (--config), then TAKO_*
    /// environment variables, then these flags.
    ///
    /// Example: tako serve --listen 0.0.0.0:8080 --public-url https://tako.example.com
    Serve(ServeArgs),
    /// Register and list projects on a Tako server.
    ///
    /// Example: tako project create web --repo https://github.com/acme/web
    Project(ProjectArgs),
    /// Set and list a project's variables on a Tako server.
    ///
    /// Example: echo s3cret | tako var set DbPassword --project web --env Production --sensitive
    Var(VarArgs),
    /// Create and list a project's releases on a Tako server.
    ///
    /// Example: tako release create --project web --deploy-to Staging
    Release(ReleaseArgs),
    /// Deploy a release to an environment, optionally following its log.
    ///
    /// With --follow, exits 0 only if the deployment succeeded.
    ///
    /// Example: tako deploy --project web --release 1.4.0 --env Production --follow
    Deploy(DeployArgs),
    /// Print a deployment's task log; --follow streams it until the end.
    ///
    /// With --follow, exits 0 only if the deployment succeeded.
    ///
    /// Example: tako logs 42 --follow
    Logs(LogsArgs),
    /// Cancel a deployment (a queued one at once, a running one at its next check).
    ///
    /// Example: tako cancel 42
    Cancel(CancelArgs),
    /// Approve a deployment awaiting approval (its lifecycle phase's
    /// Approval); the approval that completes the count queues it.
    ///
    /// Example: tako approve 42 --note "change ticket CHG-1234"
    Approve(DecideArgs),
    /// Reject a deployment awaiting approval: it is cancelled with the note.
    ///
    /// Example: tako reject 42 --note "not during the sale"
    Reject(DecideArgs),
    /// List the deployments awaiting an approval you may give.
    ///
    /// Example: tako approvals
    Approvals(ApprovalsArgs),
    /// Answer a paused deployment: a step that waits for a person
    /// (`Uses: manual-intervention`: proceed or abort) or a failed step with
    /// `OnFailure: ask` (retry, ignore or abort); `show` prints what it
    /// waits for.
    ///
    /// Example: tako intervention proceed 42 --note "smoke test passed"
    Intervention(InterventionArgs),
    /// Create API tokens.
    ///
    /// Example: tako token create --name ci
    Token(TokenArgs),
    /// Agents: `tako agent run` on another machine runs the steps meant for
    /// it; the other subcommands manage agents from the server's side
    /// (enrollment tokens, approval, the list).
    ///
    /// Example: tako agent enroll-token --env Production --role ps --name win-01
    /// Example: tako agent run --server https://tako.example.com --enroll takoenroll_…
    Agent(AgentArgs),
    /// Server administration (an admin token).
    ///
    /// Example: tako admin rotate-key
    /// Example: tako admin retention run --dry-run
    Admin(AdminArgs),
    /// Environment policies: which branches may deploy into an environment,
    /// whatever the takofile says.
    ///
    /// Example: tako env allow Production --project web --branch main --branch 'release/*'
    Env(EnvArgs),
    /// List deployments (filter by project, environment, state) and show one
    /// with its steps and agent jobs.
    ///
    /// Example: tako deployment list --project web --env Production --state failed
    /// Example: tako deployment show 42 --output json
    Deployment(DeploymentArgs),
    /// List and show received webhooks (deliveries) and what became of them;
    /// replay a processed one; plan what one would do now.
    ///
    /// Example: tako delivery list --project web
    /// Example: tako delivery show 3f2a…
    /// Example: tako delivery plan 8f2c0e1a-...
    Delivery(DeliveryArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or
    /// PowerShell.
    ///
    /// Example: tako completions bash > /etc/bash_completion.d/tako
    /// Example: tako completions zsh > "${fpath[1]}/_tako"
    Completions(CompletionsArgs),
    /// Write the man pages (tako.1 and one page per subcommand, such as
    /// tako-serve.1) into a directory.
    ///
    /// Example: tako man --out-dir /usr/local/share/man/man1
    Man(ManArgs),
    /// Print a generated reference page of the manual (docs/manual/).
    ///
    /// Example: tako reference cli > docs/manual/src/cli.md
    #[command(hide = true)]
    Reference(ReferenceArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DeploymentArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: DeploymentCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeploymentCommand {
    /// List deployments, newest first.
    List {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
        /// Only to this environment.
        #[arg(long = "env", value_name = "ENVIRONMENT")]
        environment: Option<String>,
        /// Only in this state (queued, running, success, failed, cancelled,
        /// interrupted, awaiting_approval, …).
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one deployment: its release, state, times, steps and agent jobs.
    Show {
        /// The deployment's id.
        deployment: i64,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DeliveryArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: DeliveryCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeliveryCommand {
    /// List received webhooks, newest first, with their outcomes.
    List {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
        /// At most this many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one delivery: its event, ref, commit, outcome and warnings.
    Show {
        /// The delivery's id (X-GitHub-Delivery, or the forge's own).
        delivery: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Process a stored delivery again, as if it had just arrived (admin).
    Replay {
        /// The delivery's id.
        delivery: String,
    },
    /// What a stored push would do now: its branch routed by the default
    /// branch's takofile, its commit planned as a release. Nothing is
    /// created and nothing runs.
    ///
    /// Example: tako delivery plan 8f2c0e1a-...
    Plan {
        /// The delivery's id.
        id: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// The directory to write the pages into (made if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ReferenceArgs {
    /// Which page.
    #[arg(value_enum)]
    pub(crate) page: ReferencePage,
}

/// The manual's pages generated from the code.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReferencePage {
    /// The CLI reference (docs/manual/src/cli.md), from these definitions.
    Cli,
}

/// Where the server is and the token to use (every client command).
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// The Tako server's URL [default: http://127.0.0.1:8080; for
    /// `tako agent run`, the one it enrolled with].
    #[arg(long, env = "TAKO_SERVER", global = true)]
    pub(crate) server: Option<String>,
    /// The API token (tako serve prints the first one on its first start).
    #[arg(long, env = "TAKO_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<String>,
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The server's JSON, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ProjectArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: ProjectCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Register a project.
    ///
    /// Example: printf %s "$SECRET" | tako project create web --repo https://github.com/acme/web --webhook-secret-stdin
    Create {
        /// The project's name (as in the takofile's Project).
        name: String,
        /// The repository URL.
        #[arg(long = "repo", value_name = "URL")]
        repository: String,
        /// Read the project's own webhook secret from standard input (never
        /// from the command line, where other users could see it).
        #[arg(long)]
        webhook_secret_stdin: bool,
        /// Read an HTTPS token for a private repository from this file (`-`
        /// for standard input); never given on the command line.
        #[arg(long, value_name = "FILE")]
        repo_token_file: Option<std::path::PathBuf>,
    },
    /// List projects.
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Replace (rotate) a project's own webhook secret, read from standard
    /// input; with --clear, remove it so the server's applies.
    ///
    /// Example: printf %s "$NEW_SECRET" | tako project set-webhook-secret web
    SetWebhookSecret {
        /// The project.
        name: String,
        /// Remove the project's secret instead.
        #[arg(long)]
        clear: bool,
    },
    /// Report the project's deployments to its forge as commit statuses
    /// (context tako/<Environment>), with a token read from a file (`-` for
    /// standard input); with --clear, stop and delete the token.
    ///
    /// Example: tako project set-forge-status web --token-file - < github-status-token
    SetForgeStatus {
        /// The project.
        name: String,
        /// Read the token from this file (`-` for standard input); never
        /// given on the command line.
        #[arg(long, value_name = "FILE", required_unless_present = "clear")]
        token_file: Option<std::path::PathBuf>,
        /// github, gitea (Forgejo too) or gitlab, when the repository URL's
        /// host is not github.com, gitlab.com or codeberg.org.
        #[arg(long, value_name = "FORGE")]
        forge: Option<String>,
        /// The forge's API base URL (GitHub Enterprise: https://HOST/api/v3).
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// On GitHub, also report a Deployment per deployment (the
        /// repository's Environments panel).
        #[arg(long)]
        github_deployments: bool,
        /// Stop reporting and delete the token instead.
        #[arg(long, conflicts_with_all = ["token_file", "forge", "api_url", "github_deployments"])]
        clear: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct VarArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: VarCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VarCommand {
    /// Set a variable; the value is read from standard input when omitted
    /// (do that for secrets).
    ///
    /// Example: tako var set Greeting hello --project web --env Staging
    Set {
        /// The variable's name.
        name: String,
        /// The value; read from standard input when omitted.
        value: Option<String>,
        /// The project.
        #[arg(long)]
        project: String,
        /// Scope to this environment (repeatable; default: all).
        #[arg(long = "env", value_name = "ENVIRONMENT")]
        environments: Vec<String>,
        /// Scope to steps targeting this role (`Roles`; repeatable;
        /// default: every step).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The value is secret: never shown again, masked in logs.
        #[arg(long)]
        sensitive: bool,
    },
    /// List a project's variables (sensitive values read ********).
    List {
        /// The project.
        #[arg(long)]
        project: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Create a release from the head of a branch (default: the repository's
    /// default branch) or from a commit, as a push would: that commit's
    /// takofile process and the project's variables are frozen into it.
    ///
    /// The number defaults to the next one by the takofile's rules (its
    /// Version template, else the previous number incremented). With
    /// --deploy-to, the new release is deployed to each environment its
    /// policy allows (if one refuses, nothing is created).
    ///
    /// Example: tako release create --project web --branch main --deploy-to Staging --follow
    Create {
        /// The project.
        #[arg(long)]
        project: String,
        /// The release number [default: the next one].
        #[arg(long)]
        version: Option<String>,
        /// Build from this branch's head [default: the default branch].
        #[arg(long)]
        branch: Option<String>,
        /// Build from this commit (at least 7 hex digits); with --branch, it
        /// must be on that branch.
        #[arg(long, value_name = "SHA")]
        commit: Option<String>,
        /// Release notes [default: who created it, from which branch or commit].
        #[arg(long, value_name = "TEXT")]
        notes: Option<String>,
        /// Deploy the new release to this environment (repeatable).
        #[arg(long = "deploy-to", value_name = "ENVIRONMENT")]
        deploy_to: Vec<String>,
        /// Stream the task logs of the deployments until they end; exits 0
        /// only if every one succeeded.
        #[arg(long, requires = "deploy_to")]
        follow: bool,
        /// table or json (the release and its deployments).
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List a project's releases, newest first.
    List {
        /// The project.
        #[arg(long)]
        project: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Deploy a release to the next phase of its project's lifecycle (the
    /// one after the furthest phase it succeeded in). Refused when that
    /// phase requires a success the release lacks; it may await approval.
    ///
    /// Example: tako release promote --project web --release 1.4.0
    Promote {
        /// The project.
        #[arg(long)]
        project: String,
        /// The release number.
        #[arg(long)]
        release: String,
        /// Stream the task log until the deployment ends (after any
        /// approval); exits 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The project.
    #[arg(long, required = true)]
    pub(crate) project: Option<String>,
    /// The release number.
    #[arg(long, required = true)]
    pub(crate) release: Option<String>,
    /// The environment to deploy to.
    #[arg(long = "env", value_name = "ENVIRONMENT", required = true)]
    pub(crate) environment: Option<String>,
    /// Stream the task log until the deployment ends.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Deploy although the environment is frozen (admins), saying why:
    /// audited.
    #[arg(long, value_name = "REASON")]
    pub(crate) override_freeze: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Option<DeployCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// Retry a failed or cancelled deployment: a new deployment of the same
    /// release to the same environment (through the lifecycle like any).
    ///
    /// Example: tako deploy retry 41 --from-failed-step --follow
    Retry(RetryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment to retry.
    pub(crate) deployment: i64,
    /// Start at its failed step: the steps that succeeded are carried over
    /// (shown as skipped, their outputs kept), in its working directory
    /// when the server still keeps it.
    #[arg(long)]
    pub(crate) from_failed_step: bool,
    /// Stream the task log until the new deployment ends.
    #[arg(long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment's id.
    pub(crate) deployment: i64,
    /// Stream the log until the deployment ends.
    #[arg(long, short)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DecideArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment's id.
    pub(crate) deployment: i64,
    /// A note kept with the decision (a rejection's becomes the
    /// deployment's error); steps read an approval's as Tako.Approval.Note.
    #[arg(long, value_name = "TEXT")]
    pub(crate) note: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InterventionArgs {
    #[command(subcommand)]
    pub(crate) command: InterventionCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum InterventionCommand {
    /// Go on with the step after the one that waits (manual intervention).
    Proceed(AnswerArgs),
    /// Fail the deployment with the note.
    Abort(AnswerArgs),
    /// Run the failed step again (OnFailure: ask).
    Retry(AnswerArgs),
    /// Go on as if the failed step had succeeded (OnFailure: ask).
    Ignore(AnswerArgs),
    /// Print what a paused deployment waits for and the answers it takes.
    Show(ShowArgs),
    /// List the paused deployments: project, environment, release, the
    /// step that waits, who may answer, since when, and whether you may.
    List(InterventionListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InterventionListArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Only the pauses your token's role may answer.
    #[arg(long)]
    pub(crate) mine: bool,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct AnswerArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment's id.
    pub(crate) deployment: i64,
    /// A note kept with the answer: after proceed, later steps read it as
    /// Octopus.Action[Step].Output.Manual.Notes; after abort it is part of
    /// the deployment's error.
    #[arg(long, value_name = "TEXT")]
    pub(crate) note: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment's id.
    pub(crate) deployment: i64,
}

#[derive(Debug, Args)]
pub(crate) struct ApprovalsArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The deployment's id.
    pub(crate) deployment: i64,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token and print it (shown only this once).
    Create {
        /// A name for people (`ci`, `alice laptop`).
        #[arg(long)]
        name: String,
        /// admin (default: everything), deployer (read, create releases,
        /// deploy, cancel; never variables) or viewer (read only).
        #[arg(long)]
        role: Option<String>,
        /// The token stops working after this many days [default: never].
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List the API tokens (never the tokens themselves).
    List {
        /// table (default) or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Revoke a token by id (see `tako token list`): it gets 401 from then on.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Run this machine as an agent: connect out to the server (--server),
    /// take the jobs meant for this agent, run them and send their log back.
    ///
    /// The first run exchanges --enroll TOKEN for the agent's own
    /// credential, kept in the data directory; later runs need only
    /// --server (or nothing: the enrolled server is remembered). Prints a
    /// line per job; Ctrl-C or SIGTERM stops taking work and cancels the
    /// running step cleanly.
    Run(AgentRunArgs),
    /// Create a single-use enrollment token and print it (shown only this
    /// once): give it to `tako agent run --enroll` on the agent's machine.
    EnrollToken {
        /// An environment the agent will serve (repeat for several).
        #[arg(long = "env", value_name = "ENVIRONMENT", required = true)]
        environments: Vec<String>,
        /// A role the agent will have (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// The agent's name [default: the agent proposes one].
        #[arg(long)]
        name: Option<String>,
        /// How long the token works (`30m`, `1h`, `2d`; at most 30 days).
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        expires: String,
        /// The agent gets work at once, without an approval.
        #[arg(long)]
        auto_approve: bool,
    },
    /// List the agents: state (online, offline, pending, disabled),
    /// environments, roles, version, last seen.
    List {
        /// table (default) or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Approve a pending agent: it gets work from now on.
    Approve {
        /// The agent's name.
        name: String,
    },
    /// Disable an agent: it is refused at its next call.
    Disable {
        /// The agent's name.
        name: String,
    },
    /// Enable a disabled agent.
    Enable {
        /// The agent's name.
        name: String,
    },
    /// Remove an agent: its credential stops working.
    Remove {
        /// The agent's name.
        name: String,
    },
    /// Give an agent a new credential and print it (shown only this once);
    /// the old one stops working now.
    Rotate {
        /// The agent's name.
        name: String,
    },
}

/// `tako agent run`.
#[derive(Debug, Args)]
pub(crate) struct AgentRunArgs {
    /// A single-use enrollment token (`tako agent enroll-token` prints one);
    /// needed only the first time.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TAKO_ENROLL_TOKEN",
        hide_env_values = true
    )]
    pub(crate) enroll: Option<String>,
    /// The name to propose at enrollment [default: this machine's name]; a
    /// name fixed by the token wins.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Where the agent keeps its credential, spool and cached files
    /// [default: $XDG_STATE_HOME/tako-agent or ~/.local/state/tako-agent;
    /// on Windows %ProgramData%\tako-agent].
    #[arg(long, value_name = "DIR", env = "TAKO_AGENT_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint
    /// (hex, colons allowed), instead of certificate authorities.
    #[arg(long, value_name = "SHA256", conflicts_with = "ca_file")]
    pub(crate) server_fingerprint: Option<String>,
    /// Trust the certificate authorities in this PEM file instead of the
    /// system's.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Allow plain http:// to a server on another machine (the credential
    /// and the jobs' variables then cross the network in the clear).
    #[arg(long)]
    pub(crate) insecure_http: bool,
    /// Take one job, run it, report it and exit.
    #[arg(long)]
    pub(crate) once: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Re-encrypt every secret under a new master key, while the server
    /// keeps running: the key added under the data directory's keys/ when
    /// there is one (PostgreSQL: add it to every node first), else a fresh
    /// key (SQLite), and the old key is deleted.
    RotateKey,
    /// Copy everything a SQLite node keeps into an empty PostgreSQL
    /// database, to move to several nodes (stop `tako serve` first; the
    /// nodes need the same secret.key). Works on the databases directly,
    /// without a server.
    ///
    /// Example: tako admin migrate --from sqlite://tako-data/tako.db --to postgres://tako@db/tako
    Migrate {
        /// The SQLite database: sqlite://PATH (the tako.db in the data directory).
        #[arg(long, value_name = "sqlite://PATH")]
        from: String,
        /// The empty PostgreSQL database: postgres://user@host[:port]/database[?sslmode=…].
        #[arg(long, value_name = "postgres://…")]
        to: String,
        /// A file whose first line is the PostgreSQL password (instead of one in the URL).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// CA certificates (PEM) to trust for PostgreSQL's TLS certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Rows copied per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
    },
    /// Print the audit log, newest first.
    Audit {
        /// At most this many entries (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Retention: old releases, task logs, deliveries, audit entries and
    /// working directories, as the server's settings and the projects'
    /// `Retention:` say.
    ///
    /// Example: tako admin retention run --dry-run
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
    /// Run one pass now and print what it removed (never what a dashboard
    /// shows or something still waits on).
    Run {
        /// Print what a pass would remove, removing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct EnvArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: EnvCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// Allow only these branches (globs) to deploy into an environment;
    /// without --branch, no branch may.
    Allow {
        /// The environment.
        environment: String,
        /// The project.
        #[arg(long)]
        project: String,
        /// A branch glob (`main`, `release/*`); repeatable.
        #[arg(long = "branch", value_name = "GLOB")]
        branches: Vec<String>,
    },
    /// Remove an environment's policy (any mapped branch may deploy again).
    Clear {
        /// The environment.
        environment: String,
        /// The project.
        #[arg(long)]
        project: String,
    },
    /// List a project's environment policies.
    List {
        /// The project.
        #[arg(long)]
        project: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
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
    /// sqlite://PATH, or postgres://USER@HOST[:PORT]/DATABASE for several
    /// nodes on one PostgreSQL [default: sqlite://<data-dir>/tako.db].
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// A file holding the PostgreSQL password (instead of putting it in the
    /// URL).
    #[arg(long, value_name = "FILE")]
    pub(crate) database_password_file: Option<PathBuf>,
    /// CA certificates (PEM) to verify PostgreSQL's TLS certificate with
    /// (ask for TLS with ?sslmode=require in the URL).
    #[arg(long, value_name = "FILE")]
    pub(crate) database_ca_file: Option<PathBuf>,
    /// The most PostgreSQL connections this node opens [default: 16].
    #[arg(long, value_name = "N")]
    pub(crate) database_pool_size: Option<String>,
    /// How long to wait for a PostgreSQL connection before the database
    /// counts as unavailable [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) database_connect_timeout: Option<String>,
    /// The server's public base URL, for links in notifications.
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// How many deployments may run at once [default: 4].
    #[arg(long, value_name = "N")]
    pub(crate) max_concurrent_deployments: Option<String>,
    /// How much lower the deployments' CPU priority is than the intake's,
    /// as a nice value from 0 (the same) to 19 [default: 10].
    #[arg(long, value_name = "N")]
    pub(crate) deployment_nice: Option<String>,
    /// How long finished working directories are kept [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub(crate) workdir_retention: Option<String>,
    /// How often the remotes' branch heads are checked for pushes Tako
    /// missed (also at start-up); off or 0: never [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub(crate) missed_push_sweep: Option<String>,
    /// How long a running deployment stays this node's without renewal;
    /// past it, any node marks it interrupted [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) deployment_lease: Option<String>,
    /// How often this node looks for deployments whose lease ran out
    /// [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) lease_sweep: Option<String>,
    /// Register a project from the takofile's Project on its first verified push.
    #[arg(long)]
    pub(crate) auto_register_projects: bool,
    /// Accept unsigned webhooks when no secret is configured (local trials only).
    #[arg(long)]
    pub(crate) insecure_unsigned_webhooks: bool,
    /// Serve HTTPS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Print the SHA-256 fingerprint of the TLS certificate (the value for
    /// `tako agent run --server-fingerprint`) and exit.
    #[arg(long)]
    pub(crate) print_fingerprint: bool,
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
    #[command(flatten)]
    pub(crate) local: LocalArgs,
    /// Show verbose lines (write_verbose, output variables).
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Keep the working directory after the run and print its path.
    #[arg(long)]
    pub(crate) keep_workdir: bool,
}

/// A local repository's process and what it is deployed with (`tako run`,
/// `tako plan`).
#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// The repository (its takofile is looked up at its root).
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
}

/// `tako plan`: what a deployment would do, locally or on a server.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) local: LocalArgs,
    /// Ask the server instead: plan a release of this project from --branch
    /// (default: the default branch) or --commit; PATH and the variable
    /// flags are then not used (the server's variables count).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// With --project: plan from this commit (at least 7 hex digits).
    #[arg(long, value_name = "SHA", requires = "project")]
    pub(crate) commit: Option<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Args)]
pub(crate) struct FreezeArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(subcommand)]
    pub(crate) command: FreezeCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FreezeCommand {
    /// Freeze an environment: from one instant to another (RFC 3339), or
    /// with --every every week on those days from one time of day to
    /// another (HH:MM, UTC; 24:00 ends the day).
    Create {
        /// The environment.
        #[arg(long = "env", value_name = "ENVIRONMENT")]
        environment: String,
        /// Only this project [default: every project].
        #[arg(long)]
        project: Option<String>,
        /// The start: 2026-11-27T00:00:00Z, or with --every 00:00.
        #[arg(long)]
        from: String,
        /// The end: 2026-11-30T00:00:00Z, or with --every 24:00.
        #[arg(long)]
        to: String,
        /// Days of the week (sat,sun): a weekly freeze.
        #[arg(long, value_name = "DAYS")]
        every: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List the freezes and whether each holds now.
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a freeze.
    Delete {
        /// The freeze's id.
        id: i64,
    },
    /// Release a deployment held by a freeze now (an override, audited).
    Release {
        /// The held deployment.
        deployment: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// `tako agent run`'s arguments on their own (see [`agent_run_alone`]).
#[derive(Debug, Parser)]
#[command(name = "tako agent run")]
struct AgentRunAlone {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    run: AgentRunArgs,
}

/// `tako agent run …` parsed with the agent's own arguments only, for the
/// agent's long-running process: building the whole command tree first
/// touches about a megabyte of the binary that then stays resident in an
/// idle agent (docs/benchmarks.md, "agent idle RSS"). `None` for any other
/// command line, and for help, version and anything this parser refuses:
/// the whole tree then answers, with the words it always uses.
pub(crate) fn agent_run_alone(args: &[std::ffi::OsString]) -> Option<(ClientArgs, AgentRunArgs)> {
    let [_, agent, run, rest @ ..] = args else {
        return None;
    };
    if agent != "agent" || run != "run" {
        return None;
    }
    let asks_for_help = rest.iter().any(|arg| {
        ["-h", "--help", "-V", "--version", "help"]
            .iter()
            .any(|flag| arg == flag)
    });
    if asks_for_help {
        return None;
    }
    let parsed = AgentRunAlone::try_parse_from(
        std::iter::once(std::ffi::OsString::from("tako agent run")).chain(rest.iter().cloned()),
    )
    .ok()?;
    Some((parsed.client, parsed.run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(std::ffi::OsString::from).collect()
    }

    /// What the whole tree makes of `line`, if it is `tako agent run`.
    fn whole(line: &str) -> Option<(ClientArgs, AgentRunArgs)> {
        let cli = Cli::try_parse_from(args(line)).ok()?;
        match cli.command {
            Command::Agent(AgentArgs {
                client,
                command: AgentCommand::Run(run),
            }) => Some((client, run)),
            _ => None,
        }
    }

    #[test]
    fn agent_run_alone_parses_as_the_whole_tree_does() {
        for line in [
            "tako agent run",
            "tako agent run --server https://tako.example:8443 --enroll t0ken --name win-01",
            "tako agent run --data-dir /var/lib/tako-agent --once --insecure-http",
            "tako agent run --server-fingerprint AB:CD --token tok",
            "tako agent run --ca-file /etc/ca.pem --server=http://127.0.0.1:8080",
        ] {
            let alone = agent_run_alone(&args(line));
            assert!(alone.is_some(), "{line}");
            assert_eq!(format!("{alone:?}"), format!("{:?}", whole(line)), "{line}");
        }
    }

    #[test]
    fn agent_run_alone_leaves_everything_else_to_the_whole_tree() {
        for line in [
            "tako agent run --help",
            "tako agent run -h",
            "tako agent run --version",
            "tako agent run --bogus",
            "tako agent run --server-fingerprint AB --ca-file x.pem",
            "tako agent run extra",
            "tako agent list",
            "tako agent --server http://x run",
            "tako serve",
            "tako",
        ] {
            assert!(agent_run_alone(&args(line)).is_none(), "{line}");
        }
    }
}
