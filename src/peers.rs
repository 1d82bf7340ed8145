//! The ways in that people bring from mysqld_exporter, redis_exporter and blackbox_exporter: their
//! command-line flags, their environment variables and mysqld_exporter's `.my.cnf`.
//!
//! Nothing of theirs is ignored silently. A peer's flag stops the exporter with a message naming
//! what to write here instead (our configuration file replaces most of them). Their connection
//! variables (`DATA_SOURCE_NAME`, `MYSQLD_EXPORTER_PASSWORD`, `REDIS_ADDR`, `REDIS_USER`,
//! `REDIS_PASSWORD`) and `--config.my-cnf` are understood as a one-target configuration when no
//! `--config.file` is given, so swapping the binary in a container that set them keeps working;
//! with a file they are reported as unused, because the file decides.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use serde_yaml::{Mapping, Value};

/// What to write here instead of a peer's flag, by flag name (without dashes). A name ending in
/// `.` matches every flag it begins.
const FLAGS: &[(&str, &str, &str)] = &[
    // mysqld_exporter
    (
        "mysqld.address",
        "mysqld_exporter",
        "give the server as `address:` of a mysql target in --config.file (or DATA_SOURCE_NAME, without a file)",
    ),
    (
        "mysqld.username",
        "mysqld_exporter",
        "give the account as `user:` of a mysql target in --config.file (or DATA_SOURCE_NAME, without a file)",
    ),
    (
        "collect.info_schema.processlist.",
        "mysqld_exporter",
        "write `processlist: {min_time: ..., processes_by_user: ..., processes_by_host: ...}` under the mysql target",
    ),
    (
        "collect.perf_schema.eventsstatements.",
        "mysqld_exporter",
        "write `events_statements: {limit: ..., digest_text_limit: ..., time_limit: ...}` under the mysql target",
    ),
    (
        "collect.info_schema.tables.databases",
        "mysqld_exporter",
        "write `table_schemas: [schema, ...]` under the mysql target",
    ),
    (
        "collect.",
        "mysqld_exporter",
        "sub-collectors are chosen per target: `collect: [global_status, info_schema.processlist, ...]` under the mysql target (README, MySQL)",
    ),
    (
        "no-collect.",
        "mysqld_exporter",
        "sub-collectors are chosen per target: leave it out of `collect: [...]` under the mysql target (README, MySQL)",
    ),
    (
        "exporter.lock_wait_timeout",
        "mysqld_exporter",
        "write `lock_wait_timeout: 2s` under the mysql target",
    ),
    (
        "exporter.",
        "mysqld_exporter",
        "not supported: each connection's session gets lock_wait_timeout and a statement time limit from the scrape deadline (README, MySQL)",
    ),
    (
        "tls.insecure-skip-verify",
        "mysqld_exporter",
        "write `tls: {insecure_skip_verify: true}` under the mysql target",
    ),
    (
        "web.systemd-socket",
        "mysqld_exporter and blackbox_exporter",
        "systemd socket activation is not supported; listen with --web.listen-address",
    ),
    // redis_exporter (Go flags: one dash or two)
    (
        "redis.addr",
        "redis_exporter",
        "give the server as `url:` of a redis target in --config.file (or REDIS_ADDR, without a file)",
    ),
    (
        "redis.user",
        "redis_exporter",
        "write `user:` under the redis target (or REDIS_USER, without a file)",
    ),
    (
        "redis.password-file",
        "redis_exporter",
        "write `password_file:` under each redis target: one file holding that target's password, not redis_exporter's JSON map of URLs",
    ),
    (
        "redis.password",
        "redis_exporter",
        "write `password_file:` (or `password:`) under the redis target (or REDIS_PASSWORD, without a file)",
    ),
    (
        "check-keys",
        "redis_exporter",
        "write `check_keys: [pattern, ...]` under the redis target",
    ),
    (
        "check-single-keys",
        "redis_exporter",
        "write `check_single_keys: [key, ...]` under the redis target",
    ),
    (
        "count-keys",
        "redis_exporter",
        "write `count_keys: [pattern, ...]` under the redis target",
    ),
    (
        "config-command",
        "redis_exporter",
        "write `config_command: <name>` under the redis target (\"\" never sends it)",
    ),
    (
        "script",
        "redis_exporter",
        "Lua scripts are not run; `commands: [...]` under the redis target turns read-only commands into metrics",
    ),
    (
        "skip-tls-verification",
        "redis_exporter",
        "write `tls: {insecure_skip_verify: true}` under the redis target",
    ),
    (
        "tls-client-cert-file",
        "redis_exporter",
        "write `tls: {cert_file: ..., key_file: ...}` under the redis target",
    ),
    (
        "tls-client-key-file",
        "redis_exporter",
        "write `tls: {cert_file: ..., key_file: ...}` under the redis target",
    ),
    (
        "tls-ca-cert-file",
        "redis_exporter",
        "write `tls: {ca_file: ...}` under the redis target",
    ),
    (
        "tls-server-",
        "redis_exporter",
        "the exporter's own TLS comes from --web.config.file (exporter-toolkit's format; README, Security)",
    ),
    (
        "namespace",
        "redis_exporter",
        "metric names keep redis_exporter's default `redis_` prefix, so dashboards and alerts work unchanged",
    ),
    ("debug", "redis_exporter", "use --log.level=debug"),
    (
        "log-format",
        "redis_exporter",
        "use --log.format=logfmt or --log.format=json",
    ),
    (
        "connection-timeout",
        "redis_exporter",
        "every connection and reply is bounded by the scrape deadline (global.scrape_timeout and Prometheus' scrape timeout)",
    ),
    (
        "check-streams",
        "redis_exporter",
        "stream checks are not supported; `commands: [{command: [XLEN, <stream>], ...}]` gives a stream's length",
    ),
    (
        "check-single-streams",
        "redis_exporter",
        "stream checks are not supported; `commands: [{command: [XLEN, <stream>], ...}]` gives a stream's length",
    ),
    (
        "check-key-groups",
        "redis_exporter",
        "key groups are not supported; `count_keys: [pattern]` counts the keys a pattern matches",
    ),
    (
        "include-system-metrics",
        "redis_exporter",
        "redis_total_system_memory_bytes is always exported when the server reports it",
    ),
    (
        "export-client-list",
        "redis_exporter",
        "per-client series are not exported (one series per connection is unbounded cardinality)",
    ),
    ("is-tile38", "redis_exporter", "Tile38 is not supported"),
    (
        "is-cluster",
        "redis_exporter",
        "cluster nodes are detected: CLUSTER INFO is read when the node says it is in a cluster",
    ),
    (
        "ping-on-connect",
        "redis_exporter",
        "every scrape checks the connection with its first round trip",
    ),
    (
        "redis-only-metrics",
        "redis_exporter",
        "the exporter's own metrics are always in /metrics; drop them with metric_relabel_configs if unwanted",
    ),
    (
        "set-client-name",
        "redis_exporter",
        "the client name is not set (CLIENT SETNAME needs a round trip every connect)",
    ),
    // blackbox_exporter
    (
        "web.external-url",
        "blackbox_exporter",
        "not supported: the status page links are relative, so they work behind a proxy",
    ),
    (
        "web.route-prefix",
        "blackbox_exporter",
        "not supported: serve the exporter at the root of its own port",
    ),
    (
        "history.limit",
        "blackbox_exporter",
        "the status page at / shows each target's latest scrape and its error",
    ),
];

