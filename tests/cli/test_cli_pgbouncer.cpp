// test_cli_pgbouncer.cpp — the poolbench executable through PgBouncer in transaction
// pooling (POOLBENCH_PGBOUNCER_URL: scripts/pgbouncer_sandbox.sh, default_pool_size 10, in
// front of the test server at POOLBENCH_PG_URL; FAILS without them): every built-in
// workload with more client connections than PgBouncer has server connections, the
// report's prepared-statement mode, prepare=on's failure, and diagnose.
#include "cli_support.hpp"

#include <libpq-fe.h>

#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("pgbouncer: every built-in workload passes stress through PgBouncer with unnamed statements",
          "[cli][pg][pgbouncer]") {
    const std::string url = pgbouncer_url();
    TempDir dir;
    // 20 threads on a pool of 20: 20 client connections on PgBouncer's 10 server connections.
    for (const char* workload : {"select1", "read", "write", "mixed", "read_write"}) {
        INFO("workload " << workload);
        const auto r = run_in(dir.path(), {"stress", "--db", url, "--workload", workload, "--threads", "20",
                                           "--pool-size", "20", "--ops", "2000", "--rows", "1000", "--json", "-"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        const json j = parse_json(r.out);
        CHECK(j.at("database").at("backend") == "postgresql");
        CHECK(j.at("database").at("prepared_statements") == "unnamed");
        CHECK(j.at("ops").at("ok") == 2000);
        CHECK(j.at("ops").at("failed") == 0);
        CHECK(j.at("verdict") == "pass");
        if (j.contains("writes")) {
            CHECK(j.at("writes").at("lost") == 0);
            CHECK(j.at("writes").at("verified") == j.at("writes").at("acknowledged"));
        }
        CHECK(url_password(url).size() >= 3);
        CHECK_FALSE(has(r.out, url_password(url)));
        CHECK_FALSE(has(r.err, url_password(url)));
    }
    // The text report says it too.
    const auto t = run_in(dir.path(), {"stress", "--db", url, "--workload", "select1", "--ops", "100", "--no-progress"});
    INFO(t.err);
    REQUIRE(t.code == 0);
    CHECK(has(t.out, "prepared statements: unnamed ("));
}

TEST_CASE("pgbouncer: the report says named statements on PostgreSQL itself, unnamed with prepare=off",
          "[cli][pg][pgbouncer]") {
    const std::string url = pg_url();
    TempDir dir;
    for (const auto& [query, mode] : std::vector<std::pair<std::string, std::string>>{
             {"", "named"}, {"?prepare=on", "named"}, {"?prepare=off", "unnamed"}}) {
        INFO("prepare " << query);
        const auto r = run_in(dir.path(), {"stress", "--db", url + query, "--workload", "read", "--ops", "300",
                                           "--rows", "1000", "--json", "-"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        CHECK(parse_json(r.out).at("database").at("prepared_statements") == mode);
    }
    const auto bad = run_in(dir.path(), {"stress", "--db", url + "?prepare=sometimes", "--ops", "10"});
    CHECK(bad.code == 2);
    CHECK(count_lines(bad.err) == 1);
    CHECK(has(bad.err, "invalid prepare 'sometimes'"));
}

// Why it fails, every time: the pool opens its 20 connections before the load (--min-idle
// 20), and each new connection's first statement (the run's SELECT pg_backend_pid(), which
// lists it for the faults) is prepared as pb_1 on whichever of PgBouncer's 10 server
// connections it gets; only the first on each server connection can, so at least 10 find
// it taken (42P05). Later, a client on another server connection finds its statements
// missing (26000) or another client's. Server connections keep what was prepared on them (an earlier run's
// pb_1 makes the first statement fail: exit 3); only prepare=on runs meet that, so they are
// left so (a RECONNECT would close server connections other tests are holding on to).
TEST_CASE("pgbouncer: prepare=on through PgBouncer fails with 42P05 or 26000, explained in one line",
          "[cli][pg][pgbouncer]") {
    const std::string url = pgbouncer_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", url + "?prepare=on", "--workload", "select1", "--threads",
                                       "20", "--pool-size", "20", "--min-idle", "20", "--ops", "400",
                                       "--acquire-timeout", "5s", "--no-progress"});
    INFO(r.out << r.err);
    REQUIRE((r.code == 1 || r.code == 3));
    const std::string explained = "prepare=on: behind a pooler in transaction mode (PgBouncer) each transaction may run "
                                  "on another server connection";
    const std::string& where = r.code == 3 ? r.err : r.out;
    CHECK(has(where, explained));
    CHECK((has(where, "(42P05: prepare=on") || has(where, "(26000: prepare=on")));
    if (r.code == 3) CHECK(count_lines(r.err) == 1);  // the database was unusable from the first statement
    // Every line that explains it is one line with the SQLSTATE and the remedy.
    std::size_t from = 0;
    while ((from = where.find(explained, from)) != std::string::npos) {
        const std::size_t start = where.rfind('\n', from) + 1;
        const std::string line = where.substr(start, where.find('\n', from) - start);
        CHECK(has(line, "use prepare=auto or prepare=off"));
        from += explained.size();
    }
}

TEST_CASE("pgbouncer: diagnose says the address is PgBouncer and that its pool is the server's", "[cli][pg][diagnose][pgbouncer]") {
    const std::string url = pgbouncer_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "3", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = j.at("facts");
    CHECK(f.at("connection_pooler") == "pgbouncer");
    CHECK(f.at("pgbouncer_version").get<std::string>().rfind("PgBouncer 1.", 0) == 0);
    CHECK(f.at("pgbouncer_pool_mode") == "transaction");
    CHECK(f.at("pgbouncer_pool_size") == 10);
    CHECK(f.at("pgbouncer_max_client_conn") == 500);
    const json* pgb = diagnose_finding(j, "pgbouncer");
    REQUIRE(pgb != nullptr);
    CHECK(j.at("findings").at(0).at("code") == "pgbouncer");  // first: it changes how the rest reads
    const std::string text = pgb->at("text");
    CHECK(has(text, "this address is PgBouncer 1."));
    CHECK(has(text, "the server-side pool is PgBouncer's, at most 10 server connections for user poolbench on "
                    "database poolbench (pool_size)"));
    CHECK(has(pgb->at("action").get<std::string>(), "keep prepare=auto"));
    const json* size = diagnose_finding(j, "pool_size");
    REQUIRE(size != nullptr);
    CHECK(has(size->at("text").get<std::string>(), "as PgBouncer's pool_size, now 10"));
    CHECK(diagnose_finding(j, "pgbouncer_prepare_on") == nullptr);

    // The text output says it as well.
    const auto t = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "3"});
    REQUIRE(t.code == 0);
    CHECK(has(t.out, "[ok] pgbouncer: this address is PgBouncer"));

    // Diagnose's read-only session is not left on PgBouncer's server connections: the
    // ones it used are handed out first (LIFO); three of them held in transactions (not
    // all ten: another test holding the rest would wait on these), none is read-only.
    std::vector<PGconn*> held;
    bool read_only = false;
    for (int i = 0; i < 3; ++i) {
        PGconn* c = PQconnectdb(url.c_str());
        REQUIRE(PQstatus(c) == CONNECTION_OK);
        held.push_back(c);
        PQclear(PQexec(c, "BEGIN"));
        PGresult* res = PQexec(c, "SELECT current_setting('default_transaction_read_only')");
        REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
        read_only = read_only || std::string(PQgetvalue(res, 0, 0)) == "on";
        PQclear(res);
    }
    for (PGconn* c : held) {
        PQclear(PQexec(c, "COMMIT"));
        PQfinish(c);
    }
    CHECK_FALSE(read_only);

    // PostgreSQL itself: no pooler, no such finding.
    const auto direct = run_in(dir.path(), {"diagnose", "--db", pg_url(), "--samples", "3", "--json", "-"});
    INFO(direct.err);
    REQUIRE(direct.code == 0);
    const json d = parse_json(direct.out);
    CHECK(d.at("facts").at("connection_pooler") == "none");
    CHECK(diagnose_finding(d, "pgbouncer") == nullptr);
}

