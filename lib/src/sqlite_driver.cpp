// sqlite_driver.cpp — the SQLite backend (sqlite3 C API).
//
// A file poolbench creates is put in WAL mode; an existing file keeps its journal mode
// unless the URL's journal_mode=X asks otherwise (and then the mode SQLite actually set is
// checked). Connections get foreign keys on, synchronous=NORMAL and a busy timeout (5000
// ms, or the URL's busy_timeout=MS). mode=ro opens the file read-only (nothing is created
// or converted; SQLite still needs to create -shm beside a WAL file unless it exists) and
// immutable=1 tells SQLite the file cannot change (no locks, no -wal/-shm at all). Every
// other URL option name=value runs as PRAGMA name=value on each new connection. Options are checked when the driver is
// made: names must be identifiers SQLite knows (it silently ignores unknown pragmas, so a
// typo would otherwise pass unnoticed) and values must match [A-Za-z0-9_.-]+.
//
// sqlite::memory: uses the memdb VFS under a name unique to the driver
// ("/poolbench-mem-<pid>-<n>"): memdb databases whose name starts with '/' are shared by
// every connection of the process that opens that name, and they use ordinary locking,
// so busy_timeout and transactions behave as with a file. The driver keeps one
// connection open so the database outlives a pool that has closed all its connections.
//
// Each connection caches its prepared statements by SQL text (at most
// max_cached_statements; beyond that an arbitrary entry is finalized to make room).
#include "driver_text.hpp"
#include "drivers_internal.hpp"
#include "error_kind.hpp"
#include "sqlite_diagnose.hpp"
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace poolbench::internal {

namespace {

struct DbCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

constexpr int default_busy_timeout_ms = 5000;
constexpr std::size_t max_cached_statements = 256;

/// The name of an SQLite (extended) result code, "" when unknown.
std::string_view code_name(int code) noexcept {
#define PB_CODE(name) \
    case SQLITE_##name: return "SQLITE_" #name;
    switch (code) {
        PB_CODE(OK) PB_CODE(ERROR) PB_CODE(INTERNAL) PB_CODE(PERM) PB_CODE(ABORT) PB_CODE(BUSY) PB_CODE(LOCKED)
        PB_CODE(NOMEM) PB_CODE(READONLY) PB_CODE(INTERRUPT) PB_CODE(IOERR) PB_CODE(CORRUPT) PB_CODE(NOTFOUND)
        PB_CODE(FULL) PB_CODE(CANTOPEN) PB_CODE(PROTOCOL) PB_CODE(EMPTY) PB_CODE(SCHEMA) PB_CODE(TOOBIG)
        PB_CODE(CONSTRAINT) PB_CODE(MISMATCH) PB_CODE(MISUSE) PB_CODE(NOLFS) PB_CODE(AUTH) PB_CODE(FORMAT)
        PB_CODE(RANGE) PB_CODE(NOTADB) PB_CODE(NOTICE) PB_CODE(WARNING) PB_CODE(ROW) PB_CODE(DONE)
        // Extended codes.
        PB_CODE(ERROR_MISSING_COLLSEQ) PB_CODE(ERROR_RETRY) PB_CODE(ERROR_SNAPSHOT)
        PB_CODE(IOERR_READ) PB_CODE(IOERR_SHORT_READ) PB_CODE(IOERR_WRITE) PB_CODE(IOERR_FSYNC)
        PB_CODE(IOERR_DIR_FSYNC) PB_CODE(IOERR_TRUNCATE) PB_CODE(IOERR_FSTAT) PB_CODE(IOERR_UNLOCK)
        PB_CODE(IOERR_RDLOCK) PB_CODE(IOERR_DELETE) PB_CODE(IOERR_BLOCKED) PB_CODE(IOERR_NOMEM)
        PB_CODE(IOERR_ACCESS) PB_CODE(IOERR_CHECKRESERVEDLOCK) PB_CODE(IOERR_LOCK) PB_CODE(IOERR_CLOSE)
        PB_CODE(IOERR_DIR_CLOSE) PB_CODE(IOERR_SHMOPEN) PB_CODE(IOERR_SHMSIZE) PB_CODE(IOERR_SHMLOCK)
        PB_CODE(IOERR_SHMMAP) PB_CODE(IOERR_SEEK) PB_CODE(IOERR_DELETE_NOENT) PB_CODE(IOERR_MMAP)
        PB_CODE(IOERR_GETTEMPPATH) PB_CODE(IOERR_CONVPATH) PB_CODE(IOERR_VNODE) PB_CODE(IOERR_AUTH)
        PB_CODE(IOERR_BEGIN_ATOMIC) PB_CODE(IOERR_COMMIT_ATOMIC) PB_CODE(IOERR_ROLLBACK_ATOMIC)
        PB_CODE(IOERR_DATA) PB_CODE(IOERR_CORRUPTFS)
        PB_CODE(LOCKED_SHAREDCACHE) PB_CODE(LOCKED_VTAB)
        PB_CODE(BUSY_RECOVERY) PB_CODE(BUSY_SNAPSHOT) PB_CODE(BUSY_TIMEOUT)
        PB_CODE(CANTOPEN_NOTEMPDIR) PB_CODE(CANTOPEN_ISDIR) PB_CODE(CANTOPEN_FULLPATH)
        PB_CODE(CANTOPEN_CONVPATH) PB_CODE(CANTOPEN_DIRTYWAL) PB_CODE(CANTOPEN_SYMLINK)
        PB_CODE(CORRUPT_VTAB) PB_CODE(CORRUPT_SEQUENCE) PB_CODE(CORRUPT_INDEX)
        PB_CODE(READONLY_RECOVERY) PB_CODE(READONLY_CANTLOCK) PB_CODE(READONLY_ROLLBACK)
        PB_CODE(READONLY_DBMOVED) PB_CODE(READONLY_CANTINIT) PB_CODE(READONLY_DIRECTORY)
        PB_CODE(ABORT_ROLLBACK)
        PB_CODE(CONSTRAINT_CHECK) PB_CODE(CONSTRAINT_COMMITHOOK) PB_CODE(CONSTRAINT_FOREIGNKEY)
        PB_CODE(CONSTRAINT_FUNCTION) PB_CODE(CONSTRAINT_NOTNULL) PB_CODE(CONSTRAINT_PRIMARYKEY)
        PB_CODE(CONSTRAINT_TRIGGER) PB_CODE(CONSTRAINT_UNIQUE) PB_CODE(CONSTRAINT_VTAB)
        PB_CODE(CONSTRAINT_ROWID) PB_CODE(CONSTRAINT_PINNED) PB_CODE(CONSTRAINT_DATATYPE)
        PB_CODE(NOTICE_RECOVER_WAL) PB_CODE(NOTICE_RECOVER_ROLLBACK)
        PB_CODE(WARNING_AUTOINDEX) PB_CODE(AUTH_USER) PB_CODE(OK_LOAD_PERMANENTLY) PB_CODE(OK_SYMLINK)
        default: return {};
    }
#undef PB_CODE
}

/// The name for QueryError::code(): the extended name when known, else the primary
/// code's name (so a prefix check on the name still finds the primary code), else "SQLITE_<number>".
std::string code_string(int code) {
    if (auto name = code_name(code); !name.empty()) return std::string(name);
    if (auto name = code_name(code & 0xff); !name.empty()) return std::string(name);
    return "SQLITE_" + std::to_string(code);
}

/// Which failures leave a connection unusable, so the pool must close it: those whose
/// kind is connection_lost (IOERR*, CORRUPT*, NOTADB, CANTOPEN*, READONLY_DBMOVED; the
/// table and the reasons are in error_kind.cpp, sqlite_error_kind).
bool is_broken_code(int code) noexcept { return sqlite_error_kind(code, false) == ErrorKind::connection_lost; }

bool is_identifier(std::string_view s) noexcept {
    if (s.empty()) return false;
    const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(s.front())) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool is_pragma_value(std::string_view s) noexcept {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
}

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
        if (sqlite3_get_autocommit(db_.get()) != 0) return;
        execute("ROLLBACK");
    }

    void interrupt() noexcept override { sqlite3_interrupt(db_.get()); }

    [[nodiscard]] bool is_broken() const noexcept override { return broken_; }

    [[nodiscard]] bool in_transaction() const noexcept override { return sqlite3_get_autocommit(db_.get()) == 0; }

private:
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
        while (true) {
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) fail(rc, sql);
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
                while (true) {
                    const int rc = sqlite3_step(stmt.get());
                    if (rc == SQLITE_DONE) break;
                    if (rc != SQLITE_ROW) fail(rc, rest);
                }
            }
            if (tail.size() >= rest.size()) break;  // no progress: only trailing blanks
            rest = tail;
        }
    }

    DbPtr db_;
    std::unordered_map<std::string, CachedStmt, StringHash, std::equal_to<>> cache_;
    bool broken_ = false;
};