/// Our own flags, which a single dash (Go's style) would otherwise turn into clap short options.
const OURS: [&str; 9] = [
    "web.listen-address",
    "web.telemetry-path",
    "web.config.file",
    "web.max-requests",
    "config.file",
    "config.check",
    "log.level",
    "log.format",
    "timeout-offset",
];

/// The message for the first peer flag among `args` (the program name excluded), if any.
pub fn flag_hint(args: impl IntoIterator<Item = OsString>) -> Option<String> {
    for arg in args {
        let arg = arg.to_string_lossy().into_owned();
        if arg == "--" {
            return None;
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        let name = stripped.split('=').next().unwrap_or_default();
        let single_dash = !arg.starts_with("--");
        if single_dash && OURS.contains(&name) {
            return Some(format!(
                "-{name} has one dash, as Go's flags may; here flags take two: --{name}"
            ));
        }
        let found = FLAGS.iter().find(|(flag, _, _)| {
            if flag.ends_with('.') || flag.ends_with('-') {
                name.starts_with(flag)
            } else {
                name == *flag
            }
        });
        if let Some((_, peer, instead)) = found {
            let dashes = if single_dash { "-" } else { "--" };
            return Some(format!(
                "{dashes}{name} is a flag of {peer}; fanout_exporter takes its settings from --config.file instead: {instead}"
            ));
        }
    }
    None
}

/// The peers' connection variables this exporter reads.
pub const VARIABLES: [&str; 5] = [
    "DATA_SOURCE_NAME",
    "MYSQLD_EXPORTER_PASSWORD",
    "REDIS_ADDR",
    "REDIS_USER",
    "REDIS_PASSWORD",
];

/// A one-target configuration built from the peers' variables or `.my.cnf`.
pub struct Generated {
    /// Where it came from, as errors and the status page name it.
    pub source: String,
    /// The configuration, as YAML (with the password in it: never print it).
    pub text: String,
    /// The same configuration as a file would say it, without the password, for the log.
    pub equivalent: String,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The configuration the peers' variables (given as `env`) and `my_cnf` describe, if they describe
/// one; an error that quotes no value when they are malformed.
pub fn from_environment(
    env: &BTreeMap<String, String>,
    my_cnf: Option<&Path>,
) -> Result<Option<Generated>, String> {
    let mut sections = Mapping::new();
    let mut shown = Mapping::new();
    let mut sources = Vec::new();
    let password_override = env
        .get("MYSQLD_EXPORTER_PASSWORD")
        .filter(|p| !p.is_empty());

    let mysql = match (
        env.get("DATA_SOURCE_NAME").filter(|d| !d.is_empty()),
        my_cnf,
    ) {
        (Some(_), Some(_)) => {
            return Err(
                "both DATA_SOURCE_NAME and --config.my-cnf name a MySQL server: keep one".into(),
            );
        }
        (Some(dsn), None) => {
            sources.push("DATA_SOURCE_NAME");
            Some(parse_dsn(dsn)?)
        }
        (None, Some(path)) => {
            sources.push("--config.my-cnf");
            Some(read_my_cnf(path)?)
        }
        (None, None) => None,
    };
    if let Some(mut mysql) = mysql {
        if let Some(password) = password_override {
            sources.push("MYSQLD_EXPORTER_PASSWORD");
            mysql.password = Some(password.clone());
        }
        let (full, without) = mysql.target();
        sections.insert("mysql".into(), single("mysql", full));
        shown.insert("mysql".into(), single("mysql", without));
    } else if password_override.is_some() {
        return Err("MYSQLD_EXPORTER_PASSWORD is set, but no DATA_SOURCE_NAME or --config.my-cnf names the server it is for".into());
    }

    let redis_addr = env.get("REDIS_ADDR").filter(|a| !a.is_empty());
    let redis_user = env.get("REDIS_USER").filter(|u| !u.is_empty());
    let redis_password = env.get("REDIS_PASSWORD").filter(|p| !p.is_empty());
    if redis_addr.is_some() || redis_user.is_some() || redis_password.is_some() {
        sources.extend(
            [
                ("REDIS_ADDR", redis_addr.is_some()),
                ("REDIS_USER", redis_user.is_some()),
                ("REDIS_PASSWORD", redis_password.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name)),
        );
        // redis_exporter's default address, and its rule that an address without a scheme is
        // redis://.
        let addr = redis_addr.map_or("redis://localhost:6379", String::as_str);
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("redis://{addr}")
        };
        let mut target = Mapping::new();
        target.insert("url".into(), url.into());
        if let Some(user) = redis_user {
            target.insert("user".into(), user.clone().into());
        }
        let mut without = target.clone();
        if let Some(password) = redis_password {
            target.insert("password".into(), password.clone().into());
            without.insert(
                "password_file".into(),
                "<a file holding REDIS_PASSWORD>".into(),
            );
        }
        sections.insert("redis".into(), single("redis", target));
        shown.insert("redis".into(), single("redis", without));
    }
    if sections.is_empty() {
        return Ok(None);
    }
    let yaml = |m: Mapping| serde_yaml::to_string(&Value::Mapping(m)).unwrap_or_default();
    Ok(Some(Generated {
        source: format!("the environment ({})", sources.join(", ")),
        text: yaml(sections),
        equivalent: yaml(shown),
    }))
}

/// The peers' variables that are set, for the warning when a configuration file makes them unused.
pub fn set_variables(env: &BTreeMap<String, String>) -> Vec<&'static str> {
    VARIABLES
        .into_iter()
        .filter(|v| env.get(*v).is_some_and(|value| !value.is_empty()))
        .collect()
}

