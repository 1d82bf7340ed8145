//! The kinds this build knows. Registering a kind is one line in [`each_kind`]; the binary's config
//! layer, the engine and the status page learn every kind from here and name none.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::{Context, Labels};
use crate::{Collector, Kind};

/// A kind's config for one target, as the kind's section of the config file holds it
/// (`<kind>: {<target name>: <this>}`).
///
/// The kind deserializes and validates it (denying unknown keys, with its own defaults) and builds
/// the collector; the binary only layers sources, checks names and labels, and locates errors.
pub trait KindConfig: DeserializeOwned + 'static {
    /// The kind: its section name, up metric and its HELP.
    const KIND: &'static Kind;

    /// The target's own labels, merged by the binary with the global ones.
    fn labels(&self) -> &Labels;

    /// Validate and build the target's collector. Problems are recorded in `ctx`, by key path below
    /// the target; `None` when there were any.
    fn build(self, ctx: &mut Context<'_>) -> Option<Arc<dyn Collector>>;
}

/// Called once per registered kind, with the kind's config type: the binary runs its generic
/// loading steps through this, so it never names a kind.
pub trait Visitor {
    /// Handle kind `K`.
    fn kind<K: KindConfig>(&mut self);
}

/// The registry: one line per kind, in the order their sections are read.
pub fn each_kind(visitor: &mut impl Visitor) {
    visitor.kind::<crate::http::HttpConfig>();
    visitor.kind::<crate::mysql::MysqlConfig>();
    visitor.kind::<crate::redis::RedisConfig>();
}

/// Every registered kind's static facts, in registry order.
pub fn kinds() -> Vec<&'static Kind> {
    struct Collect(Vec<&'static Kind>);
    impl Visitor for Collect {
        fn kind<K: KindConfig>(&mut self) {
            self.0.push(K::KIND);
        }
    }
    let mut all = Collect(Vec::new());
    each_kind(&mut all);
    all.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names_and_up_metrics() {
        let kinds = kinds();
        let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
        assert_eq!(names, ["http", "mysql", "redis"]);
        let mut ups: Vec<&str> = kinds.iter().map(|k| k.up_metric).collect();
        ups.sort_unstable();
        ups.dedup();
        assert_eq!(ups.len(), kinds.len(), "{ups:?}");
    }
}
