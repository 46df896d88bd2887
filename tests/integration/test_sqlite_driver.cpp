// The SQLite, null and fault-injecting drivers against real SQLite databases.
#include <catch2/catch.hpp>

#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <sqlite3.h>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

using namespace poolbench;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

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

auto deadline() { return std::chrono::steady_clock::now() + 10s; }

Value I(std::int64_t v) { return Value{v}; }
Value S(std::string v) { return Value{std::move(v)}; }

std::string text_at(const Rows& rows, std::size_t r = 0, std::size_t c = 0) {
    REQUIRE(r < rows.size());
    REQUIRE(c < rows.rows[r].size());
    const auto* s = std::get_if<std::string>(&rows.rows[r][c]);
    REQUIRE(s != nullptr);
    return *s;
}

std::int64_t scalar(Connection& conn, std::string_view sql) { return conn.query(sql).int_at(0); }

/// Runs `sql` on `conn` and returns the QueryError it throws (fails the test if none).
QueryError query_error(Connection& conn, std::string_view sql, std::initializer_list<Value> params = {}) {
    try {
        (void)conn.query(sql, params);
    } catch (const QueryError& e) {
        return e;
    }
    FAIL("expected a QueryError from: " << sql);
    throw std::logic_error("unreachable");
}

std::string connect_error(Driver& driver) {
    try {
        (void)driver.connect(deadline());
    } catch (const ConnectError& e) {
        return e.what();
    }
    return "";
}

