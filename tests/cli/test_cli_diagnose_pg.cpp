// test_cli_diagnose_pg.cpp — `poolbench diagnose` against the throwaway PostgreSQL
// (POOLBENCH_PG_URL; FAILS without it): connection limits and settings, sessions left
// idle in transaction by this test, a real lock chain (one session holds a table lock,
// others block on it in background threads with a bounded statement_timeout), the
// workloads' privileges, and that nothing was written (row counts unchanged).
//
// The server is shared with other tests running at the same time: each check looks for
// this test's own sessions (its pids and application names), not for exact totals.
#include "cli_support.hpp"

#include "pg_session.hpp"

#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

const json* finding_with(const json& j, const std::string& code, const std::string& text) {
    for (const auto& f : j.at("findings")) {
        if (f.at("code") == code && f.at("text").get<std::string>().find(text) != std::string::npos) return &f;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("pg: diagnose reports limits, settings and privileges as typed facts", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "5", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "postgresql");
    CHECK(j.at("server").get<std::string>().rfind("PostgreSQL 15", 0) == 0);
    CHECK(j.at("local") == true);  // 127.0.0.1
    const json& f = j.at("facts");
    CHECK(f.at("max_connections") == 300);
    CHECK(f.at("superuser_reserved_connections").get<int>() >= 0);
    CHECK(f.at("connections_in_use").is_number_integer());
    CHECK(f.at("free_connections").get<int>() > 0);
    CHECK(f.at("standby") == false);
    CHECK(f.at("statement_timeout_ms") == 0);
    CHECK(f.at("idle_in_transaction_session_timeout_ms").is_number_integer());
    CHECK(f.at("tcp_keepalives_idle_s").is_number_integer());
    CHECK(f.at("can_create_tables").is_boolean());
    CHECK(j.at("connect_ms").at("p50").get<double>() > j.at("round_trip_us").at("p50").get<double>() / 1000.0);
    bool free_ok = false, privileges_ok = false, no_timeout = false;
    for (const auto& x : j.at("findings")) {
        free_ok = free_ok || (x.at("code") == "free_connections" && x.at("level") == "ok");
        privileges_ok = privileges_ok || x.at("code") == "workload_privileges";
        no_timeout = no_timeout || x.at("code") == "no_statement_timeout";
    }
    CHECK(free_ok);
    CHECK(privileges_ok);
    CHECK(no_timeout);
    // The recommendation: this machine's cores (loopback), bounded by the free connections.
    const json& p = j.at("pool_size");
    CHECK(p.at("recommended_max_size").get<int>() >= 3);
    CHECK(p.at("free_connections") == f.at("free_connections"));
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);
    CHECK(r.out.find(password) == std::string::npos);
    CHECK(r.err.find(password) == std::string::npos);
    // poolbench's own statement_timeout in the URL silences the advice to add one; --measure
    // reports a ladder bounded by the free connections.
    const auto with = run_in(dir.path(), {"diagnose", "--db", url + "?statement_timeout=5s", "--samples", "2", "--measure",
                                          "--measure-step", "100ms", "--app-instances", "4", "--json", "-"});
    INFO(with.err);
    REQUIRE(with.code == 0);
    const json w = parse_json(with.out);
    CHECK(with.out.find("no_statement_timeout") == std::string::npos);
    REQUIRE(w.at("ladder").at("steps").size() >= 2);
    CHECK(w.at("ladder").at("steps").at(1).at("connections") == 2);
    CHECK(w.at("pool_size").at("app_instances") == 4);
}

