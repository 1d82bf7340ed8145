//! Command-line flags. Names follow exporter-toolkit (`--web.listen-address`, `--config.file`, ...) so
//! that deployment manifests written for other exporters read the same.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// `fanout_exporter` flags.
#[derive(Debug, Parser)]
#[command(
    name = "fanout_exporter",
    version = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("FANOUT_BUILD_REVISION"), ")"),
    about = "Prometheus exporter for MySQL/MariaDB, Redis and HTTP targets, fanned out on every scrape"
)]
pub struct Cli {
    /// Something other than serving; without one, the exporter serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on; `:9930` means every interface.
    #[arg(long = "web.listen-address", default_value = ":9930", global = true)]
    pub listen_address: String,

    /// exporter-toolkit web configuration file (TLS, client certificates, basic authentication,
    /// response headers, rate limit); without one, plain HTTP with no authentication.
    #[arg(long = "web.config.file", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Scrapes (`/metrics`, `/probe`) served at once; past it, 503. 0 means no limit.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,

    /// Path under which the fan-out scrape of every target is served.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = telemetry_path)]
    pub telemetry_path: String,

    /// YAML configuration file. Without one, the exporter probes its own /-/healthy.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,

    /// mysqld_exporter's `.my.cnf` (its `[client]` section): one MySQL target, when no
    /// `--config.file` is given.
    #[arg(long = "config.my-cnf")]
    pub my_cnf: Option<PathBuf>,

    /// Validate the configuration, print a summary and exit (non-zero on errors).
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Lowest level logged.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// Subtracted from Prometheus' scrape timeout header (seconds, or a duration such as `500ms`);
    /// overrides `global.timeout_offset`.
    #[arg(long = "timeout-offset", value_parser = seconds_or_duration)]
    pub timeout_offset: Option<Duration>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 when the exporter listening on --web.listen-address answers /-/healthy with 200, 1
    /// otherwise: for container healthchecks, since the image has no shell or curl.
    Healthcheck {
        /// Limit for each of connecting, sending and receiving (seconds, or a duration such as 2s).
        #[arg(long, default_value = "3s", value_parser = seconds_or_duration)]
        timeout: Duration,
    },
}

/// Log levels offered by Prometheus exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Debug, and the timings of each part of a collection (MySQL sub-collectors and queries, Redis
    /// round trips), for finding what makes a target slow.
    Trace,
    /// Everything, including per-request details and one line per collection of each target.
    Debug,
    /// Start-up, shutdown and target failures.
    Info,
    /// Target failures and configuration warnings.
    Warn,
    /// Only errors.
    Error,
}

/// Log formats offered by Prometheus exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `ts=... level=info msg="..." key=value`.
    Logfmt,
    /// One JSON object per line.
    Json,
}

fn telemetry_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path == "/" {
        return Err("must start with / and not be / itself (the landing page lives there)".into());
    }
    if path == "/probe" || path == "/config" || path.starts_with("/-/") {
        return Err(format!("{path} is used by another endpoint"));
    }
    // The path becomes a route pattern: `{x}` would be a placeholder matching anything.
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
    {
        return Err("may contain only letters, digits, /, _, - and .".into());
    }
    Ok(path.to_owned())
}

fn seconds_or_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string());
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("expected seconds or a duration like 500ms: {e}"))
}

/// Resolve `--web.listen-address`; a bare `:port` listens on every IPv4 interface, as Go does for
/// exporters deployed in containers.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.to_socket_addrs()
        .map_err(|e| format!("invalid --web.listen-address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--web.listen-address {text:?} resolves to no address"))
}

/// The configuration used when no file is given: an HTTP check of the exporter's own `/-/healthy`, so
/// that a bare `cargo run` serves real `probe_*` metrics.
pub fn embedded_default(port: u16) -> String {
    format!("http:\n  fanout_exporter:\n    url: http://127.0.0.1:{port}/-/healthy\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_forms() {
        assert_eq!(listen_address(":9930"), Ok("0.0.0.0:9930".parse().unwrap()));
        assert_eq!(
            listen_address("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert!(listen_address("nonsense").is_err());
    }

    #[test]
    fn timeout_offset_accepts_seconds_and_durations() {
        assert_eq!(seconds_or_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(seconds_or_duration("750ms"), Ok(Duration::from_millis(750)));
        assert!(seconds_or_duration("soon").is_err());
    }

    #[test]
    fn telemetry_path_must_not_shadow_other_endpoints() {
        assert!(telemetry_path("/metrics").is_ok());
        for bad in [
            "metrics",
            "/",
            "/probe",
            "/config",
            "/-/healthy",
            "/{x}",
            "/m{x",
            "/a b",
            "/*",
        ] {
            assert!(telemetry_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_have_exporter_toolkit_names() {
        let cli = Cli::try_parse_from([
            "fanout_exporter",
            "--web.listen-address=127.0.0.1:1",
            "--web.telemetry-path=/m",
            "--config.file=x.yaml",
            "--config.check",
            "--log.level=debug",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.listen_address, "127.0.0.1:1");
        assert_eq!(cli.telemetry_path, "/m");
        assert!(cli.config_check);
        assert_eq!(cli.log_level, LogLevel::Debug);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(cli.command.is_none());
    }

    #[test]
    fn healthcheck_takes_the_listen_address_before_or_after_it() {
        for args in [
            &[
                "fanout_exporter",
                "healthcheck",
                "--web.listen-address=127.0.0.1:1",
            ][..],
            &[
                "fanout_exporter",
                "--web.listen-address=127.0.0.1:1",
                "healthcheck",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.listen_address, "127.0.0.1:1", "{args:?}");
            assert!(
                matches!(cli.command, Some(Command::Healthcheck { timeout }) if timeout == Duration::from_secs(3)),
                "{args:?}"
            );
        }
        let cli =
            Cli::try_parse_from(["fanout_exporter", "healthcheck", "--timeout=250ms"]).unwrap();
        assert_eq!(cli.listen_address, ":9930");
        assert!(
            matches!(cli.command, Some(Command::Healthcheck { timeout }) if timeout == Duration::from_millis(250))
        );
    }
}
