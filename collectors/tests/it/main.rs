//! The collectors against real servers, in one test binary (one link step; servers shared across
//! modules): the HTTP collector against in-process servers, the MySQL collector against real
//! MariaDB (plain and TLS), the Redis collector against real redis-server processes. The servers are
//! started by `fanout_testkit`.

mod diagnosis;
mod http_collector;
mod mysql_collector;
mod mysql_tls;
mod redis_collector;
