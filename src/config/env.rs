//! The environment layer: `FANOUT_EXPORTER_*` variables as a figment provider, values kept as the
//! strings they are, and the service-link variables Kubernetes and docker set left out.

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::ENV_PREFIX;

/// The environment layer.
///
/// figment's own `Env` provider parses every value, so `000123` becomes the number 123 and `1.10`
/// becomes 1.1 before any field sees it: a secret or a label value would be silently changed. This
/// layer keeps each value a string, and lossy extraction turns it into a number or boolean where the
/// key wants one. Values written as `[...]` or `{...}` are parsed, so lists such as
/// `valid_status_codes` can be set too.
pub(super) struct EnvLayer {
    /// (dotted, lower-cased key path, raw value)
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    pub(super) fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(ENV_PREFIX)?;
                if is_service_link(rest) {
                    return None;
                }
                let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
                (!parts.iter().any(String::is_empty)).then(|| (parts.join("."), value))
            })
            .collect();
        Self { vars }
    }
}

/// Whether `rest` (a variable name after [`ENV_PREFIX`]) is a service link: Kubernetes sets
/// `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<PORT NAME>]`, `<SERVICE>_PORT` and
/// `<SERVICE>_PORT_<N>_<TCP|UDP|SCTP>[_ADDR|_PORT|_PROTO]` in every container of a namespace for every
/// Service in it (docker links use the same shapes), so a Service named `fanout-exporter` or
/// `fanout-exporter-<anything>` yields variables under our prefix. They are not configuration, and
/// refusing them as unknown keys would stop the exporter from starting beside such a Service. Our own
/// keys always contain `__`, so none of them is ever taken for a link, and other single-underscore
/// names (`GLOBAL_SCRAPE_TIMEOUT`, a typo) are still refused.
fn is_service_link(rest: &str) -> bool {
    if rest.contains("__") {
        return false;
    }
    let t: Vec<&str> = rest.split('_').collect();
    let n = t.len();
    if t.ends_with(&["SERVICE", "HOST"]) || t.last() == Some(&"PORT") {
        return true;
    }
    if t.windows(2).any(|w| w == ["SERVICE", "PORT"]) {
        return true;
    }
    (0..n).any(|i| {
        t[i] == "PORT"
            && t.get(i + 1)
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && t.get(i + 2)
                .is_some_and(|p| matches!(*p, "TCP" | "UDP" | "SCTP"))
            && (n == i + 3 || (n == i + 4 && matches!(t[i + 3], "ADDR" | "PORT" | "PROTO")))
    })
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in &self.vars {
            let value = if raw.trim_start().starts_with(['[', '{']) {
                raw.parse::<Value>().unwrap_or_else(|never| match never {})
            } else {
                Value::from(raw.clone())
            };
            if let Some(nested) = figment::util::nest(key, value).into_dict() {
                merge_dict(&mut dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn merge_dict(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => merge_dict(existing, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
