use std::process::ExitCode;

use clap::Parser;

use entra_daemon::cli::{self, opt::Command, opt::Opt};
use entra_daemon::support::telemetry::{self, LogFormat};
use entra_daemon::tools::{bench, demo};

#[tokio::main]
async fn main() -> ExitCode {
    match dispatch(Opt::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The tools here; every daemon command through [`cli::dispatch`].
async fn dispatch(opt: Opt) -> anyhow::Result<ExitCode> {
    let config_path = opt.config_path();
    match opt.command {
        Command::Emulator { listen } => {
            telemetry::init("info", LogFormat::Text);
            demo::serve_emulator(listen, opt.config.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            telemetry::init("error", LogFormat::Text);
            demo::run().await
        }
        Command::Bench {
            naive_worker: true,
            company,
            tenant,
            seconds,
            ..
        } => {
            let settings = cli::load(&config_path)?;
            bench::naive::worker(settings, company, &tenant, seconds).await?;
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
            let o = bench::BenchOptions {
                users,
                tenants,
                users_per_tenant,
                time_scale,
                naive_seconds,
                ..Default::default()
            };
            bench::run(o).await?;
            Ok(ExitCode::SUCCESS)
        }
        _ => cli::dispatch(opt).await,
    }
}
