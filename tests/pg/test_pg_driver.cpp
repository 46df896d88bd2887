// The PostgreSQL driver against a real server (see pg_support.hpp for POOLBENCH_PG_URL):
// URL parameters, queries and result conversion, the statement cache, COPY, errors,
// timeouts, interrupts and reset. (Connection failures: test_pg_connection_failures.cpp;
// URL option values: test_pg_url_options.cpp.)
#include "pg_support.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

using namespace poolbench;
using namespace pgtest;

namespace {

Value D(double v) { return Value{v}; }
Value S(std::string v) { return Value{std::move(v)}; }

using pgtest::backend_pid;

using pgtest::thrown;

/// The "timer active" field of the client-side TCP socket using local port `port` from
/// /proc/net/tcp{,6}: 2 means the keepalive timer is armed (SO_KEEPALIVE), 0 no timer.
/// -1 when the socket is not found.
int tcp_timer_of_local_port(std::int64_t port) {
    for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(file);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string sl, local, remote, state, queues, timer;
            fields >> sl >> local >> remote >> state >> queues >> timer;
            const std::size_t colon = local.rfind(':');
            if (colon == std::string::npos || state != "01") continue;  // ESTABLISHED only
            if (std::stol(local.substr(colon + 1), nullptr, 16) != port) continue;
            return std::stoi(timer.substr(0, timer.find(':')));
        }
    }
    return -1;
}

}  // namespace

TEST_CASE("pg: the driver names itself and never shows the password", "[pg]") {
    const auto d = driver();
    CHECK(d->backend() == poolbench::Backend::postgresql);
    const std::string pw = server_password();
    REQUIRE(pw.size() >= 8);
    CHECK(d->describe().find(pw) == std::string::npos);
    CHECK(d->describe().find("***") != std::string::npos);
}

TEST_CASE("pg: URL parameters reach libpq, poolbench's own are stripped", "[pg]") {
    SECTION("application_name defaults to poolbench") {
        auto c = connect();
        CHECK(text_at(c->query("SELECT current_setting('application_name')")) == "poolbench");
    }
    SECTION("an explicit application_name wins") {
        auto c = connect("application_name=pb_custom_app");
        CHECK(text_at(c->query("SELECT current_setting('application_name')")) == "pb_custom_app");
    }
    SECTION("options pass through (percent-decoded)") {
        auto c = connect("options=-c%20work_mem%3D7MB&statement_timeout=5s&reset_query=DISCARD%20ALL");
        CHECK(text_at(c->query("SHOW work_mem")) == "7MB");
        // statement_timeout was ours: the server's setting is untouched.
        CHECK(text_at(c->query("SHOW statement_timeout")) == "0");
    }
    SECTION("unknown parameters and bad durations are ConfigErrors at driver creation") {
        const auto e = thrown<ConfigError>([] { (void)driver("sslmdoe=disable"); });
        CHECK(std::string(e.what()).find("sslmdoe") != std::string::npos);
        CHECK(std::string(e.what()).find(server_password()) == std::string::npos);
        CHECK_THROWS_AS(driver("statement_timeout=fast"), ConfigError);
        CHECK_THROWS_AS(driver("statement_timeout=5parsecs"), ConfigError);
        CHECK_NOTHROW(driver("statement_timeout=250ms&connect_timeout=5&sslmode=disable"));
        // Values libpq would only reject when connecting: a bad URL, not a dead database.
        CHECK_THAT(thrown<ConfigError>([] { (void)driver("sslmode=bogus"); }).what(),
                   Catch::Contains("invalid sslmode 'bogus'") &&
                       Catch::Contains("use one of disable,allow,prefer,require,verify-ca,verify-full"));
        CHECK_THAT(thrown<ConfigError>([] { (void)driver("connect_timeout=soon"); }).what(),
                   Catch::Contains("invalid connect_timeout 'soon'"));
        CHECK_THAT(thrown<ConfigError>([] { (void)driver("target_session_attrs=readwrite"); }).what(),
                   Catch::Contains("read-write"));
        CHECK_THAT(thrown<ConfigError>([] { (void)driver("port=70000"); }).what(),
                   Catch::Contains("from 1 to 65535"));
        CHECK_NOTHROW(driver("target_session_attrs=read-write&keepalives_idle=30&gssencmode=disable"));
    }
}