/// Opens `name` with `flags`; returns the handle and SQLite's result code.
DbPtr open_db(const std::string& name, int flags, int& rc, std::string& message) {
    sqlite3* raw = nullptr;
    rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return db;
}

/// The names SQLite accepts after PRAGMA, or an empty set if it cannot list them.
std::set<std::string, std::less<>> known_pragmas() {
    std::set<std::string, std::less<>> names;
    int rc = SQLITE_OK;
    std::string message;
    DbPtr db = open_db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, rc, message);
    if (rc != SQLITE_OK) return names;
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), "PRAGMA pragma_list", -1, &raw, nullptr) != SQLITE_OK) return names;
    const StmtPtr stmt(raw);
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
        if (text != nullptr) names.emplace(text);
    }
    return names;
}

class SqliteDriver final : public Driver {
public:
    explicit SqliteDriver(const DbUrl& url) {
        describe_ = !url.redacted.empty() ? url.redacted
                    : url.memory          ? std::string("sqlite::memory:")
                                          : "sqlite://" + url.path;
        parse_options(url);
        flags_ = (read_only_ || immutable_ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
        if (url.memory) {
            static std::atomic<std::uint64_t> counter{0};
            memory_ = true;
            display_ = "sqlite::memory:";
            open_name_ = "file:/poolbench-mem-" + std::to_string(::getpid()) + "-" +
                         std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "?vfs=memdb";
            flags_ |= SQLITE_OPEN_URI;
            int rc = SQLITE_OK;
            std::string message;
            keeper_ = open_db(open_name_, flags_, rc, message);
            if (rc != SQLITE_OK) {
                throw ConnectError("cannot create the in-memory SQLite database: " + message + " (" +
                                   code_string(rc) + ")");
            }
        } else {
            if (url.path.empty()) throw ConfigError("SQLite URL '" + describe_ + "' has no file path");
            // Resolve once, so every connection opens the same file whatever the working
            // directory is later, and a name like "file:x" is never read as a URI.
            std::error_code ec;
            const auto absolute = std::filesystem::absolute(url.path, ec);
            open_name_ = ec ? url.path : absolute.string();
            display_ = open_name_;
            if (std::filesystem::is_directory(open_name_, ec)) {
                throw ConfigError("SQLite URL '" + describe_ + "' names a directory (" + display_ +
                                  "); name a database file in it");
            }
            // WAL only for a file poolbench creates: an existing one keeps its mode unless
            // the URL asks (converting a user's file is not ours to decide).
            force_wal_ = !journal_from_url_ && !read_only_ && !immutable_ && !poolbench::sqlite_file_journal_mode(open_name_);
            if (immutable_) {
                open_name_ = "file:" + uri_escape(open_name_) + "?immutable=1";
                flags_ |= SQLITE_OPEN_URI;
            }
        }
    }

    std::unique_ptr<Connection> connect(std::chrono::steady_clock::time_point deadline) override {
        int rc = SQLITE_OK;
        std::string message;
        DbPtr db = open_db(open_name_, flags_, rc, message);
        if (rc != SQLITE_OK) {
            throw ConnectError("cannot open SQLite database '" + display_ + "': " + message + " (" + code_string(rc) +
                               "; " + open_hint() + ")");
        }
        // Setting up may wait for locks (switching to WAL does); do not wait past the deadline.
        const auto now = std::chrono::steady_clock::now();
        long long remaining_ms = 0;
        if (deadline > now) {
            remaining_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        }
        sqlite3_busy_timeout(db.get(), static_cast<int>(std::min<long long>(remaining_ms, busy_timeout_ms_)));
        if (force_wal_) setup(db.get(), "PRAGMA journal_mode=WAL");
        setup(db.get(), "PRAGMA foreign_keys=ON");
        if (!read_only_ && !immutable_) setup(db.get(), "PRAGMA synchronous=NORMAL");
        for (const auto& sql : pragmas_) setup(db.get(), sql);
        if (journal_from_url_) {
            // SQLite answers with the mode it is in: a mode it could not set is not silently kept.
            const std::string now_in = lower(query_text(db.get(), "PRAGMA journal_mode"));
            if (now_in != journal_asked_ && !(memory_ && now_in == "memory")) {
                throw ConnectError("SQLite database '" + display_ + "' stays in journal_mode=" + now_in + " although " +
                                   "the URL asks for " + journal_asked_ + " (a read-only file or directory, or another "
                                   "connection in the file, can keep it from changing)");
            }
        }
        // Reads the header even when nothing above did (e.g. in memory): a file that is
        // not a database fails here, at connect, not at the first query.
        setup(db.get(), "PRAGMA schema_version");
        sqlite3_busy_timeout(db.get(), busy_timeout_ms_);
        return std::make_unique<SqliteConnection>(std::move(db));
    }

    [[nodiscard]] Backend backend() const noexcept override { return Backend::sqlite; }
    [[nodiscard]] std::string describe() const override { return describe_; }

    /// Read-only, never created, no checkpoint on close; a WAL file nothing has open (no
    /// -wal) is opened immutable so that no -wal or -shm is created beside it. In memory:
    /// connect() (the database is this driver's own).
    std::unique_ptr<Connection> connect_read_only(std::chrono::steady_clock::time_point deadline) override {
        if (memory_) return connect(deadline);
        const std::string path = display_;
        std::string name = "file:" + uri_escape(path) + "?mode=ro";
        if (immutable_ || sqlite_quiet_wal_file(path)) name += "&immutable=1";
        int rc = SQLITE_OK;
        std::string message;
        DbPtr db = open_db(name, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                           rc, message);
        if (rc != SQLITE_OK) {
            throw ConnectError("cannot open SQLite database '" + display_ + "' read-only: " + message + " (" +
                               code_string(rc) + (::access(path.c_str(), F_OK) != 0 ? "; no such file" : "") + ")");
        }
        int off = 0;
        sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
        const auto now = std::chrono::steady_clock::now();
        const long long remaining_ms =
            deadline > now ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() : 0;
        sqlite3_busy_timeout(db.get(), static_cast<int>(std::min<long long>(remaining_ms, busy_timeout_ms_)));
        return std::make_unique<SqliteConnection>(std::move(db));
    }

    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override {
        SqliteSetup setup;
        setup.path = memory_ ? std::string() : display_;
        setup.memory = memory_;
        setup.read_only = read_only_;
        setup.immutable = immutable_;
        setup.busy_timeout_ms = busy_timeout_ms_;
        setup.journal_asked = journal_from_url_ ? journal_asked_ : std::string();
        setup.pragmas = pragmas_;
        return sqlite_diagnose(*this, setup, options);
    }

private:
    void parse_options(const DbUrl& url) {
        std::set<std::string, std::less<>> known;
        for (const auto& [name, value] : url.params) {
            const std::string key = lower(name);
            if (key == "busy_timeout") {
                int ms = -1;
                const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
                if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() || ms < 0) {
                    throw ConfigError("SQLite option busy_timeout='" + value + "' in '" + describe_ +
                                      "' must be a whole number of milliseconds from 0 to " +
                                      std::to_string(INT_MAX));
                }
                busy_timeout_ms_ = ms;
                continue;
            }
            if (key == "mode") {
                if (lower(value) != "ro" && lower(value) != "rw") {
                    throw ConfigError("SQLite option mode='" + value + "' in '" + describe_ +
                                      "' must be ro (read-only) or rw");
                }
                read_only_ = lower(value) == "ro";
                continue;
            }
            if (key == "immutable") {
                if (value != "0" && value != "1") {
                    throw ConfigError("SQLite option immutable='" + value + "' in '" + describe_ + "' must be 0 or 1");
                }
                immutable_ = value == "1";
                continue;
            }
            if (!is_identifier(name)) {
                throw ConfigError("SQLite option '" + name + "' in '" + describe_ +
                                  "' is not a PRAGMA name (letters, digits and '_', not starting with a digit)");
            }
            if (known.empty()) known = known_pragmas();
            if (!known.empty() && known.find(key) == known.end()) {
                throw ConfigError("SQLite option '" + name + "' in '" + describe_ +
                                  "' is not a PRAGMA this SQLite knows (see https://sqlite.org/pragma.html)");
            }
            if (!is_pragma_value(value)) {
                throw ConfigError("SQLite option " + name + "='" + value + "' in '" + describe_ +
                                  "' has a value SQLite options cannot take (allowed: letters, digits, '_', '.', '-')");
            }
            // SQLite ignores a value it does not know for these (journal_mode=bogus leaves the
            // mode as it was), so the URL would silently not mean what it says.
            static const std::array<std::pair<std::string_view, std::string_view>, 4> choices{{
                {"journal_mode", "delete truncate persist memory wal off"},
                {"synchronous", "off normal full extra 0 1 2 3"},
                {"locking_mode", "normal exclusive"},
                {"temp_store", "default file memory 0 1 2"},
            }};
            for (const auto& [pragma, values] : choices) {
                if (key != pragma || one_of(lower(value), values)) continue;
                throw ConfigError("SQLite option " + name + "='" + value + "' in '" + describe_ + "' is not one of " +
                                  comma_list(values));
            }
            if (key == "journal_mode") {
                journal_from_url_ = true;
                journal_asked_ = lower(value);
            }
            pragmas_.push_back("PRAGMA " + name + "=" + value);
        }
    }

