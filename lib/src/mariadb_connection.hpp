// mariadb_connection.hpp — one MariaDB / MySQL connection (MariaConnection, in
// mariadb_connection.cpp) and the handle type it shares with the driver (not installed).
//
// Thread-safety: a connection is used by one thread at a time (the pool's contract), except
// interrupt(), which any thread may call: it opens a side connection of its own and sends
// KILL QUERY for this connection's server thread id (read-only after connect).
#pragma once

#include "mariadb_url_options.hpp"
#include "poolbench/connection.hpp"

#include <mysql.h>

#include <chrono>
#include <memory>

namespace poolbench::internal::mariadb {

using Clock = std::chrono::steady_clock;

struct MysqlCloser {
    void operator()(MYSQL* m) const noexcept { mysql_close(m); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlCloser>;

/// Opens a connection (mariadb_driver.cpp) with the settings' options, giving up at `deadline` (the
/// non-blocking connect API, waiting in poll()). Throws ConnectError with one line that
/// names the URL (redacted) and the reason, never the password.
[[nodiscard]] MysqlPtr open_connection(const MariaSettings& s, Clock::time_point deadline);

/// Applies (mariadb_driver.cpp) the session settings (autocommit, statement timeout) to a new or reset session.
/// Throws ConnectError.
void apply_session(MYSQL* m, const MariaSettings& s);

/// The Connection over `conn`, connected and set up by apply_session.
[[nodiscard]] std::unique_ptr<Connection> make_maria_connection(std::shared_ptr<const MariaSettings> settings,
                                                                MysqlPtr conn);

}  // namespace poolbench::internal::mariadb
