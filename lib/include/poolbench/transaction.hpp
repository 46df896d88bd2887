// poolbench/transaction.hpp — RAII transactions, savepoints, and a retry helper.
//
// Usage:
//     poolbench::Lease conn = pool.acquire();
//     {
//         poolbench::Transaction tx(conn, pool, {.sqlite_mode = poolbench::SqliteMode::immediate});
//         tx.execute("UPDATE account SET balance = balance - 10 WHERE id = 1");
//         {
//             poolbench::Transaction inner(tx);           // SAVEPOINT pb_sp_1
//             inner.execute("INSERT INTO audit VALUES ('debit')");
//         }                                               // not committed: rolled back to pb_sp_1
//         tx.commit();                                    // the UPDATE is kept
//     }
//
//     // Re-runs the whole body on SQLITE_BUSY / SQLITE_LOCKED and PostgreSQL 40001 / 40P01:
//     std::int64_t n = poolbench::run_in_transaction(pool, {.isolation = poolbench::Isolation::serializable},
//         [](poolbench::Transaction& tx) {
//             const auto v = tx.query("SELECT n FROM counter").int_at(0);
//             tx.query("UPDATE counter SET n = $1", {v + 1});
//             return v + 1;
//         });
//
// Statements. The outermost Transaction issues BEGIN when constructed and COMMIT or
// ROLLBACK when it ends. The BEGIN depends on the backend:
//   sqlite      BEGIN DEFERRED | BEGIN IMMEDIATE | BEGIN EXCLUSIVE  (TxOptions::sqlite_mode).
//               SQLite transactions are always serializable, so `isolation` is satisfied
//               whatever it asks for and is not sent. read_only / deferrable are not
//               supported on SQLite (UsageError): open the database read-only instead
//               (sqlite:///path.db?query_only=1).
//   postgresql  BEGIN [ISOLATION LEVEL ...] [READ ONLY] [DEFERRABLE]; sqlite_mode is ignored.
//               Isolation::server_default sends no level (the server's
//               default_transaction_isolation applies).
//   null        plain BEGIN / COMMIT / ROLLBACK (also for any other driver, e.g. test fakes).
// A nested Transaction (constructed from its outer one, or outer.nested()) is a savepoint:
// SAVEPOINT pb_sp_N on construction, RELEASE SAVEPOINT pb_sp_N on commit(), and
// ROLLBACK TO SAVEPOINT pb_sp_N then RELEASE SAVEPOINT pb_sp_N on rollback. N counts the
// savepoints of one outermost transaction from 1, so names are unique at any depth.
// Rolling back an inner transaction keeps the outer one's work; committing an inner one
// only merges its work into the outer one (nothing is durable until the outermost commits).
//
// Rules (breaking one throws UsageError, naming what was wrong):
//   - commit() or rollback() once: a second call, or a statement through a Transaction
//     that has ended, throws.
//   - Only the innermost open Transaction may be used: while an inner one is open,
//     commit(), rollback(), execute(), query() and nesting through an outer one throw.
//     (Statements issued on the Lease directly are not checked: they run wherever the
//     connection is.)
//   - A Transaction must not outlive its lease's connection. Before each statement it checks
//     that the Lease still holds the connection it began on (and, for backends that report
//     it, that the connection is still in a transaction); if the lease was released or
//     moved from, or the transaction ended behind its back (a COMMIT run on the lease, or
//     the database rolling back after an error), the call throws instead of running on
//     someone else's connection. The destructor then does nothing: the pool's
//     reset-on-release has rolled the work back already. The Lease object itself (not
//     just its connection) must outlive the Transaction — which it does whenever both are
//     locals declared in that order.
//   - Beginning an outermost Transaction on a connection already in a transaction throws
//     (PostgreSQL would only warn, and our COMMIT would then commit the outer work).
//
// Failures. If BEGIN or SAVEPOINT fails, the constructor throws and nothing is open. If
// COMMIT fails (e.g. SQLITE_BUSY in rollback-journal mode, or PostgreSQL 40001 at commit),
// commit() throws the QueryError and the Transaction counts as ended; its destructor still
// rolls back whatever the database left open. If the destructor's rollback fails, the error
// is swallowed (destructors never throw) and the lease is invalidated so the connection is
// closed, not reused; for a savepoint, the outer transactions are marked failed too and
// their commit() rolls back and rethrows that error instead of committing.
//
// Thread-safety: a Transaction is used only by the thread that holds its Lease (like the
// Lease and the Connection, it is not safe to use from two threads at once; nothing in it
// is locked). Distinct Transactions on distinct leases are independent. Transactions are
// neither copyable nor movable (a nested one points at its outer one); destroy inner ones
// before outer ones — an outer one destroyed first rolls back everything and leaves the
// inner one ended (its destructor then does nothing). run_in_transaction() and
// is_retryable() may be called from any number of threads at once.
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"
#include "poolbench/pool.hpp"
#include "poolbench/url.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace poolbench {

