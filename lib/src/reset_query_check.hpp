// reset_query_check.hpp — a URL's reset_query, tried once per driver on a new connection
// before it is handed out (PostgreSQL and MariaDB drivers; not installed).
//
// reset() runs reset_query on every release, and a failure there destroys the connection:
// a query the server refuses (a typo, a function that does not exist) would close every
// connection on release while the load looked healthy. The driver's first connection runs
// it as a release would; a QueryError becomes a ConnectError naming reset_query and the
// server's error (so a pool cannot connect, and the CLI's preflight exits 3 on it). Until
// it has once succeeded, every connect tries again; afterwards no connect pays for it.
//
// Thread-safety: one ResetQueryCheck per driver, shared by its connecting threads: the
// flag is atomic (two first connects may both run the query; both results are used).
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"

#include <atomic>
#include <string>

namespace poolbench::internal {

class ResetQueryCheck {
public:
    /// Runs `query` on `c` unless it has succeeded before ("" : nothing to run). Throws
    /// ConnectError naming `redacted` (the URL, password removed) when the query fails.
    void check(Connection& c, const std::string& query, const std::string& redacted) {
        if (query.empty() || works_.load(std::memory_order_acquire)) return;
        try {
            c.execute(query);
            if (c.in_transaction()) c.execute("ROLLBACK");  // autocommit off: leave no transaction open
        } catch (const QueryError& e) {
            if (c.is_broken()) throw ConnectError("cannot connect to " + redacted + ": " + e.what());
            throw ConnectError("the URL's reset_query fails on " + redacted + ": " + e.what() +
                               " (every release would close its connection: fix the query or remove reset_query)");
        }
        works_.store(true, std::memory_order_release);
    }

private:
    std::atomic<bool> works_{false};
};

}  // namespace poolbench::internal
