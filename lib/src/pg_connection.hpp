// pg_connection.hpp — one PostgreSQL connection (PgConnection, in pg_connection.cpp) and
// the socket waits it shares with the driver's connect() (not installed).
//
// Thread-safety: a connection is used by one thread at a time (the pool's contract), except
// interrupt(), which any thread may call (PQcancel on a cancel handle is thread-safe).
// ms_between and wait_socket are reentrant.
#pragma once

#include "pg_url_options.hpp"
#include "poolbench/connection.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::internal::pg {

using Clock = std::chrono::steady_clock;

struct ConnCloser {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;

struct CancelFreer {
    void operator()(PGcancel* c) const noexcept { PQfreeCancel(c); }
};
using CancelPtr = std::unique_ptr<PGcancel, CancelFreer>;

/// Whole milliseconds from `from` to `to`, rounded to nearest (0 when `to` is earlier).
[[nodiscard]] long long ms_between(Clock::time_point from, Clock::time_point to);

/// Waits until `fd` is ready for `events` or `deadline` (nullopt: no limit). Returns
/// 1 ready, 0 timed out, -1 error (errno set). Restarts after signals.
[[nodiscard]] int wait_socket(int fd, short events, std::optional<Clock::time_point> deadline);

/// The Connection over `conn`, connected; `cancel` is its cancel handle (for interrupt()
/// and statement_timeout). `named`: query() prepares each SQL text once as pb_N and reuses
/// it; otherwise every call is parsed unnamed (PQsendQueryParams), as a pooler needs.
[[nodiscard]] std::unique_ptr<Connection> make_pg_connection(std::shared_ptr<const PgSettings> settings, ConnPtr conn,
                                                             CancelPtr cancel, bool named);

/// A result as text: column names, and rows (NULL as "").
struct TextResult {
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;
};

/// The last result of `sql` run over the simple query protocol (no prepared statement,
/// named or unnamed: what PgBouncer's console accepts) on a connection no PgConnection
/// owns, by `deadline`. nullopt when the statement failed (`error` gets the server's
/// message); ConnectError when the connection failed or the deadline passed.
[[nodiscard]] std::optional<TextResult> simple_rows(PGconn* conn, const char* sql, Clock::time_point deadline,
                                                    const PgSettings& settings, std::string& error);

/// Whether a pooler sits between this connection and the server, handing its statements
/// to server processes of its own choosing: PgBouncer (and the like) answers the startup
/// with a BackendKeyData of its own (a random process id), so the pid libpq holds
/// (PQbackendPID) is not the one `SELECT pg_backend_pid()` returns. A server that cannot
/// answer that counts as pooled (the safe side: statements then run unnamed). One round
/// trip, simple protocol; ConnectError as simple_rows.
[[nodiscard]] bool behind_pooler(PGconn* conn, Clock::time_point deadline, const PgSettings& settings);

}  // namespace poolbench::internal::pg