TEST_CASE("pg: sessions left idle in transaction are a problem, named by application", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session admin(url, "pb-diag-admin");
    REQUIRE(admin.exec("CREATE TABLE IF NOT EXISTS poolbench_diag_idle (id int PRIMARY KEY)").empty());
    REQUIRE(admin.exec("INSERT INTO poolbench_diag_idle SELECT g FROM generate_series(1, 10) g ON CONFLICT DO NOTHING").empty());
    const std::string app = "billing-" + std::to_string(::getpid());
    std::vector<std::unique_ptr<Session>> leaked;
    std::string pids;
    for (int i = 0; i < 3; ++i) {
        leaked.push_back(std::make_unique<Session>(url, app));
        REQUIRE(leaked.back()->exec("BEGIN").empty());
        REQUIRE(leaked.back()->exec("SELECT count(*) FROM poolbench_diag_idle").empty());
        pids += (pids.empty() ? "" : ",") + std::to_string(leaked.back()->pid());
    }
    // Until all three have been idle in their transactions for more than the threshold.
    REQUIRE(wait_for([&] {
        return admin.value("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + pids +
                           ") AND state = 'idle in transaction' AND now() - state_change > interval '300 ms'") == "3";
    }));
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                       "--json", "-"});
    INFO(r.err);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    const json* idle = finding_with(j, "idle_in_transaction", "(app '" + app + "'");
    REQUIRE(idle != nullptr);
    CHECK(idle->at("level") == "problem");
    CHECK(idle->at("text").get<std::string>().rfind("3 sessions idle in transaction for more than", 0) == 0);
    CHECK(idle->at("action").get<std::string>().find("idle_in_transaction_session_timeout") != std::string::npos);
    int rows = 0;
    for (const auto& row : j.at("tables").at("idle_in_transaction").at("rows")) {
        if (row.at("application") == app) {
            ++rows;
            CHECK(row.at("idle_s").get<double>() >= 0.3);
            CHECK(row.at("last_statement") == "SELECT count(*) FROM poolbench_diag_idle");
        }
    }
    CHECK(rows == 3);
    CHECK(r.err.find("[problem] idle_in_transaction: 3 sessions") != std::string::npos);
    // JUnit: the problem is a failed test case.
    const auto junit = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                           "--junit", "d.xml"});
    CHECK(junit.code == 1);
    CHECK(slurp(dir.path() / "d.xml").find("<failure type=\"idle_in_transaction\"") != std::string::npos);
    // Nothing written: the leaked transactions are still open, the rows the same.
    for (auto& s : leaked) CHECK(s->value("SELECT count(*) FROM poolbench_diag_idle") == "10");
    leaked.clear();
    CHECK(admin.value("SELECT count(*) FROM poolbench_diag_idle") == "10");
}

TEST_CASE("pg: a password in a statement is hidden in every output, whatever its quoting", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session admin(url, "pb-diag-admin");
    const std::string app = "secrets-" + std::to_string(::getpid());
    // Statements that name a password, left idle in transaction so diagnose shows them.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"SELECT E'EscSe\\'cret2' AS password", "EscSe"},
        {"SELECT $$DollarSecret1$$ AS password", "DollarSecret1"},
        {"SELECT $pw$TagSecret5$pw$ AS password", "TagSecret5"},
        {"SELECT 'Quo''teSecret3' AS password", "teSecret3"},
        {"SELECT 1 AS password/**/, 'CommentSecret8' AS x", "CommentSecret8"},
        {"SELECT 'host=127.0.0.1 user=x password=DblinkSecret4' AS conninfo", "DblinkSecret4"},
    };
    std::vector<std::string> statements;
    for (const auto& c : cases) statements.push_back(c.first);
    IdleSessions open = leave_idle_in_transaction(url, app, statements);
    REQUIRE(wait_for([&] {
        return admin.value("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + open.pids +
                           ") AND state = 'idle in transaction' AND now() - state_change > interval '300 ms'") ==
               std::to_string(cases.size());
    }));
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                       "--json", "d.json", "--junit", "d.xml", "--html", "d.html"});
    INFO(r.err);
    CHECK(r.code == 1);
    const std::string everything = r.out + r.err + slurp(dir.path() / "d.json") + slurp(dir.path() / "d.xml") +
                                   slurp(dir.path() / "d.html");
    int shown = 0;
    const json report = parse_json(slurp(dir.path() / "d.json"));
    for (const auto& row : report.at("tables").at("idle_in_transaction").at("rows"))
        if (row.at("application") == app) ++shown;
    CHECK(shown == static_cast<int>(cases.size()));  // the statements are there, their secrets are not
    for (const auto& [sql, secret] : cases) {
        INFO(sql);
        CHECK(everything.find(secret) == std::string::npos);
    }
    CHECK(everything.find("AS password") != std::string::npos);
    open.sessions.clear();
}

