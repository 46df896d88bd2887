// SQLite driver paths the main suite does not reach: the result-code name table and
// which codes break a connection, a statement failing while it runs in the middle of
// execute(), setup pragmas that fail at connect, and how a driver describes itself.
#include <catch2/catch.hpp>
#include "support/test_driver.hpp"

#include "../../lib/src/drivers_internal.hpp"
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace poolbench;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using internal::sqlite_code_string;
using internal::sqlite_is_broken_code;

namespace {

auto deadline() { return std::chrono::steady_clock::now() + 10s; }

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() /
                ("poolbench-more-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

// Every primary and extended result code this SQLite defines (sqlite3.h), with its name.
#define PB_NAMED(name) {SQLITE_##name, "SQLITE_" #name}
const std::vector<std::pair<int, std::string>> all_codes = {
    PB_NAMED(OK), PB_NAMED(ERROR), PB_NAMED(INTERNAL), PB_NAMED(PERM), PB_NAMED(ABORT), PB_NAMED(BUSY),
    PB_NAMED(LOCKED), PB_NAMED(NOMEM), PB_NAMED(READONLY), PB_NAMED(INTERRUPT), PB_NAMED(IOERR),
    PB_NAMED(CORRUPT), PB_NAMED(NOTFOUND), PB_NAMED(FULL), PB_NAMED(CANTOPEN), PB_NAMED(PROTOCOL),
    PB_NAMED(EMPTY), PB_NAMED(SCHEMA), PB_NAMED(TOOBIG), PB_NAMED(CONSTRAINT), PB_NAMED(MISMATCH),
    PB_NAMED(MISUSE), PB_NAMED(NOLFS), PB_NAMED(AUTH), PB_NAMED(FORMAT), PB_NAMED(RANGE), PB_NAMED(NOTADB),
    PB_NAMED(NOTICE), PB_NAMED(WARNING), PB_NAMED(ROW), PB_NAMED(DONE),
    PB_NAMED(ERROR_MISSING_COLLSEQ), PB_NAMED(ERROR_RETRY), PB_NAMED(ERROR_SNAPSHOT),
    PB_NAMED(IOERR_READ), PB_NAMED(IOERR_SHORT_READ), PB_NAMED(IOERR_WRITE), PB_NAMED(IOERR_FSYNC),
    PB_NAMED(IOERR_DIR_FSYNC), PB_NAMED(IOERR_TRUNCATE), PB_NAMED(IOERR_FSTAT), PB_NAMED(IOERR_UNLOCK),
    PB_NAMED(IOERR_RDLOCK), PB_NAMED(IOERR_DELETE), PB_NAMED(IOERR_BLOCKED), PB_NAMED(IOERR_NOMEM),
    PB_NAMED(IOERR_ACCESS), PB_NAMED(IOERR_CHECKRESERVEDLOCK), PB_NAMED(IOERR_LOCK), PB_NAMED(IOERR_CLOSE),
    PB_NAMED(IOERR_DIR_CLOSE), PB_NAMED(IOERR_SHMOPEN), PB_NAMED(IOERR_SHMSIZE), PB_NAMED(IOERR_SHMLOCK),
    PB_NAMED(IOERR_SHMMAP), PB_NAMED(IOERR_SEEK), PB_NAMED(IOERR_DELETE_NOENT), PB_NAMED(IOERR_MMAP),
    PB_NAMED(IOERR_GETTEMPPATH), PB_NAMED(IOERR_CONVPATH), PB_NAMED(IOERR_VNODE), PB_NAMED(IOERR_AUTH),
    PB_NAMED(IOERR_BEGIN_ATOMIC), PB_NAMED(IOERR_COMMIT_ATOMIC), PB_NAMED(IOERR_ROLLBACK_ATOMIC),
    PB_NAMED(IOERR_DATA), PB_NAMED(IOERR_CORRUPTFS),
    PB_NAMED(LOCKED_SHAREDCACHE), PB_NAMED(LOCKED_VTAB),
    PB_NAMED(BUSY_RECOVERY), PB_NAMED(BUSY_SNAPSHOT), PB_NAMED(BUSY_TIMEOUT),
    PB_NAMED(CANTOPEN_NOTEMPDIR), PB_NAMED(CANTOPEN_ISDIR), PB_NAMED(CANTOPEN_FULLPATH),
    PB_NAMED(CANTOPEN_CONVPATH), PB_NAMED(CANTOPEN_DIRTYWAL), PB_NAMED(CANTOPEN_SYMLINK),
    PB_NAMED(CORRUPT_VTAB), PB_NAMED(CORRUPT_SEQUENCE), PB_NAMED(CORRUPT_INDEX),
    PB_NAMED(READONLY_RECOVERY), PB_NAMED(READONLY_CANTLOCK), PB_NAMED(READONLY_ROLLBACK),
    PB_NAMED(READONLY_DBMOVED), PB_NAMED(READONLY_CANTINIT), PB_NAMED(READONLY_DIRECTORY),
    PB_NAMED(ABORT_ROLLBACK),
    PB_NAMED(CONSTRAINT_CHECK), PB_NAMED(CONSTRAINT_COMMITHOOK), PB_NAMED(CONSTRAINT_FOREIGNKEY),
    PB_NAMED(CONSTRAINT_FUNCTION), PB_NAMED(CONSTRAINT_NOTNULL), PB_NAMED(CONSTRAINT_PRIMARYKEY),
    PB_NAMED(CONSTRAINT_TRIGGER), PB_NAMED(CONSTRAINT_UNIQUE), PB_NAMED(CONSTRAINT_VTAB),
    PB_NAMED(CONSTRAINT_ROWID), PB_NAMED(CONSTRAINT_PINNED), PB_NAMED(CONSTRAINT_DATATYPE),
    PB_NAMED(NOTICE_RECOVER_WAL), PB_NAMED(NOTICE_RECOVER_ROLLBACK),
    PB_NAMED(WARNING_AUTOINDEX), PB_NAMED(AUTH_USER), PB_NAMED(OK_LOAD_PERMANENTLY), PB_NAMED(OK_SYMLINK),
};
#undef PB_NAMED

}  // namespace

TEST_CASE("every SQLite result code has its own name", "[sqlite][codes]") {
    std::set<std::string> seen;
    for (const auto& [code, name] : all_codes) {
        INFO("code " << code);
        CHECK(sqlite_code_string(code) == name);
        seen.insert(name);
    }
    CHECK(seen.size() == all_codes.size());  // no two codes share a name
}

TEST_CASE("unknown SQLite codes fall back to the primary name, then to the number", "[sqlite][codes]") {
    // An extended code this table does not know keeps its primary name, so prefix checks
    // such as QueryError::is_busy() still work.
    CHECK(sqlite_code_string(SQLITE_BUSY | (99 << 8)) == "SQLITE_BUSY");
    CHECK(sqlite_code_string(SQLITE_IOERR | (200 << 8)) == "SQLITE_IOERR");
    CHECK(sqlite_code_string(SQLITE_CONSTRAINT | (77 << 8)) == "SQLITE_CONSTRAINT");
    CHECK(sqlite_code_string(99) == "SQLITE_99");
    CHECK(sqlite_code_string(99 | (3 << 8)) == "SQLITE_867");
    CHECK(sqlite_code_string(-1) == "SQLITE_-1");
    CHECK(QueryError("x", sqlite_code_string(SQLITE_BUSY | (99 << 8)), 0, false).is_busy());
    // Whatever the code, an extended name starts with its primary code's name.
    for (int code = 0; code < (1 << 16); ++code) {
        const std::string name = sqlite_code_string(code);
        if (name == "SQLITE_" + std::to_string(code)) continue;
        if (!starts_with(name, sqlite_code_string(code & 0xff))) FAIL("code " << code << " is named " << name);
    }
}

TEST_CASE("which SQLite failures break a connection", "[sqlite][codes]") {
    for (int broken : {SQLITE_IOERR, SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_WRITE,
                       SQLITE_IOERR_FSYNC, SQLITE_IOERR_LOCK, SQLITE_CORRUPT, SQLITE_CORRUPT_INDEX, SQLITE_NOTADB,
                       SQLITE_CANTOPEN, SQLITE_CANTOPEN_ISDIR, SQLITE_READONLY_DBMOVED}) {
        INFO(sqlite_code_string(broken));
        CHECK(sqlite_is_broken_code(broken));
    }
    for (int fine : {SQLITE_OK, SQLITE_ERROR, SQLITE_BUSY, SQLITE_BUSY_TIMEOUT, SQLITE_LOCKED, SQLITE_FULL,
                     SQLITE_READONLY, SQLITE_READONLY_RECOVERY, SQLITE_INTERRUPT, SQLITE_CONSTRAINT_UNIQUE,
                     SQLITE_SCHEMA, SQLITE_NOMEM, SQLITE_RANGE, SQLITE_MISUSE}) {
        INFO(sqlite_code_string(fine));
        CHECK_FALSE(sqlite_is_broken_code(fine));
    }
}

TEST_CASE("a statement failing while it runs inside a multi-statement execute names that statement",
          "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    try {
        conn->execute(
            "CREATE TABLE u(x INTEGER UNIQUE); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1); "
            "INSERT INTO u VALUES (2)");
        FAIL("expected a constraint error");
    } catch (const QueryError& e) {
        CHECK(e.code() == "SQLITE_CONSTRAINT_UNIQUE");
        CHECK(e.native_code() == SQLITE_CONSTRAINT_UNIQUE);
        CHECK_FALSE(e.broken());
        const std::string what = e.what();
        INFO(what);
        // The message quotes the text from the failing statement on, not the whole batch.
        CHECK(contains(what, "UNIQUE constraint failed: u.x (SQLITE_CONSTRAINT_UNIQUE) in: "));
        CHECK(contains(what, "INSERT INTO u VALUES (1); INSERT INTO u VALUES (2)"));
        CHECK_FALSE(contains(what, "CREATE TABLE"));
    }
    CHECK_FALSE(conn->is_broken());
    // The statements before the failing one ran; the ones after it did not.
    CHECK(conn->query("SELECT count(*), max(x) FROM u").int_at(0, 0) == 1);
    CHECK(conn->query("SELECT count(*), max(x) FROM u").int_at(0, 1) == 1);
}

