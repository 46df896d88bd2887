// poolbench/diagnostics.hpp — what a backend can tell about its database right now,
// without changing it: typed facts, tables of live state, and findings with what to do.
//
// Driver::diagnose() (connection.hpp) returns a Diagnosis. Each backend gathers what its
// database exposes (SQLite: the file, its header, its lock bytes; PostgreSQL: the
// server's views and settings) and says, as findings, what a pool on it will meet. A
// backend of another kind implements the same call; the default answer is a minimal one
// (no facts, no findings).
//
// Nothing here writes: SQLite is opened read-only without a checkpoint on close (a WAL
// file that no process has open is read as immutable, so no -wal or -shm is created or
// rebuilt);
// PostgreSQL runs catalog and statistics queries in a read-only session.
//
// Thread-safety: plain value types (copy freely, not shared). Driver::diagnose() may be
// called from any thread, like connect().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace poolbench {

/// How serious a finding is: ok (as it should be), warn (advice), problem (a pool on this
/// database will fail or hang: a command that diagnoses exits 1).
enum class FindingLevel { ok, warn, problem };
[[nodiscard]] std::string_view to_string(FindingLevel level) noexcept;

struct Finding {
    FindingLevel level = FindingLevel::ok;
    std::string code;    ///< stable snake_case identifier, e.g. "write_lock_held"
    std::string text;    ///< what was found, one sentence with the figures
    std::string action;  ///< what to do about it ("" when nothing)
    /// What the finding is about, stable across runs (an application name, a relation,
    /// a setting; never a pid, count or duration): "" when the code says it all. A
    /// JUnit test case is named code + subject.
    std::string subject;
};

/// A fact's value, typed: absent, boolean, integer, real or text.
using FactValue = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

/// One named value (key: stable snake_case, units in the name: busy_timeout_ms, wal_bytes).
struct Fact {
    std::string key;
    FactValue value;
};

/// Rows of live state (sessions, lock waits, ...): stable snake_case key and columns.
struct FactTable {
    std::string key;
    std::string title;  ///< a heading for people
    std::vector<std::string> columns;
    std::vector<std::vector<FactValue>> rows;
};

/// What diagnose looks for.
struct DiagnoseOptions {
    /// Gathering gives up at this time (connects and statements are bounded by it).
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    /// A session idle in a transaction longer than this is a problem (a leaked transaction).
    std::chrono::milliseconds idle_in_transaction_after{60'000};
    /// A statement running longer than this is reported as long-running.
    std::chrono::milliseconds long_query_after{60'000};
    /// A session blocked on a lock for longer than this is a problem (shorter: a warning).
    std::chrono::milliseconds lock_wait_after{5'000};
    /// Longest statement text kept in a row (the rest is cut, with "...").
    std::size_t statement_chars = 120;
};

struct Diagnosis {
    std::string server;                ///< "PostgreSQL 15.4 on ...", "SQLite 3.40.1", "none"
    std::vector<Fact> facts;           ///< in print order
    std::vector<FactTable> tables;     ///< empty tables are left out
    std::vector<Finding> findings;     ///< in print order
    /// Connections this user could still open now: the server's free slots after the
    /// reserved ones, bounded by the role's and the database's limits. nullopt when the
    /// backend has no such limit (SQLite, null).
    std::optional<std::int64_t> free_connections;
    /// The database runs on this machine (a SQLite file; PostgreSQL on loopback or a Unix
    /// socket), so its core count is this machine's.
    bool local = false;
    /// At most one writer at a time (SQLite): more connections add readers, not writers.
    bool single_writer = false;

    /// The fact named `key`, or nullptr.
    [[nodiscard]] const FactValue* fact(std::string_view key) const noexcept;
    void add(std::string key, FactValue value) { facts.push_back(Fact{std::move(key), std::move(value)}); }
    void add(FindingLevel level, std::string code, std::string text, std::string action = {}, std::string subject = {}) {
        findings.push_back(Finding{level, std::move(code), std::move(text), std::move(action), std::move(subject)});
    }
};

}  // namespace poolbench