std::string config_error(const std::string& url) {
    try {
        (void)make_driver(url);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

/// Runs `sql` on `conn` in another thread and interrupts it from this one until it ends.
/// No sleeps: an interrupt that lands before the statement starts is forgotten by
/// SQLite, so we keep interrupting until the worker reports that it finished.
QueryError interrupt_running(Connection& conn, const std::string& sql) {
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

}  // namespace

TEST_CASE("a file database gets WAL, foreign keys, synchronous=NORMAL and the busy timeout", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("a.db");
    auto driver = make_driver("sqlite://" + path);
    CHECK(driver->backend() == poolbench::Backend::sqlite);
    CHECK(driver->describe() == "sqlite://" + path);
    auto conn = driver->connect(deadline());
    CHECK(text_at(conn->query("PRAGMA journal_mode")) == "wal");
    CHECK(scalar(*conn, "PRAGMA foreign_keys") == 1);
    CHECK(scalar(*conn, "PRAGMA synchronous") == 1);  // NORMAL
    CHECK(scalar(*conn, "PRAGMA busy_timeout") == 5000);
    CHECK(fs::exists(path));
    CHECK_FALSE(conn->is_broken());
    CHECK_FALSE(conn->in_transaction());
    CHECK(conn->ping());
}

TEST_CASE("URL options set the busy timeout and other pragmas", "[sqlite]") {
    TempDir dir;
    auto driver = make_driver("sqlite://" + dir.file("a.db") +
                              "?busy_timeout=1234&cache_size=-4096&temp_store=MEMORY&synchronous=FULL");
    auto conn = driver->connect(deadline());
    CHECK(scalar(*conn, "PRAGMA busy_timeout") == 1234);
    CHECK(scalar(*conn, "PRAGMA cache_size") == -4096);
    CHECK(scalar(*conn, "PRAGMA temp_store") == 2);   // MEMORY
    CHECK(scalar(*conn, "PRAGMA synchronous") == 2);  // FULL: the URL overrides the default
}

TEST_CASE("a relative sqlite path opens relative to the working directory at driver creation", "[sqlite]") {
    TempDir dir;
    const auto old = fs::current_path();
    fs::current_path(dir.path());
    std::shared_ptr<Driver> driver;
    try {
        driver = make_driver("sqlite://rel.db");
    } catch (...) {
        fs::current_path(old);
        throw;
    }
    fs::current_path(old);
    auto conn = driver->connect(deadline());  // after the chdir back: still the same file
    conn->execute("CREATE TABLE t(x)");
    CHECK(fs::exists(dir.path() / "rel.db"));
}

TEST_CASE("bad SQLite options are ConfigErrors naming the option", "[sqlite]") {
    TempDir dir;
    const auto base = "sqlite://" + dir.file("a.db");
    CHECK(contains(config_error(base + "?bad-name=1"), "SQLite option 'bad-name'"));
    CHECK(contains(config_error(base + "?1cache=1"), "SQLite option '1cache'"));
    CHECK(contains(config_error(base + "?no_such_pragma=1"), "'no_such_pragma'"));
    CHECK(contains(config_error(base + "?no_such_pragma=1"), "not a PRAGMA"));
    CHECK(contains(config_error(base + "?cache_size=1;DROP%20TABLE%20t"), "cache_size="));
    CHECK(contains(config_error(base + "?cache_size="), "cache_size="));
    CHECK(contains(config_error(base + "?busy_timeout=soon"), "busy_timeout='soon'"));
    CHECK(contains(config_error(base + "?busy_timeout=-1"), "busy_timeout='-1'"));
    CHECK(contains(config_error(base + "?busy_timeout=99999999999"), "busy_timeout"));
    // SQLite would ignore these values silently (the mode stays as it was).
    CHECK(contains(config_error(base + "?journal_mode=bogus"), "journal_mode='bogus'"));
    CHECK(contains(config_error(base + "?journal_mode=bogus"), "delete,truncate,persist,memory,wal,off"));
    CHECK(contains(config_error(base + "?synchronous=sometimes"), "synchronous='sometimes'"));
    CHECK_NOTHROW(make_driver(base + "?journal_mode=DELETE&synchronous=FULL&temp_store=memory"));
}

TEST_CASE("query binds positional parameters and returns typed values", "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    conn->execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT, data BLOB)");
    conn->query("INSERT INTO t VALUES ($1, $2, $3, $4, x'00ff41')", {I(1), S("alice"), Value{2.5}, Value{}});
    conn->query("INSERT INTO t VALUES (?1, ?2, ?3, ?4, NULL)", {I(2), S("bob"), Value{-1.0}, S("n")});

    const auto rows = conn->query("SELECT id, name, score, note, data FROM t WHERE id = $1", {I(1)});
    REQUIRE(rows.size() == 1);
    const auto& row = rows.rows[0];
    REQUIRE(row.size() == 5);
    CHECK(std::get<std::int64_t>(row[0]) == 1);
    CHECK(std::get<std::string>(row[1]) == "alice");
    CHECK(std::get<double>(row[2]) == 2.5);
    CHECK(std::holds_alternative<std::monostate>(row[3]));
    CHECK(std::get<std::string>(row[4]) == std::string("\x00\xff" "A", 3));

    // $N binds to position N whatever order the placeholders appear in.
    const auto swapped = conn->query("SELECT $2, $1, $2 + $1", {I(10), I(3)});
    REQUIRE(swapped.size() == 1);
    CHECK(swapped.int_at(0, 0) == 3);
    CHECK(swapped.int_at(0, 1) == 10);
    CHECK(swapped.int_at(0, 2) == 13);
    const auto anon = conn->query("SELECT ?, ?", {I(7), S("x")});
    CHECK(anon.int_at(0, 0) == 7);
    CHECK(text_at(anon, 0, 1) == "x");

    // Text with an embedded NUL and non-ASCII survives the round trip.
    const std::string odd("a\0b ü", 6);
    CHECK(text_at(conn->query("SELECT $1", {S(odd)})) == odd);

    const auto many = conn->query("SELECT id FROM t ORDER BY id");
    REQUIRE(many.size() == 2);
    CHECK(many.int_at(1) == 2);
    CHECK(conn->query("SELECT id FROM t WHERE id = 99").empty());

    // int_at on a text value explains itself.
    CHECK_THROWS_AS(conn->query("SELECT 'x'").int_at(0), UsageError);
}

TEST_CASE("parameter mistakes are reported, not guessed", "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    const auto e = query_error(*conn, "SELECT $1, $2", {I(1)});
    CHECK(e.code() == "SQLITE_RANGE");
    CHECK(contains(e.what(), "takes 2 parameters but 1 was given"));
    CHECK(query_error(*conn, "SELECT 1", {I(1)}).code() == "SQLITE_RANGE");
    CHECK_THROWS_AS(conn->query("SELECT :name", {I(1)}), UsageError);
    CHECK_THROWS_AS(conn->query("SELECT $0", {I(1)}), UsageError);
    CHECK_THROWS_WITH(conn->query("SELECT 1; SELECT 2"), Catch::Contains("use execute() for several"));
    // Trailing semicolons and comments are not a second statement.
    CHECK(conn->query("SELECT 5; -- done\n").int_at(0) == 5);
    CHECK(conn->query("  ").empty());
    // The connection is still fine afterwards.
    CHECK(conn->query("SELECT $1 + 1", {I(41)}).int_at(0) == 42);
}

TEST_CASE("execute runs several statements", "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    conn->execute("CREATE TABLE t(x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);\n -- trailing comment\n");
    CHECK(scalar(*conn, "SELECT sum(x) FROM t") == 3);
    conn->execute("UPDATE t SET x = x + 10");
    conn->execute("UPDATE t SET x = x + 10");  // the cached statement runs again
    CHECK(scalar(*conn, "SELECT sum(x) FROM t") == 43);
    conn->execute("");
    conn->execute("SELECT x FROM t");  // rows are discarded
    try {
        conn->execute("INSERT INTO t VALUES (3); SELEC oops; INSERT INTO t VALUES (4)");
        FAIL("expected a syntax error");
    } catch (const QueryError& e) {
        CHECK(e.code() == "SQLITE_ERROR");
        CHECK(contains(e.what(), "syntax error"));
        CHECK_FALSE(e.broken());
    }
    CHECK(scalar(*conn, "SELECT count(*) FROM t") == 3);  // statements before the error ran
}

TEST_CASE("cached statements are reset, re-prepared after schema changes, and evicted", "[sqlite]") {
    TempDir dir;
    auto driver = make_driver("sqlite://" + dir.file("a.db"));
    auto a = driver->connect(deadline());
    auto b = driver->connect(deadline());
    a->execute("CREATE TABLE t(x)");
    a->execute("INSERT INTO t VALUES (1), (2), (3)");

    // A cached statement stopped after its rows does not keep a read snapshot open: a
    // TRUNCATE checkpoint from another connection would report busy if it did.
    CHECK(scalar(*a, "SELECT count(*) FROM t") == 3);
    const auto ckpt = b->query("PRAGMA wal_checkpoint(TRUNCATE)");
    CHECK(ckpt.int_at(0, 0) == 0);

    // The same text sees new data each time.
    b->execute("INSERT INTO t VALUES (4)");
    CHECK(scalar(*a, "SELECT count(*) FROM t") == 4);

    // The same text after a schema change sees the new column.
    CHECK(a->query("SELECT * FROM t LIMIT 1").rows[0].size() == 1);
    b->execute("ALTER TABLE t ADD COLUMN y DEFAULT 7");
    const auto wide = a->query("SELECT * FROM t LIMIT 1");
    REQUIRE(wide.rows[0].size() == 2);
    CHECK(wide.int_at(0, 1) == 7);

    // More distinct statements than the cache holds still all work.
    for (int round = 0; round < 2; ++round) {
        for (std::int64_t i = 0; i < 300; ++i) {
            CHECK(a->query("SELECT " + std::to_string(i) + " + $1", {I(round)}).int_at(0) == i + round);
        }
    }
}

TEST_CASE("statement errors carry the extended SQLite code and the SQL", "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    conn->execute(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
        "CREATE TABLE child(pid INTEGER REFERENCES parent(id));"
        "INSERT INTO parent VALUES (1, 'a')");

    const auto pk = query_error(*conn, "INSERT INTO parent VALUES ($1, $2)", {I(1), S("b")});
    CHECK(pk.code() == "SQLITE_CONSTRAINT_PRIMARYKEY");
    CHECK(pk.native_code() == 1555);
    CHECK_FALSE(pk.broken());
    CHECK_FALSE(pk.is_busy());
    CHECK(std::string(pk.what()) ==
          "UNIQUE constraint failed: parent.id (SQLITE_CONSTRAINT_PRIMARYKEY) in: INSERT INTO parent VALUES ($1, $2)");

    CHECK(query_error(*conn, "INSERT INTO parent VALUES (2, 'a')").code() == "SQLITE_CONSTRAINT_UNIQUE");
    CHECK(query_error(*conn, "INSERT INTO parent VALUES (3, NULL)").code() == "SQLITE_CONSTRAINT_NOTNULL");
    CHECK(query_error(*conn, "INSERT INTO child VALUES (42)").code() == "SQLITE_CONSTRAINT_FOREIGNKEY");
    const auto syntax = query_error(*conn, "SELEC 1");
    CHECK(syntax.code() == "SQLITE_ERROR");
    CHECK(syntax.native_code() == 1);
    CHECK(contains(syntax.what(), "syntax error"));
    CHECK(query_error(*conn, "SELECT * FROM missing").code() == "SQLITE_ERROR");

    // Long SQL is cut to 120 characters in the message.
    const std::string long_sql = "SELECT * FROM missing WHERE x IN (" + std::string(300, '1') + ")";
    const std::string msg = query_error(*conn, long_sql).what();
    CHECK(contains(msg, long_sql.substr(0, 120) + "..."));
    CHECK_FALSE(contains(msg, long_sql.substr(0, 121)));

    CHECK_FALSE(conn->is_broken());
    CHECK(conn->ping());
    CHECK(scalar(*conn, "SELECT count(*) FROM parent") == 1);
}