TEST_CASE("pg: a lock chain names the blocker, how many it blocks, for how long and on what", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session holder(url, "pb-diag-holder");
    REQUIRE(holder.exec("CREATE TABLE IF NOT EXISTS poolbench_diag_accounts (id int PRIMARY KEY, balance int)").empty());
    REQUIRE(holder.exec("INSERT INTO poolbench_diag_accounts VALUES (1, 100), (2, 200) ON CONFLICT DO NOTHING").empty());
    const std::string rows_before = holder.value("SELECT count(*) || ':' || sum(balance) FROM poolbench_diag_accounts");
    REQUIRE(holder.exec("BEGIN").empty());
    REQUIRE(holder.exec("LOCK TABLE poolbench_diag_accounts IN SHARE MODE").empty());
    // Two sessions block on the table lock, each bounded by its own statement_timeout.
    std::vector<std::unique_ptr<Session>> waiters;
    std::vector<std::thread> threads;
    std::vector<std::string> errors(2);
    for (int i = 0; i < 2; ++i) waiters.push_back(std::make_unique<Session>(url, "pb-diag-waiter"));
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            errors[static_cast<std::size_t>(i)] = waiters[static_cast<std::size_t>(i)]->exec(
                "SET statement_timeout = '30s'; UPDATE poolbench_diag_accounts SET balance = balance WHERE id = 1");
        });
    }
    const std::string holder_pid = std::to_string(holder.pid());
    Session watcher(url, "pb-diag-watch");
    const bool blocked = wait_for([&] {
        // Both blocked, for longer than --lock-wait below.
        return watcher.value("SELECT count(*) FROM pg_stat_activity a WHERE " + holder_pid +
                             " = ANY(pg_blocking_pids(a.pid)) AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid "
                             "AND NOT l.granted AND now() - l.waitstart > interval '300 ms')") == "2";
    });
    CHECK(blocked);
    const auto r = blocked ? run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--lock-wait", "250ms",
                                                 "--json", "-"})
                           : Result{};
    REQUIRE(holder.exec("ROLLBACK").empty());  // the waiters go on and end
    for (auto& t : threads) t.join();
    INFO(r.err);
    REQUIRE(blocked);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    const json* chain = finding_with(j, "lock_chain", "pid " + holder_pid + " has blocked 2 sessions for ");
    REQUIRE(chain != nullptr);
    CHECK(chain->at("level") == "problem");
    CHECK(chain->at("text").get<std::string>().find("on relation poolbench_diag_accounts (app 'pb-diag-holder', idle in "
                                                    "transaction)") != std::string::npos);
    CHECK(chain->at("action").get<std::string>().find("pg_terminate_backend(" + holder_pid + ")") != std::string::npos);
    int waits = 0;
    for (const auto& row : j.at("tables").at("lock_waits").at("rows")) {
        if (std::to_string(row.at("blocker_pid").get<int>()) != holder_pid) continue;
        ++waits;
        CHECK(row.at("blocked_application") == "pb-diag-waiter");
        CHECK(row.at("blocker_statement") == "LOCK TABLE poolbench_diag_accounts IN SHARE MODE");
        CHECK(row.at("waiting_s").is_number());
    }
    CHECK(waits == 2);
    for (const auto& e : errors) CHECK(e.empty());  // both updates ran once the lock went
    CHECK(holder.value("SELECT count(*) || ':' || sum(balance) FROM poolbench_diag_accounts") == rows_before);
}

TEST_CASE("pg: a role that can neither create the workloads' tables nor use them is told what to grant",
          "[cli][pg][diagnose]") {
    (void)pg_url();
    const char* limited = std::getenv("POOLBENCH_PG_LIMITED_URL");
    if (limited == nullptr || *limited == '\0') FAIL("POOLBENCH_PG_LIMITED_URL is not set: start the server with scripts/pg_sandbox.sh start");
    // A schema of its own with no tables in it: other tests create the workloads' tables in
    // public and grant this role what they test, in any order (ctest -j).
    {
        Session owner(pg_url(), "pb-diag-owner");
        REQUIRE(owner.exec("CREATE SCHEMA IF NOT EXISTS pb_diag_empty; "
                           "GRANT USAGE ON SCHEMA pb_diag_empty TO poolbench_limited") == "");
    }
    const std::string url = std::string(limited) + "?options=-csearch_path%3Dpb_diag_empty";
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);  // warnings: the database itself is usable
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("can_create_tables") == false);
    bool told = false;
    for (const auto& f : j.at("findings")) {
        const std::string code = f.at("code");
        if (code == "workload_cannot_create_tables" || code == "workload_table_privileges") {
            told = true;
            CHECK(f.at("level") == "warn");
            CHECK(f.at("action").get<std::string>().find("GRANT") != std::string::npos);
        }
        CHECK(code != "workload_privileges");
    }
    CHECK(told);
}