    /// What to check when a file cannot be opened.
    [[nodiscard]] std::string open_hint() const {
        if (memory_) return "check available memory";
        const std::filesystem::path file(display_);
        const std::string dir = file.parent_path().empty() ? std::string(".") : file.parent_path().string();
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) return "directory " + dir + " does not exist";
        if (::access(display_.c_str(), F_OK) == 0 && ::access(display_.c_str(), W_OK) != 0 && !read_only_) {
            return "the file is read-only: open it with ?mode=ro for read workloads, or make it writable";
        }
        if (::access(dir.c_str(), W_OK) != 0) {
            return "directory " + dir + " is read-only, and SQLite creates its -wal, -shm or -journal files beside "
                   "the database: make it writable, or open an existing file with ?mode=ro (a WAL file also needs "
                   "its -shm) or ?immutable=1";
        }
        return "check that the directory exists and is writable";
    }

    static std::string query_text(sqlite3* db, const char* sql) {
        std::string out;
        sqlite3_exec(
            db, sql,
            [](void* target, int columns, char** values, char** /*names*/) {
                if (columns > 0 && values[0] != nullptr) *static_cast<std::string*>(target) = values[0];
                return 0;
            },
            &out, nullptr);
        return out;
    }

    static std::string uri_escape(const std::string& path) {
        std::string out;
        for (const char c : path) {
            if (c == '%' || c == '?' || c == '#') {
                char buf[4];
                std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
                out += buf;
            } else {
                out.push_back(c);
            }
        }
        return out;
    }

    /// Runs one setup statement; a failure is a ConnectError naming the database.
    void setup(sqlite3* db, const std::string& sql) const {
        char* err = nullptr;
        const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
        if (rc == SQLITE_OK) return;
        const std::string message = err != nullptr ? err : sqlite3_errmsg(db);
        sqlite3_free(err);
        const int code = sqlite3_extended_errcode(db) != SQLITE_OK ? sqlite3_extended_errcode(db) : rc;
        if ((code & 0xff) == SQLITE_NOTADB) {
            throw ConnectError("cannot open SQLite database '" + display_ + "': " + message +
                               " (SQLITE_NOTADB; the file exists but is not an SQLite database)");
        }
        throw ConnectError("cannot set up SQLite database '" + display_ + "': " + sql + " failed: " + message + " (" +
                           code_string(code) + ")");
    }

    std::string describe_;
    std::string display_;    ///< the database in messages: absolute path or sqlite::memory:
    std::string open_name_;  ///< what sqlite3_open_v2 gets
    int flags_ = 0;
    bool memory_ = false;
    bool read_only_ = false;         ///< mode=ro
    bool immutable_ = false;         ///< immutable=1
    bool journal_from_url_ = false;  ///< the URL sets journal_mode
    std::string journal_asked_;
    bool force_wal_ = false;         ///< a file poolbench creates: WAL
    int busy_timeout_ms_ = default_busy_timeout_ms;
    std::vector<std::string> pragmas_;  ///< "PRAGMA name=value" from the URL, in order
    DbPtr keeper_;                      ///< keeps an in-memory database alive
};

}  // namespace

