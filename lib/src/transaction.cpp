// transaction.cpp — Transaction (BEGIN/COMMIT/ROLLBACK and savepoints) and the retry loop.
#include "poolbench/transaction.hpp"

#include "poolbench/writer_gate.hpp"

#include "backoff.hpp"

#include <thread>

namespace poolbench {

std::string_view to_string(SqliteMode m) noexcept {
    switch (m) {
    case SqliteMode::deferred: return "DEFERRED";
    case SqliteMode::immediate: return "IMMEDIATE";
    case SqliteMode::exclusive: return "EXCLUSIVE";
    }
    return "DEFERRED";
}

std::string_view to_string(Isolation i) noexcept {
    switch (i) {
    case Isolation::server_default: return "server default";
    case Isolation::read_committed: return "READ COMMITTED";
    case Isolation::repeatable_read: return "REPEATABLE READ";
    case Isolation::serializable: return "SERIALIZABLE";
    }
    return "server default";
}

std::string begin_statement(Backend backend, const TxOptions& options) {
    switch (backend) {
    case Backend::sqlite:
        if (options.read_only || options.deferrable) {
            throw UsageError(std::string("transaction option ") + (options.read_only ? "read_only" : "deferrable") +
                             " is not supported on SQLite; open the database read-only instead "
                             "(sqlite:///path.db?query_only=1) or leave the option off");
        }
        return "BEGIN " + std::string(to_string(options.sqlite_mode));
    case Backend::postgresql: {
        std::string sql = "BEGIN";
        if (options.isolation != Isolation::server_default) {
            sql += " ISOLATION LEVEL ";
            sql += to_string(options.isolation);
        }
        if (options.read_only) sql += " READ ONLY";
        if (options.deferrable) sql += " DEFERRABLE";
        return sql;
    }
    case Backend::mariadb: {
        // The isolation level applies to the next transaction only: one round trip, two statements.
        std::string sql;
        if (options.isolation != Isolation::server_default) {
            sql = "SET TRANSACTION ISOLATION LEVEL " + std::string(to_string(options.isolation)) + "; ";
        }
        if (options.deferrable) {
            throw UsageError("transaction option deferrable is PostgreSQL's; MariaDB has no such mode: leave it off");
        }
        sql += options.read_only ? "START TRANSACTION READ ONLY" : "START TRANSACTION";
        return sql;
    }
    case Backend::null: break;
    }
    return "BEGIN";
}

namespace {

Connection& connection_of(Lease& lease) {
    if (!lease) throw UsageError("Transaction: the lease is empty (moved from or released); acquire a connection first");
    return lease.connection();
}

}  // namespace

Transaction::Transaction(Lease& lease, Backend backend, TxOptions options)
    : lease_(&lease), conn_(&connection_of(lease)), backend_(backend) {
    const std::string begin = begin_statement(backend, options);
    if (conn_->in_transaction()) {
        throw UsageError("Transaction: the connection is already in a transaction; nest a savepoint with "
                         "Transaction(outer) instead of beginning a second outermost transaction");
    }
    conn_->execute(begin);
    // A backend that reports transactions (SQLite, PostgreSQL) says so right after BEGIN; the
    // null driver and fakes that do not are simply not checked later.
    tracks_state_ = conn_->in_transaction();
}

Transaction::Transaction(Lease& lease, const Pool& pool, TxOptions options)
    : Transaction(lease, pool.driver().backend(), options) {}

Transaction::Transaction(Transaction& outer)
    : lease_(outer.lease_), conn_(outer.conn_), outer_(&outer), backend_(outer.backend_), depth_(outer.depth_ + 1),
      tracks_state_(outer.tracks_state_) {
    outer.check_usable("begin a nested transaction (savepoint)");
    Transaction* root = &outer;
    while (root->outer_ != nullptr) root = root->outer_;
    savepoint_ = "pb_sp_" + std::to_string(root->next_savepoint_++);
    conn_->execute("SAVEPOINT " + savepoint_);
    outer.inner_ = this;
}

Transaction::~Transaction() {
    if (state_ == State::open || state_ == State::failed) quietly_rollback();
    if (outer_ != nullptr && outer_->inner_ == this) outer_->inner_ = nullptr;
}

bool Transaction::owns_connection() const noexcept {
    try {
        if (!*lease_ || &lease_->connection() != conn_) return false;
    } catch (...) {
        return false;  // revoked by leak reclaim: not ours any more
    }
    return !tracks_state_ || conn_->in_transaction();
}

void Transaction::check_usable(std::string_view what) {
    // The common case costs a few compares and one virtual call; messages are built only
    // on the way to a throw.
    const auto name = [this] { return depth_ == 0 ? std::string("the transaction") : "savepoint " + savepoint_; };
    if (state_ != State::open) {
        throw UsageError("Transaction: cannot " + std::string(what) + ": " + name() + " has already " +
                         (state_ == State::committed     ? "been committed"
                          : state_ == State::rolled_back ? "been rolled back"
                                                         : "ended (its commit failed)"));
    }
    if (inner_ != nullptr) {
        throw UsageError("Transaction: cannot " + std::string(what) + " through " + name() + " while savepoint " +
                         inner_->savepoint_ + " inside it is open; use the innermost transaction, or end it first");
    }
    // connection() throws LeaseRevoked when leak reclaim took the connection: let it.
    if (!*lease_ || &lease_->connection() != conn_) {
        throw UsageError("Transaction: cannot " + std::string(what) + ": the lease it began on no longer holds its "
                         "connection (released, and the pool rolled the work back; or moved from); a transaction "
                         "must end before its lease lets go of the connection");
    }
    if (tracks_state_ && !conn_->in_transaction()) {
        throw UsageError("Transaction: cannot " + std::string(what) + ": the connection is no longer in a "
                         "transaction (ended by a COMMIT/ROLLBACK run on the lease directly, or rolled back by "
                         "the database after an error)");
    }
}

void Transaction::execute(std::string_view sql) {
    check_usable("run a statement");
    conn_->execute(sql);
}

Rows Transaction::query(std::string_view sql, std::span<const Value> params) {
    check_usable("run a query");
    return conn_->query(sql, params);
}

Connection& Transaction::connection() {
    check_usable("use the connection");
    return *conn_;
}

void Transaction::finish(State to) noexcept {
    state_ = to;
    if (outer_ != nullptr && outer_->inner_ == this) outer_->inner_ = nullptr;
}

void Transaction::commit() {
    check_usable("commit");
    if (poisoned_) {
        // An inner savepoint's work could not be undone: committing would keep it.
        const std::exception_ptr error = poisoned_;
        rollback();
        std::rethrow_exception(error);
    }
    try {
        conn_->execute(depth_ == 0 ? std::string("COMMIT") : "RELEASE SAVEPOINT " + savepoint_);
    } catch (...) {
        finish(State::failed);
        throw;
    }
    finish(State::committed);
}

void Transaction::rollback() {
    check_usable("roll back");
    try {
        if (depth_ == 0) {
            conn_->execute("ROLLBACK");
        } else {
            conn_->execute("ROLLBACK TO SAVEPOINT " + savepoint_);
            conn_->execute("RELEASE SAVEPOINT " + savepoint_);
        }
    } catch (...) {
        finish(State::failed);
        if (depth_ > 0 && outer_ != nullptr) outer_->poison(std::current_exception());
        throw;
    }
    finish(State::rolled_back);
}

void Transaction::poison(std::exception_ptr error) noexcept {
    for (Transaction* t = this; t != nullptr; t = t->outer_) {
        if (!t->poisoned_) t->poisoned_ = error;
    }
}

void Transaction::abandon() noexcept {
    if (inner_ != nullptr) inner_->abandon();
    inner_ = nullptr;
    outer_ = nullptr;
    state_ = State::rolled_back;
}

void Transaction::quietly_rollback() noexcept {
    // Inner transactions still open (destroyed out of order) end with us: the database
    // rolls their savepoints back along with ours.
    if (inner_ != nullptr) {
        inner_->abandon();
        inner_ = nullptr;
    }
    const State was = state_;
    finish(State::rolled_back);
    if (!owns_connection()) return;  // the lease went back: the pool's reset rolled back
    if (was == State::failed && depth_ == 0 && !tracks_state_) return;  // nothing we can tell is open
    try {
        if (depth_ == 0) {
            conn_->execute("ROLLBACK");
        } else {
            conn_->execute("ROLLBACK TO SAVEPOINT " + savepoint_);
            conn_->execute("RELEASE SAVEPOINT " + savepoint_);
        }
    } catch (...) {
        // Never throw from here. The connection's state is unknown: close it rather than
        // reuse it, and make sure the outer transactions cannot commit the inner work.
        if (outer_ != nullptr) outer_->poison(std::current_exception());
        lease_->invalidate();
    }
}

bool is_retryable(const std::exception& e) noexcept {
    const auto* q = dynamic_cast<const QueryError*>(&e);
    if (q == nullptr) return false;
    switch (q->kind()) {
        case ErrorKind::busy:
        case ErrorKind::serialization_failure:
        case ErrorKind::deadlock: return true;
        case ErrorKind::lock_timeout: return q->code() == "1205";
        default: return false;
    }
}

namespace internal {

void run_with_retries(Pool& pool, const TxOptions& options, TxBodyRef body, const RetryPolicy& policy,
                      WriterGate* gate) {
    if (const std::string why = policy.why_invalid(); !why.empty()) throw UsageError("RetryPolicy::" + why);
    const Backend backend = pool.driver().backend();
    for (int attempt = 1;; ++attempt) {
        try {
            WriteLease write;
            Lease plain;
            Lease* lease = &plain;
            if (gate != nullptr) {
                write = gate->acquire(pool);
                lease = &write.lease();
            } else {
                plain = pool.acquire();
            }
            Transaction tx(*lease, backend, options);
            body(tx);
            if (tx.is_open()) tx.commit();
            return;
        } catch (const QueryError& e) {
            if (!is_retryable(e) || attempt >= policy.max_attempts) throw;
        }
        // The lease and the gate turn are back: back off without holding either.
        pool.note_transaction_retry();
        const auto pause = backoff(policy, attempt);
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
}

}  // namespace internal

}  // namespace poolbench