TEST_CASE("pg: TCP keepalives are on unless the URL turns them off", "[pg]") {
    const auto timer_for = [](const std::string& params) {
        auto c = connect(params);
        const auto port = c->query("SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()").int_at(0);
        return tcp_timer_of_local_port(port);
    };
    CHECK(timer_for("") == 2);             // keepalive timer armed
    CHECK(timer_for("keepalives=0") == 0);  // and this is what "off" looks like
}

TEST_CASE("pg: query sends parameters as text and converts results by type", "[pg]") {
    auto c = connect();
    const auto rows = c->query(
        "SELECT $1::int8 + 1, $2::float8 * 2, $3::text || '!', $4::int4 IS NULL, 42::int2, 7::int4, "
        "1.5::numeric, true, false, NULL::text, 'x'::varchar, 2.5::float4, 123::oid, '2024-01-02'::date, $4",
        {I(41), D(1.25), S("hi"), Value{}});
    REQUIRE(rows.size() == 1);
    const auto& r = rows.rows[0];
    REQUIRE(r.size() == 15);
    CHECK(std::get<std::int64_t>(r[0]) == 42);
    CHECK(std::get<double>(r[1]) == 2.5);
    CHECK(std::get<std::string>(r[2]) == "hi!");
    CHECK(std::get<std::int64_t>(r[3]) == 1);  // bool true
    CHECK(std::get<std::int64_t>(r[4]) == 42);
    CHECK(std::get<std::int64_t>(r[5]) == 7);
    CHECK(std::get<double>(r[6]) == 1.5);
    CHECK(std::get<std::int64_t>(r[7]) == 1);
    CHECK(std::get<std::int64_t>(r[8]) == 0);
    CHECK(std::holds_alternative<std::monostate>(r[9]));
    CHECK(std::get<std::string>(r[10]) == "x");
    CHECK(std::get<double>(r[11]) == 2.5);
    CHECK(std::get<std::int64_t>(r[12]) == 123);
    CHECK(std::get<std::string>(r[13]) == "2024-01-02");
    CHECK(std::holds_alternative<std::monostate>(r[14]));

    SECTION("extreme values round-trip") {
        const double third = 1.0 / 3.0;
        const auto x = c->query("SELECT $1::int8, $2::float8, $3::float8, $4::text, $5::float8",
                                {I(std::numeric_limits<std::int64_t>::min()), D(third),
                                 D(std::numeric_limits<double>::infinity()), S("it's \"quoted\" é\n"),
                                 D(std::numeric_limits<double>::quiet_NaN())});
        CHECK(x.int_at(0, 0) == std::numeric_limits<std::int64_t>::min());
        CHECK(std::get<double>(x.rows[0][1]) == third);
        CHECK(std::isinf(std::get<double>(x.rows[0][2])));
        CHECK(std::get<std::string>(x.rows[0][3]) == "it's \"quoted\" é\n");
        CHECK(std::isnan(std::get<double>(x.rows[0][4])));
    }
    SECTION("several rows, and statements that return none") {
        const auto many = c->query("SELECT g FROM generate_series(1, $1::int) g ORDER BY g", {I(5)});
        REQUIRE(many.size() == 5);
        CHECK(many.int_at(4) == 5);
        CHECK(c->query("CREATE TEMP TABLE t_none(x int)").empty());
        CHECK(c->query("INSERT INTO t_none VALUES ($1)", {I(3)}).empty());
        CHECK(c->query("SELECT x FROM t_none").int_at(0) == 3);
    }
}

TEST_CASE("pg: prepared statements are cached per connection by SQL text", "[pg]") {
    auto c = connect();
    const std::string sql = "SELECT $1::int8 * 2";
    CHECK(c->query(sql, {I(2)}).int_at(0) == 4);
    CHECK(c->query(sql, {I(5)}).int_at(0) == 10);
    const auto listed = c->query("SELECT name, statement FROM pg_prepared_statements ORDER BY name");
    // pb_1 is our statement (prepared once), pb_2 the listing query itself.
    REQUIRE(listed.size() == 2);
    CHECK(text_at(listed, 0, 0) == "pb_1");
    CHECK(text_at(listed, 0, 1) == sql);
    CHECK(text_at(listed, 1, 0) == "pb_2");

    SECTION("a statement deallocated behind the cache's back is prepared again") {
        c->execute("DEALLOCATE ALL");
        CHECK(c->query(sql, {I(21)}).int_at(0) == 42);
        CHECK(c->query("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", {S(sql)}).int_at(0) == 1);
    }
}

