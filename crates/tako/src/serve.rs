//! `tako serve`: gathers the settings (file < environment < flags), starts
//! the server and reports what a person starting it needs to know.

use std::process::ExitCode;

use anyhow::{Context, Result};
use tako_server::config::{ConfigLayer, Origin, merge};

use crate::cli::ServeArgs;

/// How long requests in flight get to finish after a stop signal.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the stop waits for the runtimes' tasks to let go of the store
/// before it closes it (SQLite's last checkpoint).
const STORE_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAKO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or the journal gets plain
        // `key=value` text that tools can read.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let mut layers = Vec::new();
    let config_path = args.config.clone().or_else(|| {
        let default = std::path::PathBuf::from("tako.toml");
        default.is_file().then_some(default)
    });
    if let Some(path) = &config_path {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        layers.push((
            Origin::File,
            ConfigLayer::from_toml(&path.display().to_string(), &text)?,
        ));
    }
    layers.push((
        Origin::Environment,
        ConfigLayer::from_env(|name| std::env::var(name).ok()),
    ));
    layers.push((
        Origin::Flags,
        ConfigLayer {
            listen: args.listen,
            data_dir: args.data_dir.map(|p| p.display().to_string()),
            database_url: args.database_url,
            database_password_file: args.database_password_file.map(|p| p.display().to_string()),
            database_ca_file: args.database_ca_file.map(|p| p.display().to_string()),
            database_pool_size: args.database_pool_size,
            database_connect_timeout: args.database_connect_timeout,
            public_url: args.public_url,
            webhook_secret: None,
            max_concurrent_deployments: args.max_concurrent_deployments,
            deployment_nice: args.deployment_nice,
            workdir_retention: args.workdir_retention,
            auto_register_projects: args.auto_register_projects.then(|| "true".to_owned()),
            insecure_unsigned_webhooks: args.insecure_unsigned_webhooks.then(|| "true".to_owned()),
            master_key_file: None,
            agent_connect_timeout: None,
            missed_push_sweep: args.missed_push_sweep,
            github_api_url: None,
            tls_cert: args.tls_cert.map(|p| p.display().to_string()),
            tls_key: args.tls_key.map(|p| p.display().to_string()),
            deployment_lease: args.deployment_lease,
            lease_sweep: args.lease_sweep,
            retention_releases: None,
            retention_task_logs: None,
            retention_deliveries: None,
            retention_audit_log: None,
            retention_interval: None,
            octopus: None,
        },
    ));
    let mut config = merge(&layers)?;
    tako_server::config::octopus::resolve_api_keys(
        &mut config.octopus,
        |path| std::fs::read_to_string(path),
        |name| std::env::var(name).ok(),
    )?;

    if args.print_fingerprint {
        let Some(files) = &config.tls else {
            anyhow::bail!(
                "no certificate to fingerprint: set tls_cert and tls_key (in tako.toml, \
                 TAKO_TLS_CERT/TAKO_TLS_KEY or --tls-cert/--tls-key)"
            );
        };
        let tls = tako_server::tls::ServerTls::load(files)?;
        println!("{}", tls.fingerprint());
        return Ok(ExitCode::SUCCESS);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Deployments and the rest of the work behind the intake run on their
    // own threads, at a lower CPU priority (crate::priority).
    let nice = config.deployment_nice;
    let background = tokio::runtime::Builder::new_multi_thread()
        .thread_name("tako-deploy")
        .on_thread_start(move || crate::priority::lower_this_thread(nice))
        .enable_all()
        .build()
        .context("cannot start the deployments' async runtime")?;
    let background_handle = background.handle().clone();
    let (work_root, store) = runtime.block_on(async move {
        let insecure = config.insecure_unsigned_webhooks && config.webhook_secret.is_none();
        let data_dir = config.data_dir.clone();
        let started = tako_server::serve::start(config, background_handle).await?;
        if let Some(token) = &started.first_admin_token {
            println!("First start: created the admin API token. It is shown only this once; keep it safe:");
            println!();
            println!("    {token}");
            println!();
        }
        if started.resumed > 0 {
            println!("{} deployment(s) were waiting on agents when the server stopped; they resume", started.resumed);
        }
        if started.interrupted > 0 {
            println!("{} deployment(s) were running when the server stopped; they are now Interrupted", started.interrupted);
        }
        if insecure {
            eprintln!("WARNING: accepting UNSIGNED webhooks (--insecure-unsigned-webhooks): anyone who can reach this port can trigger deployments. For local trials only.");
        }
        if let Some(fingerprint) = &started.tls_fingerprint {
            println!("TLS certificate SHA-256 fingerprint (for tako agent run --server-fingerprint): {fingerprint}");
        }
        println!("Tako listening on {}://{} (data in {})", started.scheme(), started.address, data_dir.display());
        let work_root = started.work_root();
        let store = started.store_closer();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = started.serve_until(async move {
            let _ = stopped.await;
        });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => {
                result.context("the server stopped")?;
            }
            () = crate::signals::stop_requested() => {
                eprintln!("Stopping: no new connections; requests in flight get {} s to finish. Deployments still running are marked Interrupted at the next start.", STOP_GRACE.as_secs());
                let _ = stop.send(());
                match tokio::time::timeout(STOP_GRACE, &mut server).await {
                    Ok(result) => result.context("the server stopped")?,
                    Err(_) => eprintln!("Stopped with connections still open (log followers, agents' long polls)"),
                }
            }
        }
        Ok::<_, anyhow::Error>((work_root, store))
    })?;
    // The runtime goes first, so that no deployment task sees its script
    // killed and records a failure; then the scripts, so that none outlives
    // the server (its deployments are Interrupted at the next start).
    background.shutdown_timeout(std::time::Duration::ZERO);
    runtime.shutdown_timeout(std::time::Duration::ZERO);
    let killed = tako_server::scheduler::kill_running_scripts(&work_root);
    if killed > 0 {
        eprintln!("Stopped {killed} running script(s)");
    }
    // Last, the store: its final checkpoint, and its file closed.
    if !store.close(STORE_CLOSE_WAIT) {
        eprintln!(
            "Stopped without closing the database: something still used it after {} s (nothing is lost; the next start replays its journal)",
            STORE_CLOSE_WAIT.as_secs()
        );
    }
    Ok(ExitCode::SUCCESS)
}