fn single(name: &str, target: Mapping) -> Value {
    let mut m = Mapping::new();
    m.insert(name.into(), Value::Mapping(target));
    Value::Mapping(m)
}

/// A MySQL server as a DSN or `.my.cnf` names it.
#[derive(Default)]
struct MysqlTarget {
    address: String,
    user: Option<String>,
    password: Option<String>,
    tls: Mapping,
}

impl MysqlTarget {
    /// The target's keys, with and without the password.
    fn target(&self) -> (Mapping, Mapping) {
        let mut target = Mapping::new();
        target.insert("address".into(), self.address.clone().into());
        if let Some(user) = &self.user {
            target.insert("user".into(), user.clone().into());
        }
        if !self.tls.is_empty() {
            target.insert("tls".into(), Value::Mapping(self.tls.clone()));
        }
        let mut without = target.clone();
        if let Some(password) = &self.password {
            target.insert("password".into(), password.clone().into());
            without.insert(
                "password_file".into(),
                "<a file holding the password>".into(),
            );
        }
        (target, without)
    }
}

/// `DATA_SOURCE_NAME`, Go's MySQL DSN: `[user[:password]@][tcp(host:port)|unix(/path)|(host:port)]/[db][?params]`.
/// The error never quotes the value: it holds the password.
fn parse_dsn(dsn: &str) -> Result<MysqlTarget, String> {
    let expected = "DATA_SOURCE_NAME is not a DSN mysqld_exporter reads: expected user:password@tcp(host:3306)/ or user:password@unix(/run/mysqld/mysqld.sock)/";
    // As Go's driver reads it: the database starts at the last '/' (a password may hold '/', a
    // socket path does before it, inside the parentheses), the credentials end at the last '@'.
    let (before_params, params) = dsn.split_once('?').unwrap_or((dsn, ""));
    let slash = before_params
        .rfind('/')
        .filter(|i| !before_params[*i..].contains(')'))
        .ok_or(expected)?;
    let head = &before_params[..slash];
    let (credentials, location) = match head.rfind('@') {
        Some(at) => (Some(&head[..at]), &head[at + 1..]),
        None => (None, head),
    };
    let mut target = MysqlTarget::default();
    if let Some(credentials) = credentials {
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (credentials, None),
        };
        target.user = (!user.is_empty()).then(|| user.to_owned());
        target.password = password.map(str::to_owned);
    }
    target.address = match location.split_once('(') {
        None if location.is_empty() => "127.0.0.1:3306".to_owned(),
        None => return Err(expected.into()),
        Some((net, rest)) => {
            let address = rest.strip_suffix(')').ok_or(expected)?;
            match net {
                "unix" => format!("unix://{address}"),
                "tcp" | "" if address.is_empty() => "127.0.0.1:3306".to_owned(),
                "tcp" | "" => address.to_owned(),
                _ => return Err(format!("{expected} (the network must be tcp or unix)")),
            }
        }
    };
    for param in params.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=').unwrap_or((param, "")) {
            // Go's `tls=true` verifies against the system roots, as our `tls:` does with any key.
            ("tls", "true") => {
                target
                    .tls
                    .insert("insecure_skip_verify".into(), Value::Bool(false));
            }
            ("tls", "skip-verify") => {
                target
                    .tls
                    .insert("insecure_skip_verify".into(), Value::Bool(true));
            }
            // Our default already uses TLS when the server offers it.
            ("tls", "false" | "preferred") => {}
            (name, _) => tracing::warn!(
                parameter = name,
                "DATA_SOURCE_NAME parameter not used: connection settings come from the scrape deadline and the target's keys"
            ),
        }
    }
    Ok(target)
}