TEST_CASE("pg: execute runs several statements, errors carry the SQLSTATE", "[pg]") {
    auto c = connect();
    c->execute("CREATE TEMP TABLE t_exec(x int PRIMARY KEY); INSERT INTO t_exec VALUES (1); INSERT INTO t_exec VALUES (2)");
    CHECK(c->query("SELECT count(*) FROM t_exec").int_at(0) == 2);

    const auto dup = thrown<QueryError>([&] { c->execute("INSERT INTO t_exec VALUES (1)"); });
    CHECK(dup.code() == "23505");
    CHECK(dup.native_code() == 0);
    CHECK_FALSE(dup.broken());
    CHECK(std::string(dup.what()).find("duplicate key") != std::string::npos);

    const auto div = thrown<QueryError>([&] { c->execute("SELECT 1; SELECT 1/0; SELECT 2"); });
    CHECK(div.code() == "22012");

    const auto syntax = thrown<QueryError>([&] { (void)c->query("SELEC 1"); });
    CHECK(syntax.code() == "42601");
    CHECK_FALSE(syntax.broken());

    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
    CHECK(c->ping());
}

TEST_CASE("pg: a terminated backend is detected and stays broken", "[pg]") {
    auto admin = connect();
    auto c = connect();
    const auto pid = backend_pid(*c);
    REQUIRE(c->ping());
    CHECK(admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)}).int_at(0) == 1);
    REQUIRE(eventually([&] {
        return admin->query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {I(pid)}).int_at(0) == 0;
    }));
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
    CHECK(e.broken());
    CHECK(c->is_broken());
    CHECK_FALSE(c->ping());
    const auto again = thrown<QueryError>([&] { c->execute("SELECT 1"); });
    CHECK(again.broken());
    CHECK(c->is_broken());
    CHECK_THROWS_AS(c->reset(), QueryError);
}

TEST_CASE("pg: ping notices a terminated backend", "[pg]") {
    auto admin = connect();
    auto c = connect();
    const auto pid = backend_pid(*c);
    REQUIRE(admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)}).int_at(0) == 1);
    REQUIRE(eventually([&] {
        return admin->query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {I(pid)}).int_at(0) == 0;
    }));
    CHECK_FALSE(c->ping());
    CHECK(c->is_broken());
}

TEST_CASE("pg: statement_timeout cancels the statement and the connection stays usable", "[pg]") {
    auto c = connect("statement_timeout=200ms");
    SECTION("query") {
        const auto start = Clock::now();
        const auto e = thrown<QueryError>([&] { (void)c->query("SELECT pg_sleep(5)"); });
        const auto took = Clock::now() - start;
        CHECK(e.code() == "57014");
        CHECK_FALSE(e.broken());
        CHECK(std::string(e.what()).find("cancelled after") != std::string::npos);
        CHECK(took >= 190ms);
        CHECK(took < 1500ms);
    }
    SECTION("execute, inside a transaction") {
        c->execute("BEGIN");
        const auto start = Clock::now();
        const auto e = thrown<QueryError>([&] { c->execute("SELECT pg_sleep(5)"); });
        CHECK(Clock::now() - start < 1500ms);
        CHECK(e.code() == "57014");
        CHECK(c->in_transaction());  // aborted, not gone
        c->reset();
        CHECK_FALSE(c->in_transaction());
    }
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
    CHECK(c->query("SELECT pg_sleep(0.01), 7").int_at(0, 1) == 7);  // short statements are not cut
}

TEST_CASE("pg: interrupt() from another thread cancels a running statement", "[pg]") {
    auto admin = connect();
    auto c = connect();
    const auto pid = backend_pid(*c);
    std::atomic<bool> seen_running{false};
    std::thread canceller([&] {
        seen_running = eventually(
            [&] {
                return admin
                           ->query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND state = 'active' "
                                   "AND query LIKE 'SELECT pg_sleep%'",
                                   {I(pid)})
                           .int_at(0) == 1;
            },
            10s);
        c->interrupt();
    });
    const auto start = Clock::now();
    std::optional<QueryError> error;
    try {
        (void)c->query("SELECT pg_sleep(30)");
    } catch (const QueryError& e) {
        error = e;
    }
    canceller.join();
    CHECK(seen_running);
    REQUIRE(error.has_value());
    CHECK(error->code() == "57014");
    CHECK_FALSE(error->broken());
    CHECK(Clock::now() - start < 15s);
    CHECK(c->query("SELECT 1").int_at(0) == 1);
}