TEST_CASE("a held write lock gives SQLITE_BUSY after the busy timeout", "[sqlite]") {
    TempDir dir;
    for (const std::string& url :
         {"sqlite://" + dir.file("a.db") + "?busy_timeout=0", std::string("sqlite::memory:?busy_timeout=0")}) {
        INFO(url);
        auto driver = make_driver(url);
        auto a = driver->connect(deadline());
        auto b = driver->connect(deadline());
        a->execute("BEGIN IMMEDIATE");
        CHECK(a->in_transaction());
        const auto e = query_error(*b, "BEGIN IMMEDIATE");
        CHECK(e.code() == "SQLITE_BUSY");
        CHECK(e.is_busy());
        CHECK_FALSE(e.broken());
        CHECK_FALSE(b->in_transaction());
        a->reset();
        b->execute("BEGIN IMMEDIATE");  // free now
        b->reset();
    }
}

TEST_CASE("reset rolls back an open transaction", "[sqlite]") {
    TempDir dir;
    auto driver = make_driver("sqlite://" + dir.file("a.db"));
    auto conn = driver->connect(deadline());
    conn->execute("CREATE TABLE t(x)");
    conn->reset();  // nothing open: a no-op
    CHECK_FALSE(conn->in_transaction());
    conn->execute("BEGIN");
    conn->query("INSERT INTO t VALUES ($1)", {I(1)});
    CHECK(conn->in_transaction());
    CHECK(scalar(*conn, "SELECT count(*) FROM t") == 1);
    conn->reset();
    CHECK_FALSE(conn->in_transaction());
    CHECK(scalar(*conn, "SELECT count(*) FROM t") == 0);
}

