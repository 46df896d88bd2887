// The MariaDB driver against a real server (see mariadb_support.hpp for POOLBENCH_MARIADB_URL):
// values through the binary protocol, several statements in one execute(), the statement
// cache, errors that leave the connection usable, ping, interrupt, statement_timeout and
// reset. (Connection failures and URL option values: test_mariadb_connection_failures.cpp.)
#include "mariadb_support.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace poolbench;
using namespace mtest;

namespace {

Value D(double v) { return Value{v}; }

/// A session counter from information_schema.SESSION_STATUS (Com_stmt_prepare, ...).
std::int64_t session_status(Connection& c, const std::string& name) {
    const auto rows =
        c.query("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = ?", {S(name)});
    return std::stoll(text_at(rows));
}

}  // namespace

TEST_CASE("mariadb: the driver names itself and never shows the password", "[mariadb]") {
    const auto d = driver();
    CHECK(d->backend() == Backend::mariadb);
    const std::string pw = server_password();
    REQUIRE(pw.size() >= 8);
    CHECK_FALSE(contains(d->describe(), pw));
    CHECK(contains(d->describe(), "***"));
    // mysql:// is the same backend.
    std::string mysql = server_url();
    mysql.replace(0, mysql.find("://"), "mysql");
    auto c = driver_for(mysql)->connect(Clock::now() + 10s);
    CHECK(c->query("SELECT 6 * 7").int_at(0) == 42);
}

