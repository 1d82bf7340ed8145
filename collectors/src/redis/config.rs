//! The `redis` section of the config file: one entry per target, with redis_exporter's key-check
//! options and custom commands, validated into [`RedisSettings`] and a ready [`RedisCollector`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{CustomCommand, KIND, ParsedUrl, RedisAddress, RedisCollector, RedisSettings};
use crate::config::{Context, Destination, KindConfig, Labels, Secret, Text, texts};
use crate::family::MetricType;
use crate::secret::ExposeSecret;
use crate::tls::TlsConfig;
use crate::{Collector, Kind};

/// One Redis/Valkey target as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://`, `rediss://`, `valkey://`, `valkeys://` or `unix://`. May hold a password: never
    /// quoted in errors.
    pub url: Secret,
    /// ACL user name (overrides the URL's).
    #[serde(default)]
    pub user: Option<Text>,
    /// Password, inline (overrides the URL's).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Password, from a file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Client TLS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The target's own labels.
    #[serde(default)]
    pub labels: Labels,
    /// SCAN patterns whose keys are sized.
    #[serde(default)]
    pub check_keys: Vec<Text>,
    /// Literal keys sized the same way.
    #[serde(default)]
    pub check_single_keys: Vec<Text>,
    /// SCAN patterns whose keys are counted.
    #[serde(default)]
    pub count_keys: Vec<Text>,
    /// Custom metrics from read-only commands.
    #[serde(default)]
    pub commands: Vec<RedisCommandConfig>,
    /// Limits of the key checks.
    #[serde(default)]
    pub key_check_budget: KeyBudgetConfig,
    /// Name of the CONFIG command; empty to never send it.
    #[serde(default)]
    pub config_command: Option<Text>,
}

/// One custom command of a Redis target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCommandConfig {
    /// Metric name.
    pub metric: Text,
    /// HELP text.
    #[serde(default)]
    pub help: Option<Text>,
    /// The command and its arguments.
    pub command: Vec<Text>,
    /// Counter or gauge (gauge by default).
    #[serde(default, rename = "type")]
    pub kind: Option<MetricType>,
}

/// `key_check_budget` of a Redis target.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyBudgetConfig {
    /// Most keys looked at per scrape.
    pub max_keys: Option<usize>,
    /// Most time spent per scrape.
    #[serde(with = "humantime_serde")]
    pub max_time: Option<Duration>,
}

impl KindConfig for RedisConfig {
    const KIND: &'static Kind = &KIND;
    const ADDRESS_KEY: &'static str = "url";
    const CHECK_ADDRESS: &'static str = "redis://module-check.invalid:6379";

    fn destination(address: &str) -> Result<Destination, String> {
        let url = ParsedUrl::parse(address)?;
        match url.address {
            RedisAddress::Tcp { host, port } => Destination::net(
                if url.tls { "rediss" } else { "redis" },
                &host,
                port,
                &format!("/{}", url.db),
            ),
            RedisAddress::Unix(path) => Ok(Destination::Unix(path)),
        }
    }

    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn build(self, ctx: &mut Context<'_>) -> Option<Arc<dyn Collector>> {
        let settings = self.settings(ctx)?;
        match RedisCollector::new(settings) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                ctx.settings_error(e, true);
                None
            }
        }
    }
}

impl RedisConfig {
    fn settings(self, ctx: &mut Context<'_>) -> Option<RedisSettings> {
        let errors_before = ctx.error_count();
        let url = ctx.ok(&["url"], ParsedUrl::parse(self.url.0.expose_secret()));
        let password = ctx.secret(
            &[],
            "password",
            self.password,
            self.password_file.as_deref(),
        );
        let tls = self.tls.map(|t| t.client_tls("redis", ctx));
        if ctx.error_count() > errors_before {
            return None;
        }
        let mut settings = RedisSettings::new(url?);
        settings.user = self.user.map(|t| t.0);
        settings.password = password;
        settings.tls = tls;
        settings.check_keys = texts(self.check_keys);
        settings.check_single_keys = texts(self.check_single_keys);
        settings.count_keys = texts(self.count_keys);
        settings.commands = self
            .commands
            .into_iter()
            .map(|c| CustomCommand {
                help: c
                    .help
                    .map(|h| h.0)
                    .unwrap_or_else(|| format!("Custom command {}.", c.metric.0)),
                metric: c.metric.0,
                command: texts(c.command),
                kind: c.kind.unwrap_or(MetricType::Gauge),
            })
            .collect();
        if let Some(max) = self.key_check_budget.max_keys {
            settings.key_check_budget.max_keys = max;
        }
        if let Some(t) = self.key_check_budget.max_time {
            settings.key_check_budget.max_time = t;
        }
        if let Some(c) = self.config_command {
            // An empty name means: never send CONFIG (it is renamed away or blocked).
            settings.config_command = Some(c.0).filter(|c| !c.is_empty());
        }
        Some(settings)
    }
}