TEST_CASE("a missing directory fails at connect with the path in the message", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("no/such/dir/a.db");
    auto driver = make_driver("sqlite://" + path);  // options are fine; the file is opened at connect
    const auto msg = connect_error(*driver);
    CHECK(contains(msg, "cannot open SQLite database '" + path + "'"));
    CHECK(contains(msg, "directory " + dir.file("no/such/dir") + " does not exist"));
    CHECK(msg.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "no"));
}

namespace {

/// Makes a database file in a rollback journal mode with one row, as a user's app would.
void make_rollback_file(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (42);", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
}

}  // namespace

TEST_CASE("an existing file keeps its journal mode unless the URL asks, and the URL's mode is checked", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("app.db");
    make_rollback_file(path);
    REQUIRE(poolbench::sqlite_file_journal_mode(path) == "rollback");
    {
        auto driver = make_driver("sqlite://" + path);
        auto conn = driver->connect(deadline());
        CHECK(scalar(*conn, "SELECT x FROM t") == 42);
        conn->execute("INSERT INTO t VALUES (43)");
    }
    CHECK(poolbench::sqlite_file_journal_mode(path) == "rollback");  // not converted
    CHECK_FALSE(fs::exists(path + "-wal"));
    {
        auto driver = make_driver("sqlite://" + path + "?journal_mode=wal");
        auto conn = driver->connect(deadline());
        CHECK(scalar(*conn, "SELECT count(*) FROM t") == 2);
    }
    CHECK(poolbench::sqlite_file_journal_mode(path) == "wal");  // as asked
    // A new file is made in WAL mode; a missing or foreign file has no journal mode.
    const auto fresh = dir.file("fresh.db");
    CHECK_FALSE(poolbench::sqlite_file_journal_mode(fresh));
    make_driver("sqlite://" + fresh)->connect(deadline())->execute("CREATE TABLE t(x)");
    CHECK(poolbench::sqlite_file_journal_mode(fresh) == "wal");
    std::ofstream(dir.file("text.db")) << "not a database, just some text long enough";
    CHECK_FALSE(poolbench::sqlite_file_journal_mode(dir.file("text.db")));
}