TEST_CASE("pg: reset rolls back open and aborted transactions and runs reset_query", "[pg]") {
    auto admin = connect();
    const std::string table = unique_name("pb_reset");
    admin->execute("CREATE TABLE " + table + " (x int)");
    struct Drop {
        Connection& c;
        std::string t;
        ~Drop() {
            try {
                c.execute("DROP TABLE IF EXISTS " + t);
            } catch (...) {
            }
        }
    } drop{*admin, table};

    SECTION("open transaction") {
        auto c = connect();
        c->execute("BEGIN");
        c->execute("INSERT INTO " + table + " VALUES (1)");
        CHECK(c->in_transaction());
        c->reset();
        CHECK_FALSE(c->in_transaction());
        CHECK(admin->query("SELECT count(*) FROM " + table).int_at(0) == 0);
    }
    SECTION("aborted transaction") {
        auto c = connect();
        c->execute("BEGIN");
        CHECK_THROWS_AS(c->execute("SELECT 1/0"), QueryError);
        CHECK(c->in_transaction());
        c->reset();
        CHECK_FALSE(c->in_transaction());
        CHECK(c->query("SELECT 1").int_at(0) == 1);
    }
    SECTION("reset_query=DISCARD ALL restores the session and the statement cache copes") {
        auto c = connect("reset_query=DISCARD%20ALL");
        const std::string default_work_mem = text_at(c->query("SHOW work_mem"));
        REQUIRE(default_work_mem != "7MB");
        c->execute("SET work_mem = '7MB'");
        CHECK(c->query("SELECT $1::int", {I(1)}).int_at(0) == 1);
        CHECK(text_at(c->query("SHOW work_mem")) == "7MB");
        c->reset();
        CHECK(text_at(c->query("SHOW work_mem")) == default_work_mem);
        CHECK(c->query("SELECT $1::int", {I(2)}).int_at(0) == 2);
        // pb_1 ("SHOW work_mem", prepared first) went with DISCARD ALL; the new ones have new names.
        CHECK(c->query("SELECT count(*) FROM pg_prepared_statements WHERE name = 'pb_1'").int_at(0) == 0);
        CHECK(c->query("SELECT count(*) FROM pg_prepared_statements").int_at(0) >= 2);
    }
    SECTION("without reset_query, session settings survive reset") {
        auto c = connect();
        c->execute("SET work_mem = '7MB'");
        c->reset();
        CHECK(text_at(c->query("SHOW work_mem")) == "7MB");
    }
}

TEST_CASE("pg: connection errors are one clear line each and never show the password", "[pg]") {
    const std::string pw = server_password();
    const auto connect_error = [&](const std::string& url) {
        const auto e = thrown<ConnectError>([&] { (void)driver_for(url)->connect(Clock::now() + 10s); });
        const std::string message = e.what();
        INFO(message);
        CHECK(message.find(pw) == std::string::npos);
        CHECK(message.find('\n') == std::string::npos);
        CHECK(message.find("***@") != std::string::npos);  // names the redacted URL
        return message;
    };
    const std::string wrong_pw = "not-the-" + pw;
    const std::string bad_password = connect_error(url_with_password(wrong_pw));
    CHECK(bad_password.find("password authentication failed for user \"poolbench\"") != std::string::npos);
    CHECK(bad_password.find(wrong_pw) == std::string::npos);

    const std::string bad_db = connect_error(url_with_db("pb_no_such_db"));
    CHECK(bad_db.find("database \"pb_no_such_db\" does not exist") != std::string::npos);

    LoopbackSocket closed(false);
    const int port = closed.port();
    closed.close();  // nothing listens there now
    const std::string refused = connect_error(url_at("127.0.0.1:" + std::to_string(port)));
    CHECK(refused.find("connection refused: is PostgreSQL running on 127.0.0.1:" + std::to_string(port) + "?") !=
          std::string::npos);

    const std::string bad_host = connect_error(url_at("pb-no-such-host.invalid:5432"));
    CHECK(bad_host.find("could not resolve host \"pb-no-such-host.invalid\"") != std::string::npos);

    CHECK(bad_password != bad_db);
    CHECK(bad_db != refused);
    CHECK(refused != bad_password);
}

