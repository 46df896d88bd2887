// sqlite_connection.cpp — one SQLite connection (sqlite3 C API), made by
// SqliteDriver::connect() (sqlite_driver.cpp).
//
// Each connection caches its prepared statements by SQL text (at most
// max_cached_statements; beyond that an arbitrary entry is finalized to make room).
//
// Under a WriterGate turn (begin_write_turn() .. end_write_turn()), the WAL auto-checkpoint
// a commit triggers is deferred to after_write_turn(), which the gate's thread runs after
// the turn is given back: SQLite runs it inside COMMIT, after releasing the write lock, with
// two fdatasyncs (WAL, then database), so inside the turn it stalled every queued writer for
// milliseconds, while without a gate the next writer commits during it. Past twice the
// threshold it runs inside the turn again, so the WAL stays bounded (4 times the threshold
// plus a commit at most: deferring_wal_hook). A turn whose lease was moved out of its
// WriteLease ends when that lease comes back to the pool (reset(), needs_reset() says so;
// with reset_on_release off, at the connection's next turn).
//
// Under a turn, a statement whose write-lock upgrade fails with plain SQLITE_BUSY (a
// DEFERRED transaction that read first) is run again, waiting as SQLite's busy handler
// would, up to busy_timeout: SQLite calls no busy handler for an upgrade (in rollback-journal
// mode two upgraders would deadlock), but under a turn no other writer of this process
// exists, and the holder is one that lets go at once: a connection that read the WAL
// index header while a commit was writing it takes the WAL write lock to read it again
// (walIndexReadHdr), and the gate's thread, running its PASSIVE checkpoint while the next
// writer commits, is such a connection (upgrade_waits_out()).
#include "sqlite_connection.hpp"

#include "driver_text.hpp"
#include "error_kind.hpp"
#include "sqlite_codes.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace poolbench::internal::sqlite {

namespace {

constexpr std::size_t max_cached_statements = 256;

/// A prepared statement and how its SQLite parameter indexes map to our positions.
struct CachedStmt {
    StmtPtr stmt;
    std::vector<std::size_t> position;  ///< [sqlite index - 1] -> 0-based index into params
    std::size_t params_needed = 0;      ///< the highest position referenced + 1
};

/// Resets a statement and drops its bindings on every exit path, so a cached
/// statement never holds a read lock or a pointer into the caller's parameters.
class ResetGuard {
public:
    explicit ResetGuard(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    ResetGuard(const ResetGuard&) = delete;
    ResetGuard& operator=(const ResetGuard&) = delete;
    ~ResetGuard() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

private:
    sqlite3_stmt* stmt_;
};

class SqliteConnection final : public Connection {
public:
    explicit SqliteConnection(DbPtr db) : db_(std::move(db)) {}
    using Connection::query;  // the convenience overloads, hidden by the override below

    ~SqliteConnection() override {
        cache_.clear();  // finalize statements before the handle closes
    }

    void execute(std::string_view sql) override {
        bool multiple = false;
        if (CachedStmt* entry = lookup(sql, multiple)) {
            run(*entry, {}, nullptr, sql);
        } else if (multiple) {
            execute_each(sql);
        }
    }

    Rows query(std::string_view sql, std::span<const Value> params) override {
        Rows rows;
        bool multiple = false;
        CachedStmt* entry = lookup(sql, multiple);
        if (multiple) {
            throw UsageError("query() runs exactly one statement; use execute() for several, in: " + sql_excerpt(sql));
        }
        if (entry != nullptr) run(*entry, params, &rows, sql);  // else only whitespace or comments
        return rows;
    }

    bool ping() noexcept override {
        if (broken_) return false;
        try {
            constexpr std::string_view sql = "SELECT 1";
            bool multiple = false;
            CachedStmt* entry = lookup(sql, multiple);
            if (entry == nullptr) return false;
            run(*entry, {}, nullptr, sql);  // no Rows to allocate: success is the answer
            return true;
        } catch (...) {
            return false;
        }
    }

    void reset() override {
        // A turn that never ended (its lease was moved out of the WriteLease and returned on
        // its own): end it here, so the connection checkpoints as SQLite does again (and
        // PRAGMA wal_autocheckpoint reads its threshold, not 0), and run what it deferred.
        if (turn_open_ && end_write_turn() != TurnWork::none) after_write_turn();
        if (sqlite3_get_autocommit(db_.get()) != 0) return;
        execute("ROLLBACK");
    }

