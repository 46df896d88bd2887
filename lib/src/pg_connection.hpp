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
/// and statement_timeout).
[[nodiscard]] std::unique_ptr<Connection> make_pg_connection(std::shared_ptr<const PgSettings> settings, ConnPtr conn,
                                                             CancelPtr cancel);

}  // namespace poolbench::internal::pg
