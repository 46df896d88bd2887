// poolbench/connection.hpp — the narrow backend interface the pool drives.
//
// A Driver opens Connections; the pool asks a connection only to be pinged, reset,
// interrupted and closed (by destruction). Workloads use execute() and query().
//
// Thread-safety:
//   Driver: connect(), connect_read_only(), diagnose(), backend(), describe() and
//     prepared_statements() are safe to call from any number of threads at once (the pool
//     creates connections concurrently).
//   Connection: NOT thread-safe, with one exception: interrupt() may be called from any
//     thread while another thread runs a statement on the connection. The pool guarantees
//     that a leased connection is used by one lease holder at a time; the holder must not
//     share it between threads without its own synchronisation.
//   Destroying a Connection closes it; it must not be in use by another thread then.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace poolbench {

struct Diagnosis;
struct DiagnoseOptions;

/// Which database a Driver talks to. to_string gives the names reports print
/// ("sqlite", "postgresql", "mariadb", "null"). mariadb serves mysql:// and mariadb:// URLs
/// (MariaDB 10.11 is what is tested; MySQL speaks the same protocol but is untested).
enum class Backend { sqlite, postgresql, null, mariadb };

[[nodiscard]] std::string_view to_string(Backend b) noexcept;

/// One SQL value: NULL, integer, real or text.
using Value = std::variant<std::monostate, std::int64_t, double, std::string>;

/// The rows a query returned, each a vector of values in column order.
struct Rows {
    std::vector<std::vector<Value>> rows;
    [[nodiscard]] std::size_t size() const noexcept { return rows.size(); }
    [[nodiscard]] bool empty() const noexcept { return rows.empty(); }
    /// The integer in row r, column c. Throws UsageError when absent or not an integer.
    [[nodiscard]] std::int64_t int_at(std::size_t r, std::size_t c = 0) const;
};

class Connection {
public:
    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    virtual ~Connection() = default;

    /// Runs one or more statements that return no rows. Throws QueryError.
    virtual void execute(std::string_view sql) = 0;

    /// Runs one statement with positional parameters and returns its rows. Placeholders are
    /// the backend's own: $1 for PostgreSQL, ?1 or $1 for SQLite, ? for MariaDB.
    /// The prepared statement is cached per connection, keyed by the SQL text.
    virtual Rows query(std::string_view sql, std::span<const Value> params) = 0;
    Rows query(std::string_view sql) { return query(sql, {}); }
    Rows query(std::string_view sql, std::initializer_list<Value> params) {
        return query(sql, std::span<const Value>(params.begin(), params.size()));
    }

    /// Cheap liveness check. Never throws; false means the connection is unusable.
    virtual bool ping() noexcept = 0;

    /// Restores a clean session: rolls back an open or aborted transaction. Throws
    /// QueryError when that fails (the pool then destroys the connection).
    virtual void reset() = 0;

    /// Cancels the statement running on this connection, if any. Safe from any thread.
    virtual void interrupt() noexcept = 0;

    /// True once the connection is known to be unusable (server gone, I/O error).
    [[nodiscard]] virtual bool is_broken() const noexcept = 0;

    /// True while a transaction is open on the connection.
    [[nodiscard]] virtual bool in_transaction() const noexcept = 0;

    /// True when the pool must call reset() before the connection is reused: by default
    /// while a transaction is open; a backend with a configured reset statement (e.g.
    /// PostgreSQL's reset_query=DISCARD ALL) says true always.
    [[nodiscard]] virtual bool needs_reset() const noexcept { return in_transaction(); }

    /// What a write turn left to do when it ends (Connection::end_write_turn()).
    enum class TurnWork {
        none,        ///< nothing: the lease goes back, then the turn
        after_turn,  ///< work that need not delay the next writer: the turn goes back first
        in_turn,     ///< work that must finish before the next writer (after the gate's
                     ///< own after-turn work in progress, if any)
    };

    /// WriterGate's brackets around a write turn (default: nothing). begin_write_turn():
    /// the connection was leased under a turn. end_write_turn(): the turn is ending (no
    /// transaction may stay open for work to be due); says what a commit left to do that
    /// SQLite would have done inside COMMIT (the WAL auto-checkpoint, with its fdatasyncs).
    /// after_write_turn() does it, on the thread and at the moment the TurnWork says,
    /// while the lease is still held.
    virtual void begin_write_turn() noexcept {}
    [[nodiscard]] virtual TurnWork end_write_turn() noexcept { return TurnWork::none; }
    virtual void after_write_turn() noexcept {}
};

class Driver {
public:
    Driver() = default;
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;
    virtual ~Driver() = default;

    /// Opens a new connection, giving up at `deadline`. Throws ConnectError.
    virtual std::unique_ptr<Connection> connect(std::chrono::steady_clock::time_point deadline) = 0;

    /// The database it talks to (a decorator reports the backend it wraps; a driver for
    /// anything else, e.g. a test fake, says Backend::null: plain BEGIN / COMMIT).
    [[nodiscard]] virtual Backend backend() const noexcept = 0;

    /// The database this driver opens, as a URL with any password redacted.
    [[nodiscard]] virtual std::string describe() const = 0;

    /// How query() sends statements, for reports: "named" (each SQL text prepared once per
    /// connection and reused), "unnamed" (parsed with every call: PostgreSQL with prepare=off,
    /// or prepare=auto in front of a pooler such as PgBouncer), or "" when the backend does
    /// not say or has not decided yet (prepare=auto before its first connection). Default "".
    [[nodiscard]] virtual std::string prepared_statements() const { return {}; }

    /// Whether a connection pooler (PgBouncer and the like) sits between this driver and the
    /// server: PostgreSQL learns it on the driver's first connection (one round trip, once
    /// per driver, whatever prepare= says); nullopt before that, and for backends that do
    /// not say. Behind a pooler, server sessions are shared with the pooler's other clients
    /// and the server's max_connections does not bound this driver's connections.
    [[nodiscard]] virtual std::optional<bool> behind_pooler() const { return std::nullopt; }

    /// Opens a connection that cannot change the database, for looking only (diagnose's
    /// timings and its SELECT 1 ladder): SQLite opens the file read-only, creates nothing
    /// and never checkpoints on close; PostgreSQL's session is read-only. A database that
    /// does not exist is a ConnectError, never created. Default: connect().
    virtual std::unique_ptr<Connection> connect_read_only(std::chrono::steady_clock::time_point deadline) {
        return connect(deadline);
    }

    /// What the database is like right now and what a pool on it will meet, without
    /// changing anything (diagnostics.hpp). Throws ConnectError / QueryError when the
    /// database cannot be used at all; what can be gathered around a busy or locked
    /// database is a finding instead. Default: a minimal answer (no facts, no findings).
    [[nodiscard]] virtual Diagnosis diagnose(const DiagnoseOptions& options);
};

}  // namespace poolbench
