// Helpers of the SQLite test files (tests/sqlite/): a temporary directory, a connect
// deadline, Value makers, and ways to run a statement or a connect and get its error.
#pragma once

#include <catch2/catch.hpp>

#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

namespace sqltest {

using namespace poolbench;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("poolbench-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + "-" +
                 std::to_string(counter_++));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    [[nodiscard]] const fs::path& path() const { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    static inline std::atomic<int> counter_{0};
    fs::path path_;
};

inline auto deadline() { return std::chrono::steady_clock::now() + 10s; }

inline Value I(std::int64_t v) { return Value{v}; }
inline Value S(std::string v) { return Value{std::move(v)}; }

inline std::string text_at(const Rows& rows, std::size_t r = 0, std::size_t c = 0) {
    REQUIRE(r < rows.size());
    REQUIRE(c < rows.rows[r].size());
    const auto* s = std::get_if<std::string>(&rows.rows[r][c]);
    REQUIRE(s != nullptr);
    return *s;
}

inline std::int64_t scalar(Connection& conn, std::string_view sql) { return conn.query(sql).int_at(0); }

/// Runs `sql` on `conn` and returns the QueryError it throws (fails the test if none).
inline QueryError query_error(Connection& conn, std::string_view sql, std::initializer_list<Value> params = {}) {
    try {
        (void)conn.query(sql, params);
    } catch (const QueryError& e) {
        return e;
    }
    FAIL("expected a QueryError from: " << sql);
    throw std::logic_error("unreachable");
}

inline std::string connect_error(Driver& driver) {
    try {
        (void)driver.connect(deadline());
    } catch (const ConnectError& e) {
        return e.what();
    }
    return "";
}

inline std::string config_error(const std::string& url) {
    try {
        (void)make_driver(url);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

inline bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

/// Runs `sql` on `conn` in another thread and interrupts it from this one until it ends.
/// No sleeps: an interrupt that lands before the statement starts is forgotten by
/// SQLite, so we keep interrupting until the worker reports that it finished.
inline QueryError interrupt_running(Connection& conn, const std::string& sql) {
    std::atomic<bool> done{false};
    std::string code;
    bool threw = false;
    std::thread worker([&] {
        try {
            (void)conn.query(sql);
        } catch (const QueryError& e) {
            code = e.code();
            threw = true;
        }
        done.store(true, std::memory_order_release);
    });
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!done.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < give_up) {
        conn.interrupt();
        std::this_thread::yield();
    }
    worker.join();
    REQUIRE(threw);
    return QueryError("interrupted", code, 0, false);
}

/// Makes a database file in a rollback journal mode with one row, as a user's app would.
inline void make_rollback_file(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (42);", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
}

}  // namespace sqltest
