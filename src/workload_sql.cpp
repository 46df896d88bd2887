// workload_sql.cpp — the workloads' statements per backend (workload_sql.hpp).
#include "workload_sql.hpp"

namespace poolbench::cli {

namespace {

bool sqlstate_42501(std::string_view code) noexcept { return code == "42501"; }

/// ER_DBACCESS_DENIED_ERROR 1044, ER_TABLEACCESS_DENIED_ERROR 1142, ER_SPECIFIC_ACCESS_DENIED 1227.
bool mariadb_denied(std::string_view code) noexcept { return code == "1044" || code == "1142" || code == "1227"; }

bool never(std::string_view /*code*/) noexcept { return false; }

// SQLite and PostgreSQL. The seed's WHERE keeps SQLite's parser from reading ON CONFLICT
// as a join constraint (documented SQLite upsert quirk).
constexpr WorkloadSql standard{
    .create_accounts = "CREATE TABLE IF NOT EXISTS poolbench_accounts ("
                       "id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, filler TEXT)",
    .create_writes = "CREATE TABLE IF NOT EXISTS poolbench_writes ("
                     "run_id TEXT NOT NULL, worker INTEGER NOT NULL, seq BIGINT NOT NULL, payload TEXT, "
                     "PRIMARY KEY (run_id, worker, seq))",
    .count_accounts = "SELECT count(*) FROM poolbench_accounts",
    .seed_accounts = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) "
                     "INSERT INTO poolbench_accounts (id, balance, filler) "
                     "SELECT i, 1000 + (i % 100), 'poolbench filler row ' || i FROM s WHERE true "
                     "ON CONFLICT (id) DO NOTHING",
    .seed_account = "INSERT INTO poolbench_accounts (id, balance, filler) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    .read = "SELECT balance FROM poolbench_accounts WHERE id = $1",
    .insert = "INSERT INTO poolbench_writes (run_id, worker, seq, payload) VALUES ($1, $2, $3, $4)",
    .count_writes = "SELECT count(*) FROM poolbench_writes WHERE run_id = $1",
    .write_exists = "SELECT count(*) FROM poolbench_writes WHERE run_id = $1 AND worker = $2 AND seq = $3",
    .table_exists = "",  // per backend below
    .current_role = "",
    .current_database = "",
    .table_owner = "",
    .probe_writes = "",
    .begin_write = "BEGIN",
    .begin_read = "BEGIN",
    .permission_denied = sqlstate_42501,
};

constexpr WorkloadSql with_catalog(WorkloadSql s, std::string_view exists, std::string_view role,
                                   std::string_view begin_write, std::string_view probe_writes) {
    s.table_exists = exists;
    s.current_role = role;
    s.begin_write = begin_write;
    s.probe_writes = probe_writes;
    return s;
}

// IMMEDIATE takes SQLite's write lock up front, so two writers queue on the busy timeout
// instead of deadlocking on a lock upgrade; the read-then-write transaction stays DEFERRED
// (its write lock is taken at the INSERT).
constexpr WorkloadSql sqlite = with_catalog(
    standard, "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'view') AND name = $1", "",
    "BEGIN IMMEDIATE", "");

constexpr WorkloadSql with_owner(WorkloadSql s, std::string_view owner) {
    s.table_owner = owner;
    return s;
}

constexpr WorkloadSql postgresql = with_owner(with_catalog(
    standard,
    "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = $1 AND relkind IN ('r', 'p', 'v') AND "
    "pg_catalog.pg_table_is_visible(oid)",
    "SELECT current_user", "BEGIN",
    "INSERT INTO poolbench_writes (run_id, worker, seq, payload) SELECT run_id, worker, seq, payload FROM "
    "poolbench_writes WHERE false"),
    "SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE relname = $1 AND "
    "relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(oid)");

// InnoDB tables; run_id is a bounded VARCHAR (a TEXT key column needs a prefix length).
// Recursive CTEs stop at 1000 iterations by default on both servers (MariaDB 10.6+:
// max_recursive_iterations; MySQL: cte_max_recursion_depth), so the seeding recurses only
// to 999 and crosses three such sequences: ids up to 10^9, and only about the rows asked
// for are generated (each level is bounded by the count).
constexpr WorkloadSql mariadb{
    .create_accounts = "CREATE TABLE IF NOT EXISTS poolbench_accounts ("
                       "id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, filler TEXT) ENGINE=InnoDB",
    .create_writes = "CREATE TABLE IF NOT EXISTS poolbench_writes ("
                     "run_id VARCHAR(64) NOT NULL, worker INT NOT NULL, seq BIGINT NOT NULL, payload TEXT, "
                     "PRIMARY KEY (run_id, worker, seq)) ENGINE=InnoDB",
    .count_accounts = "SELECT count(*) FROM poolbench_accounts",
    .seed_accounts = "INSERT IGNORE INTO poolbench_accounts (id, balance, filler) "
                     "WITH RECURSIVE n(v) AS (SELECT CAST(? AS SIGNED)), "
                     "d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 999) "
                     "SELECT k.id, 1000 + (k.id % 100), CONCAT('poolbench filler row ', k.id) FROM ("
                     "SELECT a.i * 1000000 + b.i * 1000 + c.i + 1 AS id FROM n, d a, d b, d c "
                     "WHERE a.i <= (n.v - 1) DIV 1000000 AND a.i * 1000 + b.i <= (n.v - 1) DIV 1000 "
                     "AND a.i * 1000000 + b.i * 1000 + c.i + 1 <= n.v) k",
    .seed_account = "INSERT IGNORE INTO poolbench_accounts (id, balance, filler) VALUES (?, ?, ?)",
    .read = "SELECT balance FROM poolbench_accounts WHERE id = ?",
    .insert = "INSERT INTO poolbench_writes (run_id, worker, seq, payload) VALUES (?, ?, ?, ?)",
    .count_writes = "SELECT count(*) FROM poolbench_writes WHERE run_id = ?",
    .write_exists = "SELECT count(*) FROM poolbench_writes WHERE run_id = ? AND worker = ? AND seq = ?",
    .table_exists = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                    "table_name = ?",
    // 'user'@'host', quoted as GRANT ... TO takes it (CURRENT_USER() says user@host; a user
    // name may itself hold an '@', a host never does).
    .current_role = "SELECT CONCAT(QUOTE(LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER()) - "
                    "CHAR_LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1)), '@', "
                    "QUOTE(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)))",
    // A DBA's client may have no default database: the advice starts with USE.
    .current_database = "SELECT DATABASE()",
    .table_owner = "",
    .probe_writes = "INSERT INTO poolbench_writes (run_id, worker, seq, payload) SELECT run_id, worker, seq, payload "
                    "FROM poolbench_writes WHERE 1 = 0",
    .begin_write = "START TRANSACTION",
    .begin_read = "START TRANSACTION",
    .permission_denied = mariadb_denied,
};

constexpr WorkloadSql none{.create_accounts = "", .create_writes = "", .count_accounts = "", .seed_accounts = "",
                           .seed_account = "", .read = "", .insert = "", .count_writes = "", .write_exists = "", .table_exists = "", .current_role = "",
                           .current_database = "", .table_owner = "", .probe_writes = "", .begin_write = "", .begin_read = "",
                           .permission_denied = never};

}  // namespace

const WorkloadSql& workload_sql(Backend backend) noexcept {
    switch (backend) {
        case Backend::sqlite: return sqlite;
        case Backend::postgresql: return postgresql;
        case Backend::mariadb: return mariadb;
        case Backend::null: break;
    }
    return none;
}

}  // namespace poolbench::cli