TEST_CASE("mode=ro and immutable=1 read a file without writing to it", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("ro.db");
    make_rollback_file(path);
    const auto before = fs::last_write_time(path);
    for (const char* option : {"?mode=ro", "?immutable=1"}) {
        INFO(option);
        auto driver = make_driver("sqlite://" + path + option);
        auto conn = driver->connect(deadline());
        CHECK(scalar(*conn, "SELECT x FROM t") == 42);
        const auto e = query_error(*conn, "INSERT INTO t VALUES (1)");
        CHECK(e.kind() == poolbench::ErrorKind::read_only);
    }
    CHECK(fs::last_write_time(path) == before);
    CHECK(poolbench::sqlite_file_journal_mode(path) == "rollback");
    // mode=ro never creates a file.
    CHECK_THROWS_AS(make_driver("sqlite://" + dir.file("absent.db") + "?mode=ro")->connect(deadline()),
                    poolbench::ConnectError);
    CHECK_FALSE(fs::exists(dir.file("absent.db")));
    CHECK_THROWS_AS(make_driver("sqlite://" + path + "?mode=rwx"), poolbench::ConfigError);
    // A directory is not a database file.
    try {
        (void)make_driver("sqlite://" + dir.path().string());
        FAIL("expected a ConfigError");
    } catch (const poolbench::ConfigError& e) {
        CHECK(contains(e.what(), "names a directory"));
    }
}

TEST_CASE("a file that is not a database fails at connect", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("notes.txt");
    {
        std::ofstream out(path);
        out << "this is a text file, not an SQLite database; it is long enough to have a header\n";
        out << std::string(200, 'x') << "\n";
    }
    auto driver = make_driver("sqlite://" + path);
    const auto msg = connect_error(*driver);
    CHECK(contains(msg, path));
    CHECK(contains(msg, "SQLITE_NOTADB"));
    CHECK(contains(msg, "not an SQLite database"));
}

TEST_CASE("in-memory: one driver's connections share a database, two drivers do not", "[sqlite]") {
    auto one = make_driver("sqlite::memory:");
    auto two = make_driver("sqlite::memory:");
    CHECK(one->describe() == "sqlite::memory:");
    auto a = one->connect(deadline());
    auto b = one->connect(deadline());
    CHECK(text_at(a->query("PRAGMA journal_mode")) != "wal");
    CHECK(scalar(*a, "PRAGMA foreign_keys") == 1);

    a->execute("CREATE TABLE t(x)");
    a->query("INSERT INTO t VALUES ($1)", {I(41)});
    b->query("INSERT INTO t VALUES ($1)", {I(1)});
    CHECK(scalar(*a, "SELECT sum(x) FROM t") == 42);
    CHECK(scalar(*b, "SELECT sum(x) FROM t") == 42);

    auto c = two->connect(deadline());
    CHECK(scalar(*c, "SELECT count(*) FROM sqlite_schema") == 0);
    CHECK(contains(query_error(*c, "SELECT * FROM t").what(), "no such table: t"));

    // The database outlives all the pool's connections while the driver lives.
    a.reset();
    b.reset();
    auto d = one->connect(deadline());
    CHECK(scalar(*d, "SELECT sum(x) FROM t") == 42);
}