    [[nodiscard]] bool needs_reset() const noexcept override { return turn_open_ || in_transaction(); }

    void interrupt() noexcept override { sqlite3_interrupt(db_.get()); }

    [[nodiscard]] bool is_broken() const noexcept override { return broken_; }

    [[nodiscard]] bool in_transaction() const noexcept override { return sqlite3_get_autocommit(db_.get()) == 0; }

    // Under a WriterGate turn, the WAL auto-checkpoint of "main" waits for the turn's end
    // (see the header comment). The connection's own hook (SQLite's default one, set by
    // sqlite3_wal_autocheckpoint, whose argument is the frame threshold) is swapped for
    // deferring_wal_hook for the turn and put back at its end.
    void begin_write_turn() noexcept override {
        void* const previous = sqlite3_wal_hook(db_.get(), &SqliteConnection::deferring_wal_hook, this);
        // previous == this: a turn that never ended (its lease was moved out of the
        // WriteLease); the threshold saved then still holds.
        if (previous != this) autocheckpoint_frames_ = static_cast<int>(reinterpret_cast<std::intptr_t>(previous));
        checkpoint_due_ = TurnWork::none;
        turn_open_ = true;
    }

    [[nodiscard]] TurnWork end_write_turn() noexcept override {
        // Back to SQLite's own behaviour: the threshold from before the turn, or the one a
        // "PRAGMA wal_autocheckpoint" in the turn set (it replaced our hook; its argument
        // is the new threshold, 0 when it turned auto-checkpoints off).
        turn_open_ = false;
        void* const current = sqlite3_wal_hook(db_.get(), nullptr, nullptr);
        if (current != this) autocheckpoint_frames_ = static_cast<int>(reinterpret_cast<std::intptr_t>(current));
        sqlite3_wal_autocheckpoint(db_.get(), autocheckpoint_frames_);
        if (in_transaction()) checkpoint_due_ = TurnWork::none;  // the commit that ends it checkpoints
        return checkpoint_due_;
    }

