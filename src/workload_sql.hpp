// workload_sql.hpp — the statements behind the workloads, one set per backend.
//
// Each backend gets its own text for each statement rather than one text rewritten on the
// fly: MariaDB takes '?' placeholders, has no ON CONFLICT and no '||' concatenation, and
// cannot index an unbounded TEXT column in a primary key. SQLite and PostgreSQL share one
// set (both read $1, ON CONFLICT and '||').
//
// Thread-safety: the sets are immutable constants; workload_sql is a pure function.
#pragma once

#include <poolbench/connection.hpp>

#include <string_view>

namespace poolbench::cli {

struct WorkloadSql {
    std::string_view create_accounts;
    std::string_view create_writes;
    std::string_view count_accounts;
    std::string_view seed_accounts;  ///< one parameter: how many rows 1..N must exist
    std::string_view seed_account;   ///< id, balance, filler: one row (kept when it exists); a shard's seeding
    std::string_view read;           ///< one parameter: the id
    std::string_view insert;         ///< run_id, worker, seq, payload
    std::string_view count_writes;   ///< one parameter: the run id
    std::string_view write_exists;   ///< run id, worker, seq: 1 when that row is there, else 0
    std::string_view table_exists;   ///< one parameter: the table name; returns a count
    std::string_view current_role;   ///< "" when the backend has no roles worth naming; as GRANT ... TO takes it
    std::string_view current_database;  ///< "" when a DBA's statements need no USE first (MariaDB: DATABASE())
    /// One parameter: a table name; returns its owner. Set where only the owner may drop a
    /// table (PostgreSQL: no privilege grants DROP); "" where DROP is a privilege to grant.
    std::string_view table_owner;
    /// Reads and inserts nothing, but needs SELECT and INSERT on poolbench_writes: setup's
    /// check that an existing table is usable ("" where there are no privileges).
    std::string_view probe_writes;
    std::string_view begin_write;    ///< a transaction that will write
    std::string_view begin_read;     ///< a transaction that reads first, then writes
    /// Whether a QueryError code means "permission denied" (the role may not create or seed).
    bool (*permission_denied)(std::string_view code) noexcept;
};

/// The statements for `backend` (null has none: every field empty).
[[nodiscard]] const WorkloadSql& workload_sql(Backend backend) noexcept;

}  // namespace poolbench::cli
