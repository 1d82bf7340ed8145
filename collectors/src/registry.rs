//! The kinds this build knows. Registering a kind is one line in [`each_kind`]; the binary's config
//! layer, the engine and the status page learn every kind from here and name none.

use crate::Kind;
use crate::config::{KindConfig, Visitor};

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