TEST_CASE("interrupt() from another thread stops a long statement", "[sqlite]") {
    auto driver = make_driver("sqlite::memory:");
    auto conn = driver->connect(deadline());
    const auto e = interrupt_running(
        *conn,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c");
    CHECK(e.code() == "SQLITE_INTERRUPT");
    CHECK_FALSE(conn->is_broken());
    CHECK(scalar(*conn, "SELECT 2") == 2);  // an old interrupt does not hit the next statement
    CHECK(conn->ping());
}

TEST_CASE("the null driver does nothing, successfully", "[sqlite][null]") {
    auto driver = make_driver("null://");
    CHECK(driver->backend() == poolbench::Backend::null);
    CHECK(driver->describe() == "null://");
    auto conn = driver->connect(deadline());
    conn->execute("DROP TABLE everything");
    const auto rows = conn->query("SELECT 1");
    REQUIRE(rows.size() == 1);
    REQUIRE(rows.rows[0].size() == 1);
    CHECK(rows.int_at(0) == 1);
    CHECK(conn->query("anything at all", {I(5)}).int_at(0) == 1);
    CHECK(conn->ping());
    conn->reset();
    conn->interrupt();
    CHECK_FALSE(conn->is_broken());
    CHECK_FALSE(conn->in_transaction());
}

TEST_CASE("FaultDriver injects refused connects, broken connections, failed pings and resets", "[sqlite][fault]") {
    auto settings = std::make_shared<FaultSettings>();
    auto inner = make_driver("sqlite::memory:");
    FaultDriver driver(inner, settings);
    CHECK(driver.backend() == poolbench::Backend::sqlite);
    CHECK(driver.describe() == "sqlite::memory:");

    SECTION("refuse_connect") {
        settings->refuse_connect = true;
        CHECK(connect_error(driver) == "injected: connection refused (FaultDriver)");
        CHECK(connect_error(driver) == "injected: connection refused (FaultDriver)");
        CHECK(driver.connects() == 2);
        settings->refuse_connect = false;
        auto conn = driver.connect(deadline());
        CHECK(conn->ping());
        CHECK(driver.connects() == 3);
    }
    SECTION("break_on_query breaks only the next statement's connection") {
        auto a = driver.connect(deadline());
        auto b = driver.connect(deadline());
        a->execute("CREATE TABLE t(x)");
        settings->break_on_query = true;
        const auto e = query_error(*a, "INSERT INTO t VALUES (1)");
        CHECK(e.broken());
        CHECK(contains(e.what(), "injected"));
        CHECK(a->is_broken());
        CHECK_FALSE(a->ping());
        CHECK_FALSE(settings->break_on_query.load());  // consumed
        CHECK(query_error(*a, "SELECT 1").broken());   // stays broken
        CHECK_FALSE(b->is_broken());
        CHECK(scalar(*b, "SELECT count(*) FROM t") == 0);  // the broken statement never ran
    }
    SECTION("fail_ping and fail_reset") {
        auto conn = driver.connect(deadline());
        settings->fail_ping = true;
        CHECK_FALSE(conn->ping());
        settings->fail_ping = false;
        CHECK(conn->ping());
        conn->execute("BEGIN");
        settings->fail_reset = true;
        CHECK_THROWS_AS(conn->reset(), QueryError);
        CHECK(conn->in_transaction());
        settings->fail_reset = false;
        conn->reset();
        CHECK_FALSE(conn->in_transaction());
    }
    SECTION("connect latency gives up at the deadline") {
        settings->connect_latency_us = 30'000'000;  // 30 s
        const auto start = std::chrono::steady_clock::now();
        try {
            (void)driver.connect(start + 20ms);
            FAIL("expected a ConnectError");
        } catch (const ConnectError& e) {
            CHECK(contains(e.what(), "injected: connect timed out"));
        }
        CHECK(std::chrono::steady_clock::now() - start < 10s);
    }
    SECTION("query latency is cut short by interrupt()") {
        auto conn = driver.connect(deadline());
        settings->query_latency_us = 60'000'000;  // 60 s
        const auto e = interrupt_running(*conn, "SELECT 1");
        CHECK(e.code() == "SQLITE_INTERRUPT");
        settings->query_latency_us = 0;
        CHECK(scalar(*conn, "SELECT 3") == 3);
    }
    SECTION("a statement waiting out its latency goes on when the latency is switched off") {
        auto conn = driver.connect(deadline());
        settings->query_latency_us = 60'000'000;  // 60 s
        settings->query_jitter_us = 1'000;
        std::atomic<bool> done{false};
        const auto start = std::chrono::steady_clock::now();
        std::thread t([&] {
            CHECK(scalar(*conn, "SELECT 4") == 4);
            done = true;
        });
        settings->query_latency_us = 0;  // the fault is reverted
        settings->query_jitter_us = 0;
        t.join();
        CHECK(done);
        // Whether the statement began before or after the switch, it did not wait 60 s.
        CHECK(std::chrono::steady_clock::now() - start < 30s);
    }
}

TEST_CASE("a database file deleted under a connection breaks that connection", "[sqlite]") {
    TempDir dir;
    const auto path = dir.file("gone.db");
    // SQLite notices a moved file when it starts writing in rollback-journal mode.
    auto driver = make_driver("sqlite://" + path + "?journal_mode=DELETE");
    auto conn = driver->connect(deadline());
    conn->execute("CREATE TABLE t(x)");
    CHECK(conn->ping());
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
    const auto e = query_error(*conn, "INSERT INTO t VALUES (1)");
    INFO(e.what());
    CHECK(e.code() == "SQLITE_READONLY_DBMOVED");
    CHECK(e.broken());
    CHECK(conn->is_broken());
    CHECK_FALSE(conn->ping());
    // A new connection creates a fresh file and works.
    auto fresh = driver->connect(deadline());
    CHECK(scalar(*fresh, "SELECT count(*) FROM sqlite_schema") == 0);
}