class WriterGate;

/// SQLite's BEGIN modes. DEFERRED takes no lock until the first read (SHARED) or write
/// (RESERVED): a transaction that reads and then writes may fail its upgrade with
/// SQLITE_BUSY at once, whatever busy_timeout says (waiting could deadlock). IMMEDIATE
/// takes the write lock at BEGIN (waiting up to busy_timeout), so later writes cannot fail
/// busy. EXCLUSIVE also keeps readers out in rollback-journal mode (in WAL mode it acts
/// like IMMEDIATE).
enum class SqliteMode { deferred, immediate, exclusive };

/// PostgreSQL isolation levels. server_default sends no ISOLATION LEVEL clause.
enum class Isolation { server_default, read_committed, repeatable_read, serializable };

[[nodiscard]] std::string_view to_string(SqliteMode m) noexcept;
[[nodiscard]] std::string_view to_string(Isolation i) noexcept;

struct TxOptions {
    SqliteMode sqlite_mode = SqliteMode::deferred;   ///< SQLite only
    Isolation isolation = Isolation::server_default; ///< PostgreSQL only (SQLite is serializable)
    bool read_only = false;   ///< PostgreSQL READ ONLY: writes fail with SQLSTATE 25006
    bool deferrable = false;  ///< PostgreSQL DEFERRABLE (matters for SERIALIZABLE READ ONLY)
};

/// The BEGIN statement an outermost transaction with `options` sends on `backend`.
/// Throws UsageError for options the backend cannot honour (read_only on SQLite).
[[nodiscard]] std::string begin_statement(Backend backend, const TxOptions& options);

class Transaction {
public:
    /// Begins an outermost transaction on the lease's connection. Throws UsageError for an
    /// empty lease or one whose connection is already in a transaction, QueryError when
    /// BEGIN fails.
    Transaction(Lease& lease, Backend backend, TxOptions options = {});
    /// Same, with the backend taken from the pool's driver (Driver::backend()).
    Transaction(Lease& lease, const Pool& pool, TxOptions options = {});
    /// Begins a savepoint inside `outer`, which must be the innermost open transaction.
    explicit Transaction(Transaction& outer);
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    Transaction(Transaction&&) = delete;
    Transaction& operator=(Transaction&&) = delete;
    /// Rolls back if still open (see the Failures paragraph). Never throws.
    ~Transaction();

    /// A savepoint inside this transaction (same as Transaction(*this)).
    [[nodiscard]] Transaction nested() { return Transaction(*this); }

    /// COMMIT (outermost) or RELEASE SAVEPOINT (nested). Throws UsageError on misuse,
    /// QueryError when the database refuses.
    void commit();
    /// ROLLBACK (outermost) or ROLLBACK TO + RELEASE SAVEPOINT (nested).
    void rollback();

    /// Statements through the transaction: checked to be the innermost open one and to
    /// still own its connection, then passed to the connection.
    void execute(std::string_view sql);
    Rows query(std::string_view sql, std::span<const Value> params);
    Rows query(std::string_view sql) { return query(sql, std::span<const Value>{}); }
    Rows query(std::string_view sql, std::initializer_list<Value> params) {
        return query(sql, std::span<const Value>(params.begin(), params.size()));
    }
    /// The connection, after the same checks (for APIs that take a Connection&).
    Connection& connection();

    /// True until commit() or rollback() (or a failed commit) ends it.
    [[nodiscard]] bool is_open() const noexcept { return state_ == State::open; }
    /// 0 for the outermost transaction, 1 for its first savepoint level, ...
    [[nodiscard]] int depth() const noexcept { return depth_; }
    /// The savepoint's name ("" for the outermost transaction).
    [[nodiscard]] const std::string& savepoint() const noexcept { return savepoint_; }
    [[nodiscard]] Backend backend() const noexcept { return backend_; }

private:
    enum class State { open, committed, rolled_back, failed };