TEST_CASE("a setup pragma that SQLite rejects fails the connect, naming the pragma", "[sqlite]") {
    TempDir dir;
    auto driver = make_driver("sqlite://" + dir.file("enc.db") + "?encoding=klingon");
    try {
        (void)driver->connect(deadline());
        FAIL("expected a ConnectError");
    } catch (const ConnectError& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(contains(what, "cannot set up SQLite database '" + dir.file("enc.db") + "'"));
        CHECK(contains(what, "PRAGMA encoding=klingon failed"));
        CHECK(contains(what, "unsupported encoding: klingon"));
        CHECK(contains(what, "(SQLITE_ERROR)"));
    }
    // Values are not quoted: one SQLite cannot parse bare fails the same way, at connect.
    auto dashed = make_driver("sqlite://" + dir.file("enc.db") + "?encoding=UTF-8");
    try {
        (void)dashed->connect(deadline());
        FAIL("expected a ConnectError");
    } catch (const ConnectError& e) {
        CHECK(contains(e.what(), "PRAGMA encoding=UTF-8 failed: near \"-\": syntax error (SQLITE_ERROR)"));
    }
    // The same file with a valid encoding opens.
    auto good = make_driver("sqlite://" + dir.file("enc.db") + "?encoding=UTF8");
    auto conn = good->connect(deadline());
    CHECK(conn->ping());
}

