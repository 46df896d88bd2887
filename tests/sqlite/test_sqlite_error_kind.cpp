// ErrorKind on real SQLite failures: a lock held by another connection is busy, a
// violated constraint is constraint_violation.
#include <catch2/catch.hpp>

#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using poolbench::ErrorKind;
using poolbench::QueryError;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
class KindTempDir {
public:
    KindTempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("poolbench-kind-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    KindTempDir(const KindTempDir&) = delete;
    KindTempDir& operator=(const KindTempDir&) = delete;
    ~KindTempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

template <typename Fn>
QueryError query_error(Fn&& fn) {
    try {
        fn();
    } catch (const QueryError& e) {
        return e;
    }
    FAIL("expected a QueryError, nothing was thrown");
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a real SQLITE_BUSY from a second connection on one file is kind busy", "[sqlite][error_kind]") {
    KindTempDir dir;
    auto driver = poolbench::make_driver("sqlite://" + dir.file("busy.db") + "?busy_timeout=0");
    auto holder = driver->connect(std::chrono::steady_clock::now() + 10s);
    auto other = driver->connect(std::chrono::steady_clock::now() + 10s);
    holder->execute("CREATE TABLE t (x INTEGER)");
    holder->execute("BEGIN IMMEDIATE");
    holder->execute("INSERT INTO t VALUES (1)");
    const QueryError e = query_error([&] { other->execute("BEGIN IMMEDIATE"); });
    INFO(e.what());
    CHECK(e.code().rfind("SQLITE_BUSY", 0) == 0);
    CHECK(e.kind() == ErrorKind::busy);
    CHECK(e.is_busy());
    CHECK_FALSE(e.broken());
    CHECK(poolbench::error_kind(e) == ErrorKind::busy);
    holder->execute("ROLLBACK");
}

TEST_CASE("a real SQLite constraint violation is kind constraint_violation", "[sqlite][error_kind]") {
    auto driver = poolbench::make_driver("sqlite::memory:");
    auto conn = driver->connect(std::chrono::steady_clock::now() + 10s);
    conn->execute("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)");
    conn->execute("INSERT INTO u (name) VALUES ('a')");
    const QueryError unique = query_error([&] { conn->execute("INSERT INTO u (name) VALUES ('a')"); });
    INFO(unique.what());
    CHECK(unique.code() == "SQLITE_CONSTRAINT_UNIQUE");
    CHECK(unique.kind() == ErrorKind::constraint_violation);
    CHECK_FALSE(unique.broken());
    const QueryError not_null = query_error([&] { conn->execute("INSERT INTO u (name) VALUES (NULL)"); });
    CHECK(not_null.kind() == ErrorKind::constraint_violation);
    // A wrong parameter count is the driver's own SQLITE_RANGE: other.
    const QueryError range = query_error([&] { (void)conn->query("SELECT ?, ?", {poolbench::Value{std::int64_t{1}}}); });
    CHECK(range.code() == "SQLITE_RANGE");
    CHECK(range.kind() == ErrorKind::other);
    // The connection is still fine.
    CHECK(conn->query("SELECT count(*) FROM u").int_at(0) == 1);
}
