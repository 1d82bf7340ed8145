-- Run once by the mariadb image's entrypoint (mounted at /docker-entrypoint-initdb.d/), when the data
-- volume is first initialised. The entrypoint has already created 'exporter'@'%' from MARIADB_USER
-- and MARIADB_PASSWORD_FILE; this grants it what fanout_exporter's collectors need, and no more:
--   PROCESS                        info_schema.innodb_cmp, info_schema.innodb_cmpmem,
--                                  info_schema.processlist, info_schema.innodb_metrics
--   REPLICATION CLIENT             replication and binary log status (BINLOG MONITOR on MariaDB)
--   SLAVE MONITOR                  SHOW ALL SLAVES STATUS (MariaDB >= 10.5.9)
--   SELECT ON performance_schema   perf_schema.eventsstatements
-- SHOW GLOBAL STATUS and SHOW GLOBAL VARIABLES need no privilege.
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'exporter'@'%';
GRANT SELECT ON performance_schema.* TO 'exporter'@'%';
-- The exporter keeps at most 2 connections per target (max_connections); 3 leaves room for one
-- manual session and stops a runaway client from exhausting the server.
ALTER USER 'exporter'@'%' WITH MAX_USER_CONNECTIONS 3;
