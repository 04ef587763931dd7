use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use entra_daemon::cli::commands::{self, AuditArgs};
use entra_daemon::cli::opt::{Command, Opt};
use entra_daemon::configuration::Settings;
use entra_daemon::support::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let opt = Opt::parse();
    match dispatch(opt).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(opt: Opt) -> anyhow::Result<ExitCode> {
    let config_path = opt.config_path();
    let load = || {
        Settings::load(&config_path).with_context(|| {
            format!(
                "loading {} (set --config or ENTRA_DAEMON_CONFIG; entra-daemon.toml in the \
                 source tree is an annotated example)",
                config_path.display()
            )
        })
    };
    match opt.command {
        Command::Emulator { listen } => {
            telemetry::init("info", LogFormat::Text);
            entra_daemon::tools::demo::serve_emulator(listen, opt.config.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            telemetry::init("error", LogFormat::Text);
            entra_daemon::tools::demo::run().await
        }
        Command::Bench {
            naive_worker: true,
            company,
            tenant,
            seconds,
            ..
        } => {
            let settings = load()?;
            entra_daemon::tools::bench::naive::worker(settings, company, &tenant, seconds).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            users,
            tenants,
            users_per_tenant,
            time_scale,
            naive_seconds,
            ..
        } => {
            telemetry::init("error", LogFormat::Text);
            let o = entra_daemon::tools::bench::BenchOptions {
                users,
                tenants,
                users_per_tenant,
                time_scale,
                naive_seconds,
                ..Default::default()
            };
            entra_daemon::tools::bench::run(o).await?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let settings = load()?;
            telemetry::init(&settings.log.level, settings.log.format);
            warn_if_root();
            match command {
                Command::Migrate => commands::migrate(&settings).map(|_| ExitCode::SUCCESS),
                Command::Run { once } => commands::run(settings, config_path, once).await,
                Command::Connect {
                    company,
                    tenant,
                    no_verify,
                } => commands::connect(&settings, company, &tenant, !no_verify)
                    .await
                    .map(|_| ExitCode::SUCCESS),
                Command::Disconnect { company } => commands::disconnect(&settings, company),
                Command::Audit {
                    company,
                    email,
                    failed,
                    since,
                    limit,
                    json,
                    runs,
                } => commands::audit(
                    &settings,
                    AuditArgs {
                        company,
                        email,
                        failed,
                        since,
                        limit,
                        json,
                        runs,
                    },
                )
                .map(|_| ExitCode::SUCCESS),
                Command::Status { json } => entra_daemon::cli::status::command(&settings, json),
                Command::Resync {
                    company,
                    dry_run,
                    json,
                    allow_mass_deprovision,
                } => {
                    entra_daemon::cli::resync::command(
                        settings,
                        entra_daemon::cli::resync::ResyncArgs {
                            company,
                            dry_run,
                            json,
                            allow_mass_deprovision,
                        },
                    )
                    .await
                }
                Command::CheckConfig => {
                    println!("{}: valid", config_path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Command::Emulator { .. } | Command::Demo | Command::Bench { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// The daemon needs no privileges; running as root works but widens the
/// damage of any bug. Warn, do not refuse (containers and CI run as root).
fn warn_if_root() {
    #[cfg(unix)]
    {
        // SAFETY-free check: the effective uid of this process via /proc.
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let euid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2));
            if euid == Some("0") {
                tracing::warn!("running as root: a dedicated user (see deploy/) is safer");
            }
        }
    }
}