    void after_write_turn() noexcept override {
        if (checkpoint_due_ == TurnWork::none) return;
        checkpoint_due_ = TurnWork::none;
        // What SQLite's default hook runs: PASSIVE, which never waits for a lock (no busy
        // handler) and copies what it can; a result other than OK (BUSY: another
        // connection is checkpointing) is as harmless here as it is there.
        (void)sqlite3_wal_checkpoint_v2(db_.get(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }

private:
    /// sqlite3_wal_hook callback during a write turn: called after a commit has released
    /// the write lock (but inside COMMIT, so inside the turn), with the WAL's frame count.
    /// Past the auto-checkpoint threshold N it defers one checkpoint of "main" to after
    /// the turn (TurnWork::after_turn: the gate's thread runs it). That checkpoint runs
    /// while writers append, so it cannot backfill the whole WAL, and SQLite restarts the
    /// WAL from its beginning only when one has: deferred checkpoints alone let the WAL grow
    /// without bound under sustained writes (as it does without a gate: 380-670 MB in 2 s
    /// in write_bench). So from wal_soft_factor * N frames on, the checkpoint runs here,
    /// inside the turn, as SQLite's own hook would: nobody else writes, it backfills
    /// everything, and the next writer restarts the WAL. If it cannot start because a
    /// checkpoint is running (the gate's thread), the next commit tries again, and from
    /// wal_hard_factor * N frames on it is due in the turn (TurnWork::in_turn: the gate
    /// waits for its thread, then runs it before giving the turn back). Any other
    /// checkpoint (another database, a second one in the same turn) runs here at once, as
    /// SQLite's would. (A lease moved out of its WriteLease is in a turn until it comes back
    /// to the pool: its first checkpoint past N waits for that, reset().)
    static int deferring_wal_hook(void* self, sqlite3* db, const char* name, int frames) noexcept {
        auto* const c = static_cast<SqliteConnection*>(self);
        if (c->autocheckpoint_frames_ <= 0 || frames < c->autocheckpoint_frames_) return SQLITE_OK;
        const bool main = std::string_view(name) == "main";
        const int n = c->autocheckpoint_frames_;
        if (main && c->checkpoint_due_ == TurnWork::none && frames / wal_soft_factor < n) {
            c->checkpoint_due_ = TurnWork::after_turn;
            return SQLITE_OK;
        }
        const int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        if (main && rc == SQLITE_BUSY && frames / wal_hard_factor >= n) c->checkpoint_due_ = TurnWork::in_turn;
        else if (main && rc == SQLITE_OK) c->checkpoint_due_ = TurnWork::none;  // done: nothing left
        return SQLITE_OK;
    }

    /// How long a statement under a turn has waited for the write lock (upgrade_waits_out).
    struct UpgradeWait {
        int attempts = 0;
        std::chrono::steady_clock::time_point deadline{};
    };

    /// A statement failed with `rc`. True, after waiting, when it should run again: under
    /// a write turn, inside a transaction that holds a read snapshot but did not get the
    /// write lock (plain SQLITE_BUSY: the snapshot is still the newest, or it would be
    /// BUSY_SNAPSHOT), while busy_timeout has not run out. The waits are those of SQLite's
    /// busy handler (1, 2, 5, ... 100 ms), after a first retry that only yields (made even
    /// with busy_timeout 0): the holder under a turn keeps the lock for microseconds (see
    /// the header comment). Out of a turn a failed upgrade fails at once, as SQLite's does:
    /// the holder is a writer, and once it commits, running again fails with BUSY_SNAPSHOT.
    bool upgrade_waits_out(int rc, UpgradeWait& w) {
        if (!turn_open_ || rc != SQLITE_BUSY || sqlite3_extended_errcode(db_.get()) != SQLITE_BUSY) return false;
        if (sqlite3_get_autocommit(db_.get()) != 0 || sqlite3_txn_state(db_.get(), nullptr) != SQLITE_TXN_READ)
            return false;
        constexpr std::array<int, 12> delays_ms{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
        const auto now = std::chrono::steady_clock::now();
        if (w.attempts == 0) {
            // The first retry only yields, even with busy_timeout 0. (Reading the timeout
            // runs a PRAGMA, which clears the error: only this first time, which never
            // fails, so the error a later refusal reports is the statement's own.)
            w.deadline = now + std::chrono::milliseconds(busy_timeout_ms());
            std::this_thread::yield();
        } else {
            if (now >= w.deadline) return false;
            const auto i = std::min(static_cast<std::size_t>(w.attempts - 1), delays_ms.size() - 1);
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                std::chrono::milliseconds(delays_ms[i]), w.deadline - now));
        }
        ++w.attempts;
        return true;
    }

    /// The connection's busy_timeout (ms): what the driver or a PRAGMA set last.
    int busy_timeout_ms() noexcept {
        sqlite3_stmt* raw = nullptr;
        if (sqlite3_prepare_v2(db_.get(), "PRAGMA busy_timeout", -1, &raw, nullptr) != SQLITE_OK) return 0;
        const StmtPtr stmt(raw);
        return sqlite3_step(stmt.get()) == SQLITE_ROW ? sqlite3_column_int(stmt.get(), 0) : 0;
    }

    /// Throws QueryError for the failure `rc` of `sql`.
    [[noreturn]] void fail(int rc, std::string_view sql) {
        int code = sqlite3_extended_errcode(db_.get());
        if ((code & 0xff) != (rc & 0xff)) code = rc;
        std::string message = sqlite3_errmsg(db_.get());
        message += " (";
        message += code_string(code);
        message += ") in: ";
        message += sql_excerpt(sql);
        raise(code, message);
    }

    /// The driver's one failure path: classifies `code` (and remembers a broken
    /// connection) and throws the QueryError.
    [[noreturn]] void raise(int code, const std::string& message) {
        const ErrorKind kind = sqlite_error_kind(code, false);
        const bool broken = kind == ErrorKind::connection_lost;
        if (broken) broken_ = true;
        throw QueryError(message, code_string(code), code, broken, kind);
    }

    /// Prepares the first statement of `sql`; returns what follows it.
    std::string_view prepare(std::string_view sql, unsigned flags, StmtPtr& out) {
        out.reset();
        if (sql.empty()) return {};
        if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
            throw UsageError("SQL text of " + std::to_string(sql.size()) + " bytes is too long for SQLite");
        }
        sqlite3_stmt* raw = nullptr;
        const char* tail = nullptr;
        const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), flags, &raw, &tail);
        out.reset(raw);
        if (rc != SQLITE_OK) fail(rc, sql);
        const auto used = tail == nullptr ? sql.size() : static_cast<std::size_t>(tail - sql.data());
        return sql.substr(used);
    }