    /// Throws UsageError unless this transaction may issue a statement now.
    void check_usable(std::string_view what);
    /// True while the lease still holds our connection and (where the backend reports it)
    /// the connection is still in a transaction.
    [[nodiscard]] bool owns_connection() const noexcept;
    void finish(State to) noexcept;
    /// Rollback for the destructor and for an outer transaction ending with inner ones open.
    void quietly_rollback() noexcept;
    void poison(std::exception_ptr error) noexcept;
    void abandon() noexcept;

    Lease* lease_;
    Connection* conn_;
    Transaction* outer_ = nullptr;
    Transaction* inner_ = nullptr;  // the open savepoint directly inside this one
    Backend backend_;
    int depth_ = 0;
    std::uint32_t next_savepoint_ = 1;  // outermost only: the counter behind savepoint names
    bool tracks_state_ = false;         // the connection reports in_transaction() faithfully
    State state_ = State::open;
    std::string savepoint_;
    std::exception_ptr poisoned_;  // an inner rollback failed: commit must not succeed
};

/// True for errors a fresh attempt of the whole transaction may not hit: a QueryError whose
/// kind() is busy (SQLITE_BUSY* / SQLITE_LOCKED*), serialization_failure (PostgreSQL
/// 40001, MariaDB 1020) or deadlock (40P01, MariaDB 1213); and MariaDB's lock wait timeout
/// (1205: InnoDB gave up waiting for a row lock after innodb_lock_wait_timeout, and rolled
/// back only the statement). PostgreSQL's lock_timeout (55P03) is not retried: it is a cap
/// the application set on purpose.
[[nodiscard]] bool is_retryable(const std::exception& e) noexcept;

namespace internal {

/// A non-owning reference to a `void(Transaction&)` callable.
class TxBodyRef {
public:
    template <class F>
    explicit TxBodyRef(F& f) noexcept
        : obj_(static_cast<void*>(std::addressof(f))),
          call_([](void* o, Transaction& tx) { (*static_cast<F*>(o))(tx); }) {}
    void operator()(Transaction& tx) const { call_(obj_, tx); }

private:
    void* obj_;
    void (*call_)(void*, Transaction&);
};

/// The retry loop behind run_in_transaction (one attempt = lease, BEGIN, body, COMMIT).
void run_with_retries(Pool& pool, const TxOptions& options, TxBodyRef body, const RetryPolicy& policy,
                      WriterGate* gate);

}  // namespace internal

/// Acquires a lease (through `gate` when given: see writer_gate.hpp), begins a transaction
/// with `options`, runs `body(tx)`, commits, and returns the body's result. When the body,
/// BEGIN or COMMIT throws a retryable error (is_retryable), the transaction is rolled back,
/// the lease (and gate turn) returned, and after a backoff the whole body runs again on a
/// fresh lease; each re-run is counted by pool.note_transaction_retry(). Other exceptions
/// propagate at once (after rollback). When max_attempts runs are used up the last error
/// is rethrown. The body may run several times: keep side effects outside the database
/// idempotent. If the body commits or rolls back `tx` itself, that is respected.
/// `policy` (RetryPolicy, config.hpp; defaults 10 runs, 2 ms base, 250 ms max): up to
/// max_attempts runs in all. Throws UsageError, before running anything, for a policy
/// RetryPolicy::why_invalid() rejects (max_attempts < 1, negative base, max below base).
template <class Body>
std::invoke_result_t<Body&, Transaction&> run_in_transaction(Pool& pool, TxOptions options, Body&& body,
                                                             RetryPolicy policy = {}, WriterGate* gate = nullptr) {
    using Result = std::invoke_result_t<Body&, Transaction&>;
    if constexpr (std::is_void_v<Result>) {
        auto call = [&body](Transaction& tx) { body(tx); };
        internal::run_with_retries(pool, options, internal::TxBodyRef(call), policy, gate);
    } else {
        std::optional<Result> result;
        auto call = [&body, &result](Transaction& tx) {
            result.reset();
            result.emplace(body(tx));
        };
        internal::run_with_retries(pool, options, internal::TxBodyRef(call), policy, gate);
        return std::move(*result);
    }
}

}  // namespace poolbench
