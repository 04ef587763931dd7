use std::process::ExitCode;

use clap::Parser;

use entra_daemon::cli::{self, opt::Command, opt::Opt, opt::SoakCampaign};
use entra_daemon::support::telemetry::{self, LogFormat};
use entra_daemon::tools::{bench, demo, soak};

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
            workers,
            ..
        } => {
            let settings = cli::load(&config_path)?;
            bench::naive::worker(settings, company, &tenant, seconds, workers).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            users,
            tenants,
            users_per_tenant,
            time_scale,
            naive_seconds,
            adaptive_users,
            only,
            ..
        } => {
            telemetry::init("error", LogFormat::Text);
            let o = bench::BenchOptions {
                users,
                tenants,
                users_per_tenant,
                time_scale,
                naive_seconds,
                adaptive_users,
                only,
                ..Default::default()
            };
            bench::run(o).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Soak {
            campaign,
            changes,
            writer_rate,
            writer_duration,
            seed,
        } => {
            telemetry::init("error", LogFormat::Text);
            let o = soak::SoakOptions {
                campaign: match campaign {
                    SoakCampaign::All => soak::Campaign::All,
                    SoakCampaign::Faults => soak::Campaign::Faults,
                    SoakCampaign::BadRows => soak::Campaign::BadRows,
                    SoakCampaign::Writers => soak::Campaign::Writers,
                },
                faults: soak::faults::FaultOptions {
                    changes,
                    seed,
                    ..Default::default()
                },
                bad_rows: soak::bad_rows::BadRowOptions {
                    seed,
                    ..Default::default()
                },
                writers: soak::writers::WriterOptions {
                    rate: writer_rate,
                    duration: writer_duration,
                    ..Default::default()
                },
            };
            let clean = soak::run(o).await?;
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        _ => cli::dispatch(opt).await,
    }
}