TEST_CASE("mariadb: values round-trip through typed columns", "[mariadb]") {
    auto c = connect();
    c->execute(
        "CREATE TEMPORARY TABLE t_values (id INT PRIMARY KEY, i BIGINT, d DOUBLE, t LONGTEXT, m DECIMAL(12,3), "
        "f FLOAT, s SMALLINT, v VARCHAR(20))");
    const std::string utf8 = "h\xC3\xA9llo \xE2\x9C\x93 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80";  // héllo ✓ 日本 😀
    const std::string long_text = std::string(65, 'a') + "|" + std::string(100, 'b');                // past 64 bytes
    std::string big(100 * 1024, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    const double third = 1.0 / 3.0;
    const auto insert = [&](std::int64_t id, const Value& i, const Value& d, const Value& t) {
        CHECK(c->query("INSERT INTO t_values (id, i, d, t) VALUES (?, ?, ?, ?)", {I(id), i, d, t}).empty());
    };
    insert(1, I(-42), D(third), S(utf8));
    insert(2, I(std::numeric_limits<std::int64_t>::min()), D(-1e300), S(long_text));
    insert(3, I(std::numeric_limits<std::int64_t>::max()), D(0.0), S(big));
    insert(4, Value{}, Value{}, Value{});
    insert(5, I(0), D(2.5), S(""));
    c->execute("UPDATE t_values SET m = 12345.678, f = 2.5, s = -7, v = 'x' WHERE id = 1");

    const auto rows = c->query("SELECT id, i, d, t, m, f, s, v FROM t_values ORDER BY id");
    REQUIRE(rows.size() == 5);
    const auto& r1 = rows.rows[0];
    CHECK(std::get<std::int64_t>(r1[1]) == -42);
    CHECK(std::get<double>(r1[2]) == third);
    CHECK(std::get<std::string>(r1[3]) == utf8);
    CHECK(std::get<double>(r1[4]) == 12345.678);  // DECIMAL read as a double
    CHECK(std::get<double>(r1[5]) == 2.5);        // FLOAT
    CHECK(std::get<std::int64_t>(r1[6]) == -7);   // SMALLINT
    CHECK(std::get<std::string>(r1[7]) == "x");
    CHECK(rows.int_at(1, 1) == std::numeric_limits<std::int64_t>::min());
    CHECK(std::get<double>(rows.rows[1][2]) == -1e300);
    CHECK(std::get<std::string>(rows.rows[1][3]) == long_text);
    CHECK(rows.int_at(2, 1) == std::numeric_limits<std::int64_t>::max());
    CHECK(std::get<std::string>(rows.rows[2][3]) == big);  // 100 KB, read again whole
    for (std::size_t col = 1; col < 8; ++col) {
        INFO(col);
        CHECK(std::holds_alternative<std::monostate>(rows.rows[3][col]));
    }
    CHECK(std::get<std::string>(rows.rows[4][3]).empty());  // empty, not NULL

    SECTION("a short text after a long one, and a longer one after that, in one result") {
        const auto texts = c->query("SELECT t FROM t_values WHERE id IN (1, 2, 3, 5) ORDER BY id");
        REQUIRE(texts.size() == 4);
        CHECK(text_at(texts, 0) == utf8);
        CHECK(text_at(texts, 1) == long_text);
        CHECK(text_at(texts, 2) == big);
        CHECK(text_at(texts, 3).empty());
    }
    SECTION("parameters in expressions, with CAST deciding the result's type") {
        const auto x = c->query("SELECT CAST(? AS SIGNED), CAST(? AS DOUBLE), CONCAT(?, '!'), ? IS NULL",
                                {I(-9'000'000'000), D(0.125), S(utf8), Value{}});
        CHECK(x.int_at(0, 0) == -9'000'000'000);
        CHECK(std::get<double>(x.rows[0][1]) == 0.125);
        CHECK(std::get<std::string>(x.rows[0][2]) == utf8 + "!");
        CHECK(x.int_at(0, 3) == 1);
    }
    SECTION("more parameters than ParamBinds keeps inline (8)") {
        std::vector<Value> params;
        std::string sql = "SELECT CONCAT(";
        for (int i = 0; i < 12; ++i) {
            sql += i == 0 ? "?" : ", ?";
            if (i % 3 == 0) params.push_back(I(i));
            else if (i % 3 == 1) params.push_back(D(i + 0.5));
            else params.push_back(S("s" + std::to_string(i)));
        }
        sql += "), ? IS NULL";
        params.emplace_back();
        const auto x = c->query(sql, params);
        CHECK(text_at(x, 0, 0) == "01.5s234.5s567.5s8910.5s11");
        CHECK(x.int_at(0, 1) == 1);
    }
    SECTION("a DECIMAL wider than 64 characters is read whole") {
        const auto wide = c->query("SELECT CAST(? AS DECIMAL(65,30))", {S("12345678901234567890123456789012345.5")});
        CHECK(std::get<double>(wide.rows[0][0]) == 12345678901234567890123456789012345.5);
    }
    SECTION("other column types come back as their text") {
        const auto other = c->query("SELECT CAST('2024-01-02' AS DATE), CAST('10:11:12' AS TIME), YEAR('2024-05-06')");
        CHECK(text_at(other, 0, 0) == "2024-01-02");
        CHECK(text_at(other, 0, 1) == "10:11:12");
        CHECK(other.int_at(0, 2) == 2024);
    }
}

TEST_CASE("mariadb: an unsigned BIGINT past INT64_MAX comes back as its text, never wrapped", "[mariadb]") {
    auto c = connect();
    const auto rows = c->query(
        "SELECT CAST(18446744073709551615 AS UNSIGNED), CAST(9223372036854775808 AS UNSIGNED), "
        "CAST(9223372036854775807 AS UNSIGNED), CAST(5 AS UNSIGNED)");
    REQUIRE(rows.size() == 1);
    CHECK(text_at(rows, 0, 0) == "18446744073709551615");
    CHECK(text_at(rows, 0, 1) == "9223372036854775808");
    CHECK(rows.int_at(0, 2) == std::numeric_limits<std::int64_t>::max());
    CHECK(rows.int_at(0, 3) == 5);
    c->execute("CREATE TEMPORARY TABLE t_unsigned (u BIGINT UNSIGNED, n INT UNSIGNED)");
    c->execute("INSERT INTO t_unsigned VALUES (18446744073709551615, 4294967295), (7, 0)");
    const auto stored = c->query("SELECT u, n FROM t_unsigned ORDER BY u");
    REQUIRE(stored.size() == 2);
    CHECK(stored.int_at(0, 0) == 7);
    CHECK(stored.int_at(0, 1) == 0);
    CHECK(text_at(stored, 1, 0) == "18446744073709551615");
    CHECK(stored.int_at(1, 1) == 4294967295);
}

TEST_CASE("mariadb: execute runs several statements at once (separated by semicolons) and drains their results", "[mariadb]") {
    auto c = connect();
    c->execute(
        "CREATE TEMPORARY TABLE t_multi (x INT PRIMARY KEY); INSERT INTO t_multi VALUES (1); "
        "INSERT INTO t_multi VALUES (2); SELECT * FROM t_multi; SELECT 1");
    CHECK(c->query("SELECT COUNT(*) FROM t_multi").int_at(0) == 2);

    SECTION("a failing statement in the middle stops the rest and names its error number") {
        const auto e = thrown<QueryError>(
            [&] { c->execute("INSERT INTO t_multi VALUES (3); INSERT INTO t_multi VALUES (1); INSERT INTO t_multi VALUES (4)"); });
        CHECK(e.code() == "1062");
        CHECK(e.native_code() == 1062);
        CHECK(e.kind() == ErrorKind::constraint_violation);
        CHECK_FALSE(e.broken());
        CHECK(contains(e.what(), "Duplicate entry"));
        const auto left = c->query("SELECT x FROM t_multi ORDER BY x");
        REQUIRE(left.size() == 3);  // 3 went in, 4 never ran
        CHECK(left.int_at(2) == 3);
    }
    SECTION("a failing first statement") {
        const auto e = thrown<QueryError>([&] { c->execute("SELECT * FROM pb_no_such_table; SELECT 1"); });
        CHECK(e.code() == "1146");
        CHECK(e.kind() == ErrorKind::other);
    }
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 7").int_at(0) == 7);
    CHECK(c->ping());
}

TEST_CASE("mariadb: the statement cache past 256 statements still answers correctly", "[mariadb]") {
    auto c = connect();
    const auto statement = [](int i) { return "SELECT CAST(? AS SIGNED) + " + std::to_string(i); };
    // The status query (one SQL text for both counters) is the first statement: cached too.
    const auto prepares = [&] { return session_status(*c, "COM_STMT_PREPARE"); };
    const auto closes = [&] { return session_status(*c, "COM_STMT_CLOSE"); };
    const auto p0 = prepares();
    for (int i = 0; i < 255; ++i) {
        INFO(i);
        CHECK(c->query(statement(i), {I(1)}).int_at(0) == i + 1);
    }
    // 256 cached now (the status query and 255 others); running them again prepares nothing.
    const auto p1 = prepares();
    CHECK(p1 - p0 == 255);
    for (int i = 0; i < 255; i += 17) CHECK(c->query(statement(i), {I(2)}).int_at(0) == i + 2);
    CHECK(prepares() == p1);
    // Statement 257 and later: prepared, run and closed every time, with right answers.
    const auto c0 = closes();  // the status query is cached: it prepares and closes nothing
    for (int i = 1000; i < 1040; ++i) {
        INFO(i);
        CHECK(c->query(statement(i), {I(3)}).int_at(0) == i + 3);
        CHECK(c->query(statement(i), {I(4)}).int_at(0) == i + 4);
    }
    CHECK(closes() - c0 == 80);
    CHECK(prepares() - p1 == 80);
    // A cached statement still runs from the cache.
    const auto p2 = prepares();
    CHECK(c->query(statement(7), {I(1)}).int_at(0) == 8);
    CHECK(prepares() == p2);
}

TEST_CASE("mariadb: a wrong parameter count is 1210 and leaves the connection usable", "[mariadb]") {
    auto c = connect();
    const std::string sql = "SELECT CAST(? AS SIGNED) * 2";
    const auto too_many = thrown<QueryError>([&] { (void)c->query(sql, {I(1), I(2)}); });
    CHECK(too_many.code() == "1210");
    CHECK(too_many.native_code() == 1210);
    CHECK_FALSE(too_many.broken());
    CHECK(too_many.kind() == ErrorKind::other);
    CHECK(contains(too_many.what(), "the statement takes 1 parameter, 2 were given, in: " + sql));
    const auto none = thrown<QueryError>([&] { (void)c->query(sql); });
    CHECK(none.code() == "1210");
    CHECK(contains(none.what(), "0 were given"));
    const auto zero = thrown<QueryError>([&] { (void)c->query("SELECT 1", {I(1)}); });
    CHECK(contains(zero.what(), "the statement takes 0 parameters, 1 were given"));
    CHECK_FALSE(c->is_broken());
    CHECK(c->query(sql, {I(21)}).int_at(0) == 42);
}

TEST_CASE("mariadb: a syntax error is 1064 and not broken", "[mariadb]") {
    auto c = connect();
    const auto prepared = thrown<QueryError>([&] { (void)c->query("SELEC 1"); });
    CHECK(prepared.code() == "1064");
    CHECK_FALSE(prepared.broken());
    CHECK(contains(prepared.what(), "in: SELEC 1"));
    const auto text = thrown<QueryError>([&] { c->execute("SELEC 2"); });
    CHECK(text.code() == "1064");
    CHECK_FALSE(text.broken());
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
}

TEST_CASE("mariadb: ping answers on a live connection and notices a killed one", "[mariadb]") {
    auto admin = connect();
    auto c = connect();
    CHECK(c->ping());
    CHECK(c->ping());
    const auto id = thread_id(*c);
    admin->execute("KILL CONNECTION " + std::to_string(id));
    REQUIRE(eventually([&] { return !session_exists(*admin, id); }));
    CHECK_FALSE(c->ping());
    CHECK(c->is_broken());
    CHECK_FALSE(c->ping());  // stays broken
}

TEST_CASE("mariadb: interrupt() from another thread stops SELECT SLEEP(30)", "[mariadb]") {
    auto observer = connect();
    auto c = connect();
    const auto id = thread_id(*c);
    std::atomic<bool> seen_running{false};
    std::thread canceller([&] {
        seen_running = eventually([&] { return session_running(*observer, id, "SELECT SLEEP"); }, 10s);
        c->interrupt();
    });
    const auto start = Clock::now();
    std::optional<QueryError> error;
    try {
        (void)c->query("SELECT SLEEP(30)");
    } catch (const QueryError& e) {
        error = e;
    }
    canceller.join();
    const auto took = Clock::now() - start;
    CHECK(seen_running);
    REQUIRE(error.has_value());
    INFO(error->what());
    CHECK(error->code() == "1317");
    CHECK(error->kind() == ErrorKind::statement_timeout);
    CHECK_FALSE(error->broken());
    CHECK(took < 10s);
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
    CHECK(thread_id(*c) == id);  // the same session, not a reconnect

    SECTION("interrupting an idle connection does nothing to it") {
        c->interrupt();
        CHECK(c->query("SELECT 2").int_at(0) == 2);
    }
}

TEST_CASE("mariadb: statement_timeout=200ms stops SELECT SLEEP(30) and the connection stays usable", "[mariadb]") {
    auto c = connect("statement_timeout=200ms");
    CHECK(text_at(c->query("SELECT CAST(@@max_statement_time AS CHAR)")) == "0.200000");
    const auto check_stopped = [](const QueryError& e, Clock::duration took) {
        INFO(e.what());
        CHECK(e.code() == "1969");
        CHECK(e.kind() == ErrorKind::statement_timeout);
        CHECK_FALSE(e.broken());
        CHECK(contains(e.what(), "statement stopped by the server after statement_timeout=200ms (max_statement_time)"));
        CHECK(took >= 190ms);
        CHECK(took < 5s);
    };
    SECTION("query, twice: the cached statement is stopped again, not out of sync") {
        for (int i = 0; i < 2; ++i) {
            const auto start = Clock::now();
            const auto e = thrown<QueryError>([&] { (void)c->query("SELECT SLEEP(30)"); });
            check_stopped(e, Clock::now() - start);
        }
    }
    SECTION("execute") {
        const auto start = Clock::now();
        const auto e = thrown<QueryError>([&] { c->execute("SELECT SLEEP(30)"); });
        check_stopped(e, Clock::now() - start);
    }
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
    CHECK(c->query("SELECT SLEEP(0.01), 7").int_at(0, 1) == 7);  // short statements are not cut

    SECTION("with autocommit=0 too (both go in one SET)") {
        auto both = connect("statement_timeout=1500ms&autocommit=0");
        CHECK(text_at(both->query("SELECT CAST(@@max_statement_time AS CHAR)")) == "1.500000");
        CHECK(both->query("SELECT @@autocommit").int_at(0) == 0);
    }
    SECTION("statement_timeout=0 is off") {
        auto off = connect("statement_timeout=0");
        CHECK(text_at(off->query("SELECT CAST(@@max_statement_time AS CHAR)")) == "0.000000");
    }
}

TEST_CASE("mariadb: reset rolls back an open transaction", "[mariadb]") {
    Table t("pb_m_reset", "x INT");
    auto admin = connect();
    auto c = connect();
    CHECK_FALSE(c->needs_reset());
    c->execute("START TRANSACTION");
    c->execute("INSERT INTO " + t.name() + " VALUES (1)");
    CHECK(c->in_transaction());
    CHECK(c->needs_reset());
    c->reset();
    CHECK_FALSE(c->in_transaction());
    CHECK_FALSE(c->needs_reset());
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);

    SECTION("without reset_connection, session variables survive reset") {
        c->execute("SET @x = 5");
        c->reset();
        CHECK(c->query("SELECT @x").int_at(0) == 5);
    }
    SECTION("a reset with nothing open changes nothing") {
        c->reset();
        CHECK(c->query("SELECT 3").int_at(0) == 3);
    }
}

TEST_CASE("mariadb: reset_connection=1 clears the session and prepared statements still work", "[mariadb]") {
    Table t("pb_m_rc", "x INT");
    auto c = connect("reset_connection=1&statement_timeout=5s");
    CHECK(c->needs_reset());  // always: the session is reset on every release
    const auto id = thread_id(*c);
    c->execute("SET @x = 5");
    const std::string sql = "SELECT CAST(? AS SIGNED) + 1";
    CHECK(c->query(sql, {I(1)}).int_at(0) == 2);
    CHECK(c->query("SELECT @x").int_at(0) == 5);
    c->execute("START TRANSACTION");
    c->execute("INSERT INTO " + t.name() + " VALUES (1)");
    c->execute("SET SESSION max_statement_time = 0");
    c->reset();
    CHECK_FALSE(c->in_transaction());
    CHECK(std::holds_alternative<std::monostate>(c->query("SELECT @x").rows.at(0).at(0)));
    CHECK(c->query(sql, {I(41)}).int_at(0) == 42);  // prepared again after the reset
    CHECK(c->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
    // The URL's session settings come back after the reset.
    CHECK(text_at(c->query("SELECT CAST(@@max_statement_time AS CHAR)")) == "5.000000");
    CHECK(thread_id(*c) == id);  // the same session, reset in place

    SECTION("with autocommit=0, autocommit stays off after the reset") {
        auto off = connect("reset_connection=1&autocommit=0");
        off->execute("SET autocommit = 1");
        off->reset();
        CHECK(off->query("SELECT @@autocommit").int_at(0) == 0);
    }
}

TEST_CASE("mariadb: reset_query runs on reset, after the rollback", "[mariadb]") {
    Table t("pb_m_rq", "x INT");
    // The reset query runs after the rollback: its insert stays.
    auto c = connect("reset_query=" + std::string("SET%20%40y%20%3D%207%3B%20INSERT%20INTO%20") + t.name() +
                     "%20VALUES%20(9)");
    // The driver's first connection ran it once already (reset_query_check.hpp).
    CHECK(c->query("SELECT count(*) FROM " + t.name()).int_at(0) == 1);
    c->execute("SET @y = 0");
    CHECK(c->needs_reset());
    c->execute("START TRANSACTION");
    c->execute("INSERT INTO " + t.name() + " VALUES (1)");
    c->reset();
    CHECK(c->query("SELECT @y").int_at(0) == 7);
    const auto rows = c->query("SELECT x FROM " + t.name());
    REQUIRE(rows.size() == 2);
    CHECK(rows.int_at(0) == 9);
    CHECK(rows.int_at(1) == 9);

    SECTION("a reset_query failing later throws from reset") {
        auto gone = std::make_unique<Table>("pb_m_rq_gone", "x INT");
        auto bad = connect("reset_query=SELECT%20*%20FROM%20" + gone->name());
        gone.reset();  // dropped
        const auto e = thrown<QueryError>([&] { bad->reset(); });
        CHECK(e.code() == "1146");
    }
}

TEST_CASE("mariadb: autocommit=0 keeps writes in a transaction until COMMIT, and reset rolls them back",
          "[mariadb]") {
    Table t("pb_m_ac", "x INT");
    auto admin = connect();
    auto c = connect("autocommit=0");
    CHECK(c->query("SELECT @@autocommit").int_at(0) == 0);
    c->execute("INSERT INTO " + t.name() + " VALUES (1)");
    CHECK(c->in_transaction());
    CHECK(c->needs_reset());
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
    c->reset();
    CHECK_FALSE(c->in_transaction());
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
    c->execute("INSERT INTO " + t.name() + " VALUES (2)");
    c->execute("COMMIT");
    CHECK_FALSE(c->in_transaction());
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
    // And the default: every statement commits at once.
    auto plain = connect();
    CHECK(plain->query("SELECT @@autocommit").int_at(0) == 1);
    plain->execute("INSERT INTO " + t.name() + " VALUES (3)");
    CHECK_FALSE(plain->in_transaction());
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 2);
}

TEST_CASE("mariadb: a killed connection is broken, and stays broken", "[mariadb]") {
    auto admin = connect();
    auto c = connect();
    c->execute("SET @keep = 1");
    const auto id = thread_id(*c);
    admin->execute("KILL CONNECTION " + std::to_string(id));
    REQUIRE(eventually([&] { return !session_exists(*admin, id); }));
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
    INFO(e.what());
    CHECK(e.broken());
    CHECK(e.kind() == ErrorKind::connection_lost);
    CHECK(c->is_broken());
    const auto again = thrown<QueryError>([&] { c->execute("SELECT 1"); });
    CHECK(again.code() == "2006");
    CHECK(again.kind() == ErrorKind::connection_lost);
    CHECK(contains(again.what(), "is broken"));
    CHECK_FALSE(contains(again.what(), server_password()));
    CHECK_THROWS_AS(c->reset(), QueryError);
    CHECK_FALSE(c->ping());
    c->interrupt();  // nothing to interrupt: harmless
}

TEST_CASE("mariadb: connect_read_only gives a session whose transactions cannot write", "[mariadb]") {
    Table t("pb_m_ro", "x INT");
    auto d = driver();
    auto c = d->connect_read_only(Clock::now() + 10s);
    CHECK(c->query("SELECT @@tx_read_only").int_at(0) == 1);
    CHECK(c->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);  // reading is fine
    const auto e = thrown<QueryError>([&] { c->execute("INSERT INTO " + t.name() + " VALUES (1)"); });
    CHECK(e.code() == "1792");
    CHECK(e.kind() == ErrorKind::read_only);
    CHECK_FALSE(e.broken());
    // A plain connection from the same driver writes.
    auto w = d->connect(Clock::now() + 10s);
    w->execute("INSERT INTO " + t.name() + " VALUES (1)");
    CHECK(c->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
}
