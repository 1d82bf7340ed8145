#![forbid(unsafe_code)]
//! The `fanout_exporter` binary: flags, logging, configuration, then the server until a signal.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use fanout_exporter::cli::{self, Cli, Command};
use fanout_exporter::config::{self, Config, FlagOverrides, Input};
use fanout_exporter::peers;
use fanout_exporter::server::{self, Generation, Loader, State};
use fanout_exporter::telemetry;

fn main() -> ExitCode {
    // Before clap: its "did you mean" for another exporter's flag would point at the wrong one.
    if let Some(hint) = fanout_exporter::peers::flag_hint(std::env::args_os().skip(1)) {
        eprintln!("fanout_exporter: {hint}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { timeout }) = cli.command {
        return healthcheck(&cli.listen_address, timeout, cli.web_config_file.as_deref());
    }
    if let Err(error) = telemetry::init(cli.log_level, cli.log_format) {
        eprintln!("{error:#}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "fanout_exporter failed");
            eprintln!("fanout_exporter: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = FlagOverrides {
        timeout_offset: cli.timeout_offset,
    };
    let address = cli::listen_address(&cli.listen_address).map_err(anyhow::Error::msg)?;
    // The web configuration first: it decides how the listener serves, and a bad one must stop us
    // before anything listens.
    let web = match &cli.web_config_file {
        Some(path) => match fanout_exporter::web::load(path) {
            Ok(web) => Some(web),
            Err(errors) => {
                eprintln!("invalid web configuration:\n{errors}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };

    // A file, or the peers' variables, decide the configuration; without either, the embedded
    // default probes our own /-/healthy.
    let peer_env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| peers::VARIABLES.contains(&k.as_str()))
        .collect();
    let fixed = match &cli.config_file {
        Some(path) => {
            if cli.my_cnf.is_some() {
                eprintln!(
                    "invalid configuration: --config.my-cnf and --config.file both configure targets: give the MySQL target in the file"
                );
                return Ok(ExitCode::from(2));
            }
            let unused = peers::set_variables(&peer_env);
            if !unused.is_empty() {
                tracing::warn!(
                    variables = unused.join(",").as_str(),
                    "the peers' connection variables are set but --config.file decides: they are not used"
                );
            }
            Some(Input::File(path.clone()))
        }
        None => match peers::from_environment(&peer_env, cli.my_cnf.as_deref()) {
            Ok(Some(generated)) => {
                tracing::info!(
                    source = generated.source.as_str(),
                    equivalent = generated.equivalent.as_str(),
                    "configuration built from another exporter's settings; a --config.file with the equivalent would say the same"
                );
                Some(Input::Generated {
                    source: generated.source,
                    text: generated.text,
                })
            }
            Ok(None) => None,
            Err(why) => {
                eprintln!("invalid configuration: {why}");
                return Ok(ExitCode::from(2));
            }
        },
    };

    // Validate before anything starts. The embedded default needs the port actually bound (which
    // differs from the flag for port 0).
    let (config, listener) = match &fixed {
        Some(input) => {
            let config = match config::load(input, &flags) {
                Ok(c) => c,
                Err(errors) => return Ok(report_config_errors(&errors)),
            };
            if cli.config_check {
                print_summary(&config, web.as_ref());
                return Ok(ExitCode::SUCCESS);
            }
            (config, bind(address)?)
        }
        None => {
            let listener = if cli.config_check {
                None
            } else {
                Some(bind(address)?)
            };
            let port = match &listener {
                Some(l) => l.local_addr()?.port(),
                None => address.port(),
            };
            let config = match config::load(
                &Input::Text(fanout_exporter::cli::embedded_default(port)),
                &flags,
            ) {
                Ok(c) => c,
                Err(errors) => return Ok(report_config_errors(&errors)),
            };
            match listener {
                Some(l) => (config, l),
                None => {
                    print_summary(&config, web.as_ref());
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };

    let local = listener.local_addr()?;
    tracing::info!(
        version = fanout_exporter::VERSION,
        revision = fanout_exporter::REVISION,
        config = %config.source,
        targets = config.targets.len(),
        address = %local,
        tls = web.as_ref().is_some_and(|w| w.tls.is_some()),
        "listening"
    );
    if let Some(web) = &web {
        tracing::info!(
            file = web.source.as_str(),
            on = web.summary().as_str(),
            "web configuration"
        );
    }
    // A reload reads the same input again: the file or the peers' variables (or, without either,
    // the embedded default for the port actually bound).
    let input =
        fixed.unwrap_or_else(|| Input::Text(fanout_exporter::cli::embedded_default(local.port())));
    let loader: Loader = Arc::new(move || config::load(&input, &flags));
    let mut state = State::of(Generation::from_config(config), cli.telemetry_path)
        .with_loader(loader)
        .with_max_requests(cli.max_requests);
    if let (Some(web), Some(file)) = (web, cli.web_config_file) {
        state = state.with_web(web, file);
    }
    let state = Arc::new(state);
    actix_web::rt::System::new()
        .block_on(async {
            actix_web::rt::spawn(reload_on_hangup(Arc::clone(&state)));
            server::run(state, listener, shutdown_signal()).await
        })
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The `healthcheck` subcommand: one line on the outcome, and the exit code a container runtime reads.
fn healthcheck(
    listen: &str,
    timeout: std::time::Duration,
    web: Option<&std::path::Path>,
) -> ExitCode {
    // The server's own web configuration says whether it speaks TLS.
    let tls = match web.map(fanout_exporter::web::load).transpose() {
        Ok(web) => web.is_some_and(|w| w.tls.is_some()),
        Err(errors) => {
            eprintln!("unhealthy: invalid web configuration:\n{errors}");
            return ExitCode::FAILURE;
        }
    };
    let checked = cli::listen_address(listen).and_then(|a| {
        fanout_exporter::healthcheck::check(fanout_exporter::healthcheck::reach(a), timeout, tls)
    });
    match checked {
        Ok(()) => {
            println!("healthy");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bind(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).with_context(|| format!("listening on {address}"))
}

fn report_config_errors(errors: &config::ConfigErrors) -> ExitCode {
    eprintln!("invalid configuration:\n{errors}");
    ExitCode::from(2)
}

fn print_summary(config: &Config, web: Option<&fanout_exporter::web::WebConfig>) {
    print!("configuration OK\n{}", config.summary());
    if let Some(web) = web {
        println!("web configuration {} OK: {}", web.source, web.summary());
    }
}

/// Reload the configuration on every SIGHUP, as Prometheus does; a bad file keeps the running one.
async fn reload_on_hangup(state: Arc<State>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload with POST /-/reload");
        return;
    };
    while hangup.recv().await.is_some() {
        tracing::info!(signal = "SIGHUP", "received");
        // The outcome is logged by the reload itself.
        let _ = state.reload().await;
    }
}

/// Resolves on SIGTERM or SIGINT; both drain in-flight scrapes.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "received"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "received"),
    }
}