/// mysqld_exporter's `--config.my-cnf`: the `[client]` section's `user`, `password`, `host`, `port`,
/// `socket`, `ssl-ca`, `ssl-cert` and `ssl-key`.
fn read_my_cnf(path: &Path) -> Result<MysqlTarget, String> {
    let bytes = fanout_collectors::config::read_bounded(
        path,
        fanout_collectors::config::MAX_REFERENCED_FILE_BYTES,
    )
    .map_err(|e| format!("--config.my-cnf {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("--config.my-cnf {}: not UTF-8 text", path.display()))?;
    let mut section = String::new();
    let mut client = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        if section != "client" {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        client.insert(key.trim().replace('_', "-"), value.to_owned());
    }
    if client.is_empty() {
        return Err(format!(
            "--config.my-cnf {}: no [client] section with user, password, host or socket",
            path.display()
        ));
    }
    let mut target = MysqlTarget {
        user: client.get("user").cloned(),
        password: client.get("password").cloned(),
        ..MysqlTarget::default()
    };
    target.address = match (client.get("socket"), client.get("host")) {
        (Some(socket), _) if client.get("host").is_none_or(|h| h == "localhost") => {
            format!("unix://{socket}")
        }
        (_, host) => {
            let host = host.map_or("127.0.0.1", String::as_str);
            let port = client.get("port").map_or("3306", String::as_str);
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
    };
    for (ours, theirs) in [
        ("ca_file", "ssl-ca"),
        ("cert_file", "ssl-cert"),
        ("key_file", "ssl-key"),
    ] {
        if let Some(file) = client.get(theirs) {
            target.tls.insert(ours.into(), file.clone().into());
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests;
