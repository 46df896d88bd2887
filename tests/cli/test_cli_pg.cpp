// test_cli_pg.cpp — the poolbench executable against a real PostgreSQL server
// (POOLBENCH_PG_URL; scripts/pg_sandbox.sh starts a throwaway one). Without the variable
// every test here FAILS, naming the script. Connection failures must exit 3 with one line
// that never contains the password.
#include "cli_support.hpp"

#include <libpq-fe.h>

#include <fstream>
#include <random>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

TEST_CASE("pg: stress read, write and mixed pass with no lost writes", "[cli][pg]") {
    const std::string url = pg_url();
    TempDir dir;
    for (const char* workload : {"read", "write", "mixed"}) {
        INFO("workload " << workload);
        const auto r = run_in(dir.path(), {"stress", "--db", url, "--ops", "2000", "--threads", "8", "--workload",
                                           workload, "--rows", "1000", "--json", "-"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        const json j = parse_json(r.out);
        CHECK(j.at("database").at("backend") == "postgresql");
        CHECK(j.at("ops").at("ok") == 2000);
        CHECK(j.at("verdict") == "pass");
        if (std::string(workload) != "read") {
            const json& w = j.at("writes");
            CHECK(w.at("checked") == true);
            CHECK(w.at("lost") == 0);
            CHECK(w.at("verified") == w.at("acknowledged"));
            CHECK(w.at("acknowledged").get<int>() > 0);
        }
        const std::string password = url_password(url);
        if (password.size() >= 3) {
            CHECK(r.out.find(password) == std::string::npos);
            CHECK(r.err.find(password) == std::string::npos);
        }
    }
}

TEST_CASE("pg: leak detection is exact", "[cli][pg][leak]") {
    const std::string url = pg_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", url, "--threshold", "200ms", "--ops", "500", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "postgresql");
    const json& check = j.at("leak_check");
    CHECK(check.at("reported") == 3);
    CHECK(check.at("traced_to_injector") == 3);
    CHECK(check.at("false_positives") == 0);
}

TEST_CASE("pg: an unusable server exits 3 with one line and no password", "[cli][pg]") {
    const std::string url = pg_url();
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);  // the sandbox always has one; the redaction check needs it
    TempDir dir;
    RefusingPort refusing;
    const std::string wrong_password = url_with_password(url, password + "-wrong");
    struct Case {
        const char* what;
        std::string url;
        const char* says;  // what the line must name
    };
    const std::vector<Case> cases{
        {"wrong password", wrong_password, "password"},
        {"unknown database", url_with_db(url, "poolbench_no_such_db"), "poolbench_no_such_db"},
        {"refused port", url_at(url, "127.0.0.1:" + std::to_string(refusing.port())), "refused"},
    };
    for (const auto& c : cases) {
        for (const char* command : {"stress", "leak"}) {
            INFO(c.what << " (" << command << ")");
            const auto r = run_in(dir.path(), {command, "--db", c.url, "--ops", "10", "--acquire-timeout", "5s"});
            INFO(r.err);
            CHECK(r.code == 3);
            CHECK(count_lines(r.err) == 1);
            CHECK(r.err.rfind("poolbench: ", 0) == 0);
            CHECK(r.err.find(c.says) != std::string::npos);
            CHECK(r.err.find(password) == std::string::npos);
            CHECK(r.err.find(password + "-wrong") == std::string::npos);
            CHECK(r.out.find(password) == std::string::npos);
        }
    }
}

namespace {

/// Runs SQL as the sandbox's owner role (POOLBENCH_PG_URL).
void as_owner(const std::string& sql) {
    PGconn* c = PQconnectdb(pg_url().c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult* r = PQexec(c, sql.c_str());
    const auto status = PQresultStatus(r);
    INFO(PQerrorMessage(c));
    CHECK((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
    PQclear(r);
    PQfinish(c);
}

std::string limited_url() {
    const char* url = std::getenv("POOLBENCH_PG_LIMITED_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PG_LIMITED_URL is not set: start the server with eval \"$(scripts/pg_sandbox.sh start)\"");
    }
    return url;
}

}  // namespace

TEST_CASE("pg: a least-privilege role uses tables a DBA created, and is told the SQL when they are missing",
          "[cli][pg]") {
    TempDir dir;
    // The owner creates and seeds the tables (as a DBA would), then grants just enough.
    REQUIRE(run_in(dir.path(), {"stress", "--db", pg_url(), "--workload", "mixed", "--rows", "1000", "--ops", "50",
                                "--no-progress"})
                .code == 0);
    as_owner("GRANT SELECT ON poolbench_accounts TO poolbench_limited; "
             "GRANT SELECT, INSERT ON poolbench_writes TO poolbench_limited");
    const auto r = run_in(dir.path(), {"stress", "--db", limited_url(), "--workload", "mixed", "--rows", "1000",
                                       "--ops", "500", "--threads", "4", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(parse_json(r.out).at("writes").at("lost") == 0);

    // Where the tables do not exist and the role may not create them: exit 3, naming the
    // privilege and the SQL to run.
    as_owner("CREATE SCHEMA IF NOT EXISTS pb_empty; GRANT USAGE ON SCHEMA pb_empty TO poolbench_limited");
    const std::string empty = limited_url() + "?options=-csearch_path%3Dpb_empty";
    const auto refused = run_in(dir.path(), {"stress", "--db", empty, "--workload", "write", "--ops", "10"});
    CHECK(refused.code == 3);
    CHECK(count_lines(refused.err) == 1);
    CHECK(refused.err.find("poolbench_limited cannot create table poolbench_writes") != std::string::npos);
    CHECK(refused.err.find("ask a DBA to run: CREATE TABLE IF NOT EXISTS poolbench_writes") != std::string::npos);
    CHECK(refused.err.find("GRANT SELECT, INSERT ON poolbench_writes TO poolbench_limited") != std::string::npos);
    const std::string password = url_password(limited_url());
    if (password.size() >= 3) CHECK(refused.err.find(password) == std::string::npos);
}

TEST_CASE("pg: clean as a role that may not drop the tables names their owner and what a DBA would run",
          "[cli][pg][clean]") {
    TempDir dir;
    // A schema of the test's own, so that no other test's tables are dropped.
    std::random_device rd;
    const std::string schema = "pb_clean_" + std::to_string(rd() % 1'000'000);
    as_owner("CREATE SCHEMA " + schema + "; GRANT USAGE ON SCHEMA " + schema + " TO poolbench_limited");
    const std::string in_schema = "?options=-csearch_path%3D" + schema;
    REQUIRE(run_in(dir.path(), {"stress", "--db", pg_url() + in_schema, "--workload", "mixed", "--rows", "100",
                                "--ops", "20", "--no-progress"})
                .code == 0);
    const std::string advice =
        "only a table's owner may drop it: run clean as poolbench, or ask a DBA to run: "
        "ALTER TABLE poolbench_accounts OWNER TO poolbench_limited; ALTER TABLE poolbench_writes OWNER TO poolbench_limited";
    // It may not count their rows.
    const auto denied = run_in(dir.path(), {"clean", "--db", limited_url() + in_schema});
    INFO(denied.err);
    CHECK(denied.code == 3);
    CHECK(count_lines(denied.err) == 1);
    CHECK(denied.err.find("poolbench_limited may not count and drop poolbench_accounts, poolbench_writes "
                          "(permission denied for table poolbench_accounts") != std::string::npos);
    CHECK(denied.err.find(advice) != std::string::npos);
    // It may count them (SELECT granted), not drop them.
    as_owner("GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO poolbench_limited");
    const auto no_drop = run_in(dir.path(), {"clean", "--db", limited_url() + in_schema});
    INFO(no_drop.err);
    CHECK(no_drop.code == 3);
    CHECK(count_lines(no_drop.err) == 1);
    CHECK(no_drop.err.find("(must be owner of table poolbench_accounts (42501)") != std::string::npos);
    CHECK(no_drop.err.find(advice) != std::string::npos);
    const std::string password = url_password(limited_url());
    if (password.size() >= 3) CHECK(no_drop.err.find(password) == std::string::npos);
    // The owner cleans.
    const auto r = run_in(dir.path(), {"clean", "--db", pg_url() + in_schema});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("dropped poolbench_writes") != std::string::npos);
    as_owner("SET client_min_messages = warning; DROP SCHEMA " + schema + " CASCADE");
}

TEST_CASE("pg: a run whose writes cannot be counted afterwards says the verification failed, and fails",
          "[cli][pg]") {
    TempDir dir;
    // poolbench_writes is a view whose rows raise an error when read: the inserts go through
    // to its table, the count after the run fails (as when the server is gone by then).
    std::random_device rd;
    const std::string schema = "pb_nocount_" + std::to_string(rd() % 1'000'000);
    as_owner("CREATE SCHEMA " + schema + "; SET search_path = " + schema +
             "; CREATE TABLE pb_base (run_id TEXT NOT NULL, worker INTEGER NOT NULL, seq BIGINT NOT NULL, payload TEXT, "
             "PRIMARY KEY (run_id, worker, seq)); "
             "CREATE FUNCTION pb_refuse(text) RETURNS boolean LANGUAGE plpgsql AS "
             "$$ BEGIN RAISE EXCEPTION 'pb test: rows unreadable'; END $$; "
             "CREATE VIEW poolbench_writes AS SELECT run_id, worker, seq, payload FROM pb_base WHERE pb_refuse(run_id)");
    const std::string db = pg_url() + "?options=-csearch_path%3D" + schema;
    const auto r = run_in(dir.path(), {"stress", "--db", db, "--workload", "write", "--ops", "50", "--threads", "2",
                                       "--no-progress", "--json", "r.json", "--html", "r.html"});
    // A scenario's expectation on the uncounted figure fails, saying why.
    write_file(dir.path() / "w.toml", "[scenario]\nbackends = [\"postgresql\"]\nexpect = [\"writes.lost == 0\"]\n"
                                      "[[phase]]\nname = \"load\"\nthreads = 2\nops = 50\nworkload = \"write\"\n");
    const auto scenario = run_in(dir.path(), {"run", "./w.toml", "--db", db, "--no-progress", "--json", "-"});
    as_owner("SET client_min_messages = warning; DROP SCHEMA " + schema + " CASCADE");
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK(r.out.find("writes: acknowledged 50, NOT verified: counting this run's rows failed: pb test: rows unreadable") !=
          std::string::npos);
    CHECK(r.out.find("keeps no rows") == std::string::npos);
    CHECK(r.out.find("verdict: FAIL") != std::string::npos);
    const json w = parse_json(slurp(dir.path() / "r.json")).at("writes");
    CHECK(w.at("checked") == false);
    // Unknown, not 0 (a user test saw "ok writes.lost == 0: actual 0" after a failed count).
    for (const char* key : {"verified", "lost", "in_doubt_committed"}) CHECK(w.at(key).is_null());
    CHECK(w.at("acknowledged") == 50);
    CHECK(w.at("error").get<std::string>().find("pb test: rows unreadable") != std::string::npos);
    CHECK(w.at("error").get<std::string>().find(url_password(pg_url())) == std::string::npos);
    CHECK(slurp(dir.path() / "r.html").find("NOT verified: counting this run's rows failed: pb test: rows unreadable") !=
          std::string::npos);
    CAPTURE(scenario.out, scenario.err);
    CHECK(scenario.code == 1);
    bool judged = false;
    const json report = parse_json(scenario.out);
    for (const auto& e : report.at("expectations")) {
        if (e.at("name") != "writes.lost == 0") continue;
        judged = true;
        CHECK(e.at("passed") == false);
        CHECK_THAT(e.at("note").get<std::string>(), Catch::Contains("the rows were not counted"));
    }
    CHECK(judged);
}

TEST_CASE("pg: a password kept off the command line in a .pgpass file is used", "[cli][pg]") {
    TempDir dir;
    const std::string url = pg_url();
    const std::string password = url_password(url);
    REQUIRE_FALSE(password.empty());
    // host:port:database:user:password, as libpq reads it (mode 0600 or it is ignored).
    const std::size_t at = url.find('@');
    const std::size_t colon = url.find(':', at);
    const std::size_t slash = url.find('/', at);
    const std::string port = url.substr(colon + 1, slash - colon - 1);
    const fs::path pgpass = dir.path() / "pgpass";
    std::ofstream(pgpass) << "127.0.0.1:" << port << ":poolbench:poolbench:" << password << "\n";
    fs::permissions(pgpass, fs::perms::owner_read | fs::perms::owner_write);
    const std::string no_password = url_with_password(url, "").replace(url.find("poolbench:") + 9, 1, "");
    INFO(no_password);
    REQUIRE(no_password.find(password) == std::string::npos);
    const auto r = run_in_env(dir.path(), {"stress", "--db", no_password, "--ops", "100", "--no-progress"},
                              {"PGPASSFILE=" + pgpass.string()});
    INFO(r.err);
    CHECK(r.code == 0);
    // Without it, the same URL is refused: the file is what made it work.
    const auto without = run_in_env(dir.path(), {"stress", "--db", no_password, "--ops", "10", "--no-progress"},
                                    {"PGPASSFILE=" + (dir.path() / "absent").string()});
    CHECK(without.code == 3);
}

TEST_CASE("pg: a pool larger than the server's free connection slots is said once, with what to change",
          "[cli][pg]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", pg_url(), "--pool-size", "5000", "--threads", "2", "--ops",
                                       "100", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);  // two threads never need more than the server has
    // Said once (the text report that --json - moves to stderr repeats it as a note).
    const std::string warning = "poolbench: warning: the pool may open 5000 connections but the server has";
    REQUIRE(r.err.find(warning) != std::string::npos);
    CHECK(r.err.find(warning, r.err.find(warning) + 1) == std::string::npos);
    CHECK(r.err.find("lower --pool-size, or raise max_connections") != std::string::npos);
    const json j = parse_json(r.out);
    REQUIRE(j.contains("notes"));
    CHECK(j.at("notes").at(0).get<std::string>().find("free (max_connections") != std::string::npos);
}