TEST_CASE("pg: connect gives up at its deadline when the server never answers", "[pg]") {
    LoopbackSocket silent(true);  // accepts TCP (in the kernel backlog), never speaks
    const std::string url = url_at("127.0.0.1:" + std::to_string(silent.port()));
    SECTION("the deadline passed to connect") {
        auto driver = driver_for(url);  // made first: under a sanitizer it alone can take tens of ms
        const auto start = Clock::now();
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(start + 300ms); });
        const auto took = Clock::now() - start;
        CHECK(took >= 290ms);
        CHECK(took < 1s);
        CHECK(std::string(e.what()).find("timed out after 300 ms") != std::string::npos);
        CHECK(std::string(e.what()).find(server_password()) == std::string::npos);
    }
    SECTION("connect_timeout from the URL, when shorter") {
        auto driver = driver_for(url + "?connect_timeout=2");
        const auto start = Clock::now();
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(start + 30s); });
        const auto took = Clock::now() - start;
        CHECK(took >= 1900ms);
        CHECK(took < 3s);
        CHECK(std::string(e.what()).find("connect_timeout") != std::string::npos);
    }
}

TEST_CASE("pg more: a number too large for a double comes back as its text", "[pg]") {
    auto c = connect();
    const auto rows = c->query("SELECT 1e400::numeric, 1.5::numeric, 'NaN'::float8");
    REQUIRE(rows.size() == 1);
    const auto& row = rows.rows[0];
    const auto* big = std::get_if<std::string>(&row[0]);
    REQUIRE(big != nullptr);
    CHECK(big->size() == 401);
    CHECK(big->front() == '1');
    CHECK(big->find_first_not_of('0', 1) == std::string::npos);
    const auto* small = std::get_if<double>(&row[1]);
    REQUIRE(small != nullptr);
    CHECK(*small == 1.5);
    const auto* nan = std::get_if<double>(&row[2]);
    REQUIRE(nan != nullptr);
    CHECK(std::isnan(*nan));
}

TEST_CASE("pg more: more than 65535 parameters is refused before sending", "[pg]") {
    auto c = connect();
    std::vector<Value> params(65536, Value{std::int64_t{1}});
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT $1", params); });
    CHECK(e.code() == "54023");
    CHECK_FALSE(e.broken());
    CHECK(contains(e.what(), "at most 65535 parameters, 65536 were given"));
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT $1::int + 1", {I(41)}).int_at(0) == 42);
}

TEST_CASE("pg more: past 256 cached statements, new ones run unprepared", "[pg]") {
    auto c = connect();
    for (int i = 0; i < 256; ++i) {
        CHECK(c->query("SELECT " + std::to_string(i) + " + $1::int", {I(1)}).int_at(0) == i + 1);
    }
    const auto prepared = [&] { return c->query("SELECT count(*) FROM pg_prepared_statements").int_at(0); };
    // The count query is itself statement 257: it runs unprepared, like every new one now.
    CHECK(prepared() == 256);
    CHECK(c->query("SELECT 1000 + $1::int", {I(1)}).int_at(0) == 1001);
    CHECK(prepared() == 256);
    // A cached statement still runs prepared.
    CHECK(c->query("SELECT 7 + $1::int", {I(1)}).int_at(0) == 8);
}

TEST_CASE("pg more: COPY TO STDOUT is drained, COPY FROM STDIN is refused, the connection stays usable", "[pg]") {
    auto c = connect();
    c->execute("CREATE TEMP TABLE copy_more(x int)");
    c->execute("INSERT INTO copy_more SELECT generate_series(1, 1000)");
    c->execute("COPY copy_more TO STDOUT");
    CHECK(c->query("COPY (SELECT 1) TO STDOUT").empty());
    const auto e = thrown<QueryError>([&] { c->execute("COPY copy_more FROM STDIN"); });
    CHECK(e.code() == "57014");
    CHECK_FALSE(e.broken());
    CHECK(contains(e.what(), "COPY FROM STDIN is not supported by poolbench"));
    CHECK_FALSE(c->is_broken());
    CHECK_FALSE(c->in_transaction());
    CHECK(c->query("SELECT count(*) FROM copy_more").int_at(0) == 1000);
}
