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
// How connections cache their prepared statements: sqlite_connection.cpp.
//
// The files of this backend, by job:
//   sqlite_driver.cpp       SqliteDriver: where the database is, connect(), connect_read_only()
//   sqlite_connection.cpp   SqliteConnection: statements and their cache
//   sqlite_options.cpp      the URL's options: busy_timeout, mode, immutable, PRAGMAs
//   sqlite_open_errors.cpp  what to check when a database cannot be opened or set up
//   sqlite_codes.cpp        result code names, and which break a connection
//   sqlite_diagnose.cpp     diagnose()
#include "drivers_internal.hpp"
#include "driver_text.hpp"
#include "sqlite_codes.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_diagnose.hpp"
#include "sqlite_open_errors.hpp"
#include "sqlite_options.hpp"
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::internal {

namespace sqlite {
namespace {

class SqliteDriver final : public Driver {
public:
    explicit SqliteDriver(const DbUrl& url) {
        describe_ = !url.redacted.empty() ? url.redacted
                    : url.memory          ? std::string("sqlite::memory:")
                                          : "sqlite://" + url.path;
        options_ = parse_sqlite_options(url, describe_);
        flags_ = (options_.read_only || options_.immutable ? SQLITE_OPEN_READONLY
                                                           : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
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
            force_wal_ = !options_.journal_from_url && !options_.read_only && !options_.immutable &&
                         !poolbench::sqlite_file_journal_mode(open_name_);
            if (options_.immutable) {
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
                               "; " + open_hint(display_, memory_, options_.read_only) + ")");
        }
        // Setting up may wait for locks (switching to WAL does); do not wait past the deadline.
        const auto now = std::chrono::steady_clock::now();
        long long remaining_ms = 0;
        if (deadline > now) {
            remaining_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        }
        sqlite3_busy_timeout(db.get(),
                             static_cast<int>(std::min<long long>(remaining_ms, options_.busy_timeout_ms)));
        if (force_wal_) run_setup(db.get(), "PRAGMA journal_mode=WAL", display_);
        run_setup(db.get(), "PRAGMA foreign_keys=ON", display_);
        if (!options_.read_only && !options_.immutable) run_setup(db.get(), "PRAGMA synchronous=NORMAL", display_);
        for (const auto& sql : options_.pragmas) run_setup(db.get(), sql, display_);
        if (options_.journal_from_url) {
            // SQLite answers with the mode it is in: a mode it could not set is not silently kept.
            const std::string now_in = lower(query_text(db.get(), "PRAGMA journal_mode"));
            if (now_in != options_.journal_asked && !(memory_ && now_in == "memory")) {
                throw ConnectError("SQLite database '" + display_ + "' stays in journal_mode=" + now_in + " although " +
                                   "the URL asks for " + options_.journal_asked +
                                   " (a read-only file or directory, or another "
                                   "connection in the file, can keep it from changing)");
            }
        }
        // Reads the header even when nothing above did (e.g. in memory): a file that is
        // not a database fails here, at connect, not at the first query.
        run_setup(db.get(), "PRAGMA schema_version", display_);
        sqlite3_busy_timeout(db.get(), options_.busy_timeout_ms);
        return make_sqlite_connection(std::move(db));
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
        if (options_.immutable || sqlite_quiet_wal_file(path)) name += "&immutable=1";
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
        sqlite3_busy_timeout(db.get(),
                             static_cast<int>(std::min<long long>(remaining_ms, options_.busy_timeout_ms)));
        return make_sqlite_connection(std::move(db));
    }

    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override {
        SqliteSetup setup;
        setup.path = memory_ ? std::string() : display_;
        setup.memory = memory_;
        setup.read_only = options_.read_only;
        setup.immutable = options_.immutable;
        setup.busy_timeout_ms = options_.busy_timeout_ms;
        setup.journal_asked = options_.journal_from_url ? options_.journal_asked : std::string();
        setup.pragmas = options_.pragmas;
        return sqlite_diagnose(*this, setup, options);
    }

private:
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

    std::string describe_;
    std::string display_;    ///< the database in messages: absolute path or sqlite::memory:
    std::string open_name_;  ///< what sqlite3_open_v2 gets
    int flags_ = 0;
    bool memory_ = false;
    bool force_wal_ = false;  ///< a file poolbench creates: WAL
    SqliteOptions options_;   ///< the URL's options, checked
    DbPtr keeper_;            ///< keeps an in-memory database alive
};

}  // namespace
}  // namespace sqlite

std::shared_ptr<Driver> make_sqlite_driver(const DbUrl& url) { return std::make_shared<sqlite::SqliteDriver>(url); }

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
