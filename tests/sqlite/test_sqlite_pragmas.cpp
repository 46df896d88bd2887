// What a SQLite connection is set up with: the default pragmas (WAL, foreign keys,
// synchronous=NORMAL, the busy timeout), pragmas and options from the URL and how bad
// ones are refused, an existing file's journal mode, and a pragma SQLite rejects at
// connect.
#include "support/sqlite_support.hpp"

#include <fstream>

using namespace poolbench;
using namespace sqltest;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

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