std::shared_ptr<Driver> make_sqlite_driver(const DbUrl& url) { return std::make_shared<SqliteDriver>(url); }

std::string sqlite_code_string(int code) { return code_string(code); }

bool sqlite_is_broken_code(int code) noexcept { return is_broken_code(code); }

std::optional<int> sqlite_code_from_name(std::string_view name) {
    // Every name code_name knows, gathered once (thread-safe static initialisation).
    static const auto by_name = [] {
        std::unordered_map<std::string_view, int, StringHash, std::equal_to<>> out;
        for (int code = 0; code < (1 << 16); ++code) {
            if (const auto n = code_name(code); !n.empty()) out.emplace(n, code);
        }
        return out;
    }();
    if (const auto it = by_name.find(name); it != by_name.end()) return it->second;
    constexpr std::string_view prefix = "SQLITE_";
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    const std::string_view digits = name.substr(prefix.size());
    int code = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), code);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
    return code;
}

}  // namespace poolbench::internal

namespace poolbench {

std::optional<std::string> sqlite_file_journal_mode(const std::string& path) {
    // The database header: "SQLite format 3\0", then at offset 18 the file format write
    // version: 1 legacy (a rollback journal), 2 WAL.
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return std::nullopt;
    unsigned char header[20] = {};
    const std::size_t n = std::fread(header, 1, sizeof header, f);
    std::fclose(f);
    if (n < sizeof header || std::memcmp(header, "SQLite format 3", 16) != 0) return std::nullopt;
    if (header[18] == 2) return std::string("wal");
    return std::string("rollback");
}

}  // namespace poolbench