    /// True when `tail` holds another statement (not just whitespace, ';' or comments).
    bool has_statement(std::string_view tail) {
        const bool blank = std::all_of(tail.begin(), tail.end(), [](char c) {
            return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';';
        });
        if (blank) return false;
        try {
            StmtPtr probe;
            prepare(tail, 0, probe);
            return probe != nullptr;
        } catch (const QueryError&) {
            return true;  // a bad second statement: let the caller report it
        }
    }

    /// The cached statement for `sql`, preparing it on first use (see prepare_cached).
    CachedStmt* lookup(std::string_view sql, bool& multiple) {
        if (auto it = cache_.find(sql); it != cache_.end()) return &it->second;  // no allocation
        return prepare_cached(sql, multiple);
    }

    /// Prepares and caches a single-statement `sql`. Returns nullptr when `sql` holds no
    /// statement, or (with multiple = true) more than one.
    CachedStmt* prepare_cached(std::string_view sql, bool& multiple) {
        StmtPtr stmt;
        const std::string_view tail = prepare(sql, SQLITE_PREPARE_PERSISTENT, stmt);
        if (!stmt) return nullptr;
        if (has_statement(tail)) {
            multiple = true;
            return nullptr;
        }
        CachedStmt entry;
        const int count = sqlite3_bind_parameter_count(stmt.get());
        entry.position.reserve(static_cast<std::size_t>(count));
        for (int i = 1; i <= count; ++i) {
            std::size_t pos = static_cast<std::size_t>(i);
            if (const char* name = sqlite3_bind_parameter_name(stmt.get(), i)) {
                // "?NNN" already has index NNN; "$N", ":N", "@N" bind to position N.
                const std::string_view n(name);
                std::size_t value = 0;
                const auto* first = n.data() + 1;
                const auto* last = n.data() + n.size();
                const auto [ptr, ec] = std::from_chars(first, last, value);
                if (n.size() < 2 || ec != std::errc() || ptr != last || value == 0) {
                    throw UsageError("named SQL parameter '" + std::string(n) +
                                     "' is not supported; use positional $1, ?1 or ? in: " + sql_excerpt(sql));
                }
                pos = value;
            }
            entry.position.push_back(pos - 1);
            entry.params_needed = std::max(entry.params_needed, pos);
        }
        entry.stmt = std::move(stmt);
        if (cache_.size() >= max_cached_statements) cache_.erase(cache_.begin());
        auto [it, inserted] = cache_.emplace(std::string(sql), std::move(entry));
        (void)inserted;
        return &it->second;
    }

