// preflight_checks.hpp — checks the scenario engine's preflight makes on its one connection
// before any load, each turning a run that could only fail into one line and exit 3
// (DESIGN.md: "the database could not be used").
//
//   check_writable   a workload that writes, against a server that refuses this session's
//                    writes: PostgreSQL's transaction_read_only (default_transaction_read_only
//                    set for the role, database or URL, or a hot standby), MariaDB's
//                    read_only (for an account without READ ONLY ADMIN) or a read-only
//                    session. Every write would otherwise fail, one by one, as the load's
//                    errors.
//
// Thread-safety: reentrant; the connection is the caller's, used by this thread only.
#pragma once

#include <poolbench/connection.hpp>
#include <poolbench/url.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace poolbench::cli {

/// The server refuses the workload's writes (check_writable). Its message is one line
/// without the database's name (the preflight's DatabaseUnusable adds it).
class ServerReadOnly : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Why this session may not write, in one line; none when it may, or when the server does
/// not say (SQLite, null://, a MariaDB URL without a database). Asks the server: one query
/// (PostgreSQL), or one statement that would delete nothing from a table that does not
/// exist (MariaDB: refused with 1290/1792 before the table is looked up when writes are).
[[nodiscard]] std::optional<std::string> read_only_refusal(Connection& conn, Backend backend);

/// Throws ServerReadOnly when one of `workloads` writes and read_only_refusal finds a reason.
/// `Workloads`: a range of objects with `bool writes() const` (the scenario's Workloads).
template <class Workloads>
void check_writable(Connection& conn, Backend backend, const Workloads& workloads) {
    for (const auto& w : workloads) {
        if (!w.writes()) continue;
        if (auto why = read_only_refusal(conn, backend)) throw ServerReadOnly(*why);
        return;
    }
}

}  // namespace poolbench::cli
