// pg_pooler.hpp — diagnose's part about a pooler in front of a PostgreSQL server (not
// installed): whether there is one (the driver's probe, pg_connection.hpp's
// behind_pooler), and when PgBouncer's console answers the URL's user, its settings.
//
// Thread-safety: reentrant; open_console opens a connection of its own.
#pragma once

#include "pg_connection.hpp"
#include "pg_url_options.hpp"
#include "poolbench/diagnostics.hpp"

#include <functional>

namespace poolbench::internal::pg {

struct PoolerProbe {
    bool pooled = false;  ///< the driver found a pooler in front (its first connection's probe)
    PrepareMode prepare = PrepareMode::automatic;  ///< the URL's prepare=
    /// Opens the URL with database "pgbouncer" (PgBouncer's console); throws ConnectError.
    std::function<ConnPtr()> open_console;
};

/// Adds to `d`: the fact connection_pooler ("none", "pgbouncer" or "unknown"); when the
/// console answers, pgbouncer_version, pgbouncer_pool_mode, pgbouncer_pool_size (the URL's
/// database's pool_size, else default_pool_size), pgbouncer_max_client_conn,
/// pgbouncer_max_db_connections, pgbouncer_max_user_connections; and first among the
/// findings, `pgbouncer` (or `connection_pooler` when the pooler is not PgBouncer's kind)
/// saying what it means for pool sizing, plus `pgbouncer_prepare_on` (a problem) when
/// prepare=on meets transaction or statement pooling.
void diagnose_pooler(const PoolerProbe& probe, const PgSettings& settings, Clock::time_point deadline, Diagnosis& d);

/// The database and user the URL's connections log in as (libpq's defaults applied: the
/// database defaults to the user; the user to the OS user). Either may be "" when unknown.
[[nodiscard]] std::pair<std::string, std::string> url_database_and_user(const PgSettings& settings);

}  // namespace poolbench::internal::pg
