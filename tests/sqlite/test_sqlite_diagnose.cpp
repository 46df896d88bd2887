// test_sqlite_diagnose.cpp — the SQLite driver's look-only calls: connect_read_only()
// cannot change or create a database, and diagnose() reads a file without leaving -wal or
// -shm beside it. (The write lock held by another process needs another process: see
// tests/cli/test_cli_diagnose.cpp; F_GETLK does not report a process's own locks.)
#include "support/sqlite_support.hpp"

#include "poolbench/diagnostics.hpp"

using namespace sqltest;  // NOLINT(google-build-using-namespace): test file

namespace {

void make_db(const std::string& file, const char* journal) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
    const std::string sql = std::string("PRAGMA journal_mode=") + journal + "; CREATE TABLE t(x); INSERT INTO t VALUES (1)";
    REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_close(h) == SQLITE_OK);
}

std::string text_fact(const Diagnosis& d, const char* key) {
    const FactValue* v = d.fact(key);
    REQUIRE(v != nullptr);
    const auto* s = std::get_if<std::string>(v);
    REQUIRE(s != nullptr);
    return *s;
}

}  // namespace

TEST_CASE("sqlite connect_read_only creates nothing and refuses writes", "[sqlite][diagnose]") {
    TempDir dir;
    const std::string missing = dir.file("missing.db");
    auto driver = make_driver("sqlite://" + missing);
    CHECK_THROWS_AS(driver->connect_read_only(deadline()), ConnectError);
    CHECK_FALSE(fs::exists(missing));

    const std::string file = dir.file("rw.db");
    make_db(file, "DELETE");
    auto ro = make_driver("sqlite://" + file)->connect_read_only(deadline());
    CHECK(ro->query("SELECT count(*) FROM t").int_at(0) == 1);
    try {
        ro->execute("INSERT INTO t VALUES (2)");
        FAIL("a read-only connection wrote");
    } catch (const QueryError& e) {
        CHECK(e.kind() == ErrorKind::read_only);
    }
}

TEST_CASE("sqlite diagnose reads a closed WAL file without creating -wal or -shm", "[sqlite][diagnose]") {
    TempDir dir;
    const std::string file = dir.file("wal.db");
    make_db(file, "WAL");
    REQUIRE_FALSE(fs::exists(file + "-wal"));
    auto driver = make_driver("sqlite://" + file + "?busy_timeout=0");
    const Diagnosis d = driver->diagnose(DiagnoseOptions{});
    CHECK(text_fact(d, "journal_mode") == "wal");
    CHECK(text_fact(d, "write_lock") == "free");
    CHECK(std::get<std::int64_t>(*d.fact("table_count")) == 1);
    CHECK(d.single_writer);
    CHECK(d.local);
    CHECK_FALSE(d.free_connections);
    bool zero = false;
    for (const auto& f : d.findings) zero = zero || (f.code == "busy_timeout_zero" && f.level == FindingLevel::warn);
    CHECK(zero);
    // A connection for looking, too, leaves nothing behind.
    (void)driver->connect_read_only(deadline())->query("SELECT count(*) FROM t");
    CHECK_FALSE(fs::exists(file + "-wal"));
    CHECK_FALSE(fs::exists(file + "-shm"));
}