TEST_CASE("pgbouncer: diagnose as a user PgBouncer's console refuses still says PgBouncer",
          "[cli][pg][diagnose][pgbouncer]") {
    const std::string url = pgbouncer_limited_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "3", "--json", "-"});
    INFO(r.err);
    REQUIRE((r.code == 0 || r.code == 1));  // the limited role may lack the workloads' privileges
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("connection_pooler") == "pgbouncer");
    CHECK_FALSE(j.at("facts").contains("pgbouncer_pool_size"));
    const json* pgb = diagnose_finding(j, "pgbouncer");
    REQUIRE(pgb != nullptr);
    CHECK(has(pgb->at("text").get<std::string>(),
              "this address is PgBouncer in front of the server (its console, database pgbouncer, refused user "
              "poolbench_limited: not in admin_users or stats_users)"));
    CHECK(has(pgb->at("action").get<std::string>(), "add poolbench_limited to PgBouncer's stats_users"));
    const json* size = diagnose_finding(j, "pool_size");
    REQUIRE(size != nullptr);
    CHECK(has(size->at("text").get<std::string>(), "as PgBouncer's pool_size (the client pool's"));

    // prepare=on behind a pooler whose pool mode it cannot read: a warning.
    const auto on = run_in(dir.path(), {"diagnose", "--db", url + "?prepare=on", "--samples", "1", "--json", "-"});
    INFO(on.err);
    if (on.code == 0 || on.code == 1) {
        const json* warn = diagnose_finding(parse_json(on.out), "pgbouncer_prepare_on");
        REQUIRE(warn != nullptr);
        CHECK(warn->at("level") == "warn");
    } else {
        // Named statements met another client's on a server connection: the run says why.
        CHECK(on.code == 3);
        CHECK(has(on.err, "prepare=on: behind a pooler in transaction mode (PgBouncer)"));
    }
}