TEST_CASE("a driver made from a DbUrl without a redacted form describes itself", "[sqlite]") {
    DbUrl mem;
    mem.backend = Backend::sqlite;
    mem.memory = true;
    auto m = make_driver(mem);
    CHECK(m->describe() == "sqlite::memory:");
    CHECK(m->backend() == poolbench::Backend::sqlite);
    auto c = m->connect(deadline());
    CHECK(c->query("SELECT 7").int_at(0) == 7);

    TempDir dir;
    DbUrl file;
    file.backend = Backend::sqlite;
    file.path = dir.file("d.db");
    auto f = make_driver(file);
    CHECK(f->describe() == "sqlite://" + dir.file("d.db"));

    DbUrl nopath;
    nopath.backend = Backend::sqlite;
    CHECK_THROWS_WITH(make_driver(nopath), "SQLite URL 'sqlite://' has no file path");
}

TEST_CASE("FaultDriver: connect latency past the deadline times out there, needs_reset follows the inner connection",
          "[sqlite][fault]") {
    auto settings = std::make_shared<FaultSettings>();
    auto driver = std::make_shared<FaultDriver>(make_driver("sqlite::memory:"), settings);
    settings->connect_latency_us = 2'000'000;  // 2 s, far past the deadline below
    const auto t0 = std::chrono::steady_clock::now();
    try {
        (void)driver->connect(t0 + 30ms);
        FAIL("expected a ConnectError");
    } catch (const ConnectError& e) {
        CHECK(std::string(e.what()) ==
              "injected: connect timed out at its deadline (FaultDriver connect_latency_us=2000000)");
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 30ms);
    CHECK(took < 1500ms);  // gave up at the deadline, not after the full latency

    settings->connect_latency_us = 40'000;  // within the deadline: connect waits it out
    const auto t1 = std::chrono::steady_clock::now();
    auto slow = driver->connect(deadline());
    CHECK(std::chrono::steady_clock::now() - t1 >= 40ms);
    CHECK(slow->ping());
    CHECK(driver->connects() == 2);  // the timed-out attempt counts too

    settings->connect_latency_us = 0;
    auto conn = driver->connect(deadline());
    CHECK_FALSE(conn->needs_reset());
    conn->execute("BEGIN");
    CHECK(conn->needs_reset());
    CHECK(conn->in_transaction());
    conn->reset();
    CHECK_FALSE(conn->needs_reset());
}

TEST_CASE("FaultDriver: refuse_for is an outage window that ends by itself, and drop_probability drops connections",
          "[sqlite][fault]") {
    auto settings = std::make_shared<poolbench::FaultSettings>();
    auto driver = std::make_shared<poolbench::FaultDriver>(poolbench::make_driver("sqlite::memory:"), settings);
    settings->refuse_for(std::chrono::milliseconds(100));
    CHECK_THROWS_WITH(driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1)),
                      Catch::Contains("refuse_for window"));
    CHECK(pbtest::eventually([&] {
        try {
            return driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1)) != nullptr;
        } catch (const poolbench::ConnectError&) {
            return false;
        }
    }));
    settings->drop_probability = 0.25;
    int dropped = 0;
    for (int i = 0; i < 400; ++i) {
        auto c = driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        try {
            (void)c->query("SELECT 1");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.broken());
            CHECK(c->is_broken());
            ++dropped;
        }
    }
    INFO("dropped " << dropped << " of 400");
    CHECK(dropped > 50);   // 25% of 400 = 100, far from both bounds
    CHECK(dropped < 160);
}
