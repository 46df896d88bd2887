// The SQLite and null drivers against real SQLite databases: statements, parameters,
// the statement cache, errors, locks, reset, interrupt, in-memory and read-only
// databases. (Setup pragmas: test_sqlite_pragmas.cpp; result codes:
// test_sqlite_result_codes.cpp; the fault-injecting driver: test_fault_driver.cpp.)
#include "support/sqlite_support.hpp"

#include <fstream>

using namespace poolbench;
using namespace sqltest;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

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