TEST_CASE("pgbouncer: no max_connections warning for a pool whose connections are PgBouncer's clients",
          "[cli][pg][pgbouncer]") {
    TempDir dir;
    // 400 > the server's max_connections (300): directly that is a warning; through PgBouncer
    // the server never sees those connections.
    const auto direct = run_in(dir.path(), {"stress", "--db", pg_url(), "--pool-size", "400", "--threads", "2",
                                            "--ops", "100", "--no-progress", "--json", "-"});
    INFO(direct.err);
    REQUIRE(direct.code == 0);
    CHECK(has(direct.err, "warning: the pool may open 400 connections"));
    const auto r = run_in(dir.path(), {"stress", "--db", pgbouncer_url(), "--pool-size", "400", "--threads", "2",
                                       "--ops", "100", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_FALSE(has(r.err, "warning"));
    const json j = parse_json(r.out);
    bool noted = false;
    for (const auto& n : j.at("notes")) noted = noted || has(n.get<std::string>(), "is a pooler (PgBouncer) in front of the server");
    CHECK(noted);
}

TEST_CASE("pgbouncer: pg.terminate_backends refuses to end server backends PgBouncer shares", "[cli][pg][pgbouncer]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "backend-kill-postgres", "--db", pgbouncer_url(), "--no-progress", "--set",
                                       "phase.load.duration=2s", "--set", "phase.load.fault.1.at=500ms", "--set",
                                       "phase.load.fault.1.for=500ms"});
    INFO(r.err);
    // Refused before the load, once connecting showed the pooler: nothing was terminated.
    CHECK(r.code == 2);
    CHECK(has(r.err, "pg.terminate_backends cannot run through a pooler"));
    CHECK(has(r.err, "point --db at the server itself"));
    CHECK_FALSE(has(r.err, url_password(pgbouncer_url())));
    CHECK(count_lines(r.err) == 1);
}