    /// Binds `params`, steps through the rows (into `out` when not null) and resets.
    void run(CachedStmt& entry, std::span<const Value> params, Rows* out, std::string_view sql) {
        sqlite3_stmt* stmt = entry.stmt.get();
        if (params.size() != entry.params_needed) {
            raise(SQLITE_RANGE, "the statement takes " + std::to_string(entry.params_needed) + " parameter" +
                                    (entry.params_needed == 1 ? "" : "s") + " but " +
                                    std::to_string(params.size()) + (params.size() == 1 ? " was" : " were") +
                                    " given (SQLITE_RANGE) in: " + sql_excerpt(sql));
        }
        const ResetGuard guard(stmt);
        for (std::size_t i = 0; i < entry.position.size(); ++i) {
            const int index = static_cast<int>(i + 1);
            const Value& v = params[entry.position[i]];
            int rc = SQLITE_OK;
            if (const auto* iv = std::get_if<std::int64_t>(&v)) {
                rc = sqlite3_bind_int64(stmt, index, *iv);
            } else if (const auto* dv = std::get_if<double>(&v)) {
                rc = sqlite3_bind_double(stmt, index, *dv);
            } else if (const auto* sv = std::get_if<std::string>(&v)) {
                // SQLITE_STATIC: params outlive the statement's use; the guard clears bindings.
                rc = sqlite3_bind_text64(stmt, index, sv->data(), sv->size(), SQLITE_STATIC, SQLITE_UTF8);
            } else {
                rc = sqlite3_bind_null(stmt, index);
            }
            if (rc != SQLITE_OK) fail(rc, sql);
        }
        UpgradeWait wait;
        while (true) {
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) {
                // No row yet: the statement stopped at its start, so running it again is
                // running it later (a RETURNING row comes after the write lock).
                if ((out == nullptr || out->rows.empty()) && upgrade_waits_out(rc, wait)) {
                    sqlite3_reset(stmt);
                    continue;
                }
                fail(rc, sql);
            }
            if (out == nullptr) continue;
            // Read after stepping: a schema change re-prepares the statement inside step,
            // and "SELECT *" may then have a different number of columns.
            const int columns = sqlite3_column_count(stmt);
            auto& row = out->rows.emplace_back();
            row.reserve(static_cast<std::size_t>(columns));
            for (int c = 0; c < columns; ++c) {
                switch (sqlite3_column_type(stmt, c)) {
                    case SQLITE_INTEGER: row.emplace_back(std::int64_t{sqlite3_column_int64(stmt, c)}); break;
                    case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(stmt, c)); break;
                    case SQLITE_TEXT: {
                        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                        const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
                        row.emplace_back(text ? std::string(text, bytes) : std::string());
                        break;
                    }
                    case SQLITE_BLOB: {
                        const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, c));
                        const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
                        row.emplace_back(blob ? std::string(blob, bytes) : std::string());
                        break;
                    }
                    default: row.emplace_back(std::monostate{}); break;
                }
            }
        }
    }

    /// Runs several statements one after another, uncached.
    void execute_each(std::string_view sql) {
        std::string_view rest = sql;
        while (!rest.empty()) {
            StmtPtr stmt;
            const std::string_view tail = prepare(rest, 0, stmt);
            if (stmt) {
                UpgradeWait wait;
                bool row = false;  // as in run(): only a statement that stopped at its start runs again
                while (true) {
                    const int rc = sqlite3_step(stmt.get());
                    if (rc == SQLITE_DONE) break;
                    if (rc == SQLITE_ROW) {
                        row = true;
                        continue;
                    }
                    if (!row && upgrade_waits_out(rc, wait)) {
                        sqlite3_reset(stmt.get());
                        continue;
                    }
                    fail(rc, rest);
                }
            }
            if (tail.size() >= rest.size()) break;  // no progress: only trailing blanks
            rest = tail;
        }
    }

    DbPtr db_;
    std::unordered_map<std::string, CachedStmt, StringHash, std::equal_to<>> cache_;
    /// The WAL lengths, in multiples of the auto-checkpoint threshold, from which a write
    /// turn's checkpoint runs inside the turn if it can start (soft), and waits for the
    /// gate's thread's checkpoint to end if it cannot (hard): deferring_wal_hook. Soft 1 is
    /// SQLite's own behaviour, which cost a gate 40% of its throughput in write_bench. At
    /// 100 writers (write_bench, 2 s, two runs each) hard 2 gave 0.74x/0.84x of ungated
    /// (insert) and hard 4 0.99x/0.91x, the worst write 33-48 vs 31-65 ms.
    static constexpr int wal_soft_factor = 2;
    static constexpr int wal_hard_factor = 4;
    bool broken_ = false;
    bool turn_open_ = false;  // between begin_write_turn() and end_write_turn() (or reset())
    int autocheckpoint_frames_ = 0;  // the WAL auto-checkpoint threshold, saved by begin_write_turn()
    TurnWork checkpoint_due_ = TurnWork::none;  // a checkpoint of main deferred to after_write_turn()
};

}  // namespace

DbPtr open_db(const std::string& name, int flags, int& rc, std::string& message) {
    sqlite3* raw = nullptr;
    rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return db;
}

std::unique_ptr<Connection> make_sqlite_connection(DbPtr db) {
    return std::make_unique<SqliteConnection>(std::move(db));
}

}  // namespace poolbench::internal::sqlite
