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
    /// (lower-cased key path, raw value)
    vars: Vec<(Vec<String>, String)>,
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
                (!parts.iter().any(String::is_empty)).then_some((parts, value))
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

impl EnvLayer {
    /// The same variables, their target (or module) segment given the spelling of the name in the
    /// file. A variable name holds only letters, digits and `_`, in any case, so a target named
    /// `exporter-health` or `db.primary` is written `EXPORTER_HEALTH` or `DB_PRIMARY`: the segment is
    /// compared with each name of that section lower-cased and with `-` and `.` read as `_`. A
    /// segment that matches no name (or two, like `a-b` and `a_b`) stays as written.
    pub(super) fn naming(mut self, text: &str) -> Self {
        let Ok(serde_yaml::Value::Mapping(top)) = serde_yaml::from_str::<serde_yaml::Value>(text)
        else {
            return self;
        };
        let folded = |name: &str| name.to_ascii_lowercase().replace(['-', '.'], "_");
        for (parts, _) in &mut self.vars {
            let [section, segment, ..] = parts.as_mut_slice() else {
                continue;
            };
            let Some(serde_yaml::Value::Mapping(names)) = top.get(section.as_str()) else {
                continue;
            };
            let names: Vec<&str> = names.keys().filter_map(serde_yaml::Value::as_str).collect();
            if names.contains(&segment.as_str()) {
                continue;
            }
            let mut matching = names.iter().filter(|n| folded(n) == *segment);
            if let (Some(name), None) = (matching.next(), matching.next()) {
                *segment = (*name).to_owned();
            }
        }
        self
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (parts, raw) in &self.vars {
            let mut value = if raw.trim_start().starts_with(['[', '{']) {
                raw.parse::<Value>().unwrap_or_else(|never| match never {})
            } else {
                Value::from(raw.clone())
            };
            // Nested by hand, not through a dotted path: a target's name may contain a dot.
            for part in parts.iter().rev() {
                let mut level = Dict::new();
                level.insert(part.clone(), value);
                value = Value::from(level);
            }
            if let Some(nested) = value.into_dict() {
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
