// test_cli_diagnose_mariadb.cpp — `poolbench diagnose` against the throwaway MariaDB
// (POOLBENCH_MARIADB_URL and friends; FAILS without them): the server's facts and the
// --measure ladder, a session left idle in transaction by this test, a real lock chain (one
// session holds a row lock, two block on it in background threads with a bounded
// innodb_lock_wait_timeout), DDL waiting for a metadata lock, a password in a running
// statement, and the workloads' privileges for the limited user and for grants through a
// role. What changes the whole server (read_only, replication, wait_timeout,
// max_connections) is in cli_fault/test_cli_diagnose_mariadb_server.cpp (run alone).
//
// The server is shared with other tests running at the same time: each check looks for
// this test's own sessions (their connection ids) and tables, not for exact totals.
#include "cli_support.hpp"

#include "mariadb_session.hpp"

#include <regex>
#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

/// No password (nor a GRANT line's password hash) in any of `outputs`.
void require_no_secrets(const std::string& url, const std::string& outputs) {
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);
    CHECK(outputs.find(password) == std::string::npos);
    CHECK(outputs.find("IDENTIFIED") == std::string::npos);
    CHECK_FALSE(std::regex_search(outputs, std::regex("\\*[0-9A-F]{40}")));
}

/// Until the sessions `ids` ("1,2") have all slept for more than 300 ms (in the transaction
/// the test left open). PROCESSLIST only: InnoDB refreshes INNODB_TRX's snapshot only after
/// 0.1 s without readers, so polling it would keep diagnose's view stale.
bool idle_in_transaction(DiagSession& watcher, const std::string& ids, int count) {
    return wait_for([&] {
        return watcher.value("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + ids +
                             ") AND COMMAND = 'Sleep' AND TIME_MS > 300") == std::to_string(count);
    });
}

}  // namespace

TEST_CASE("mariadb: diagnose reports the server, limits, timeouts and privileges as typed facts",
          "[cli][mariadb][diagnose]") {
    const std::string url = mariadb_env("POOLBENCH_MARIADB_URL");
    TempDir dir;
    // Thresholds far above what other tests leave behind: this test checks the facts.
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "5", "--idle-in-transaction", "10m",
                                       "--lock-wait", "10m", "--json", "d.json", "--junit", "d.xml", "--html", "d.html"});
    INFO(r.out + r.err);
    CHECK(r.code == 0);
    const std::string report = slurp(dir.path() / "d.json");
    const json j = parse_json(report);
    CHECK(j.at("database").at("backend") == "mariadb");
    CHECK(j.at("server").get<std::string>().rfind("MariaDB 10.11", 0) == 0);
    CHECK(j.at("local") == true);
    const json& f = j.at("facts");
    CHECK(f.at("server_flavor") == "mariadb");
    CHECK(f.at("user") == "poolbench@%");
    CHECK(f.at("database") == "poolbench");
    CHECK(f.at("max_connections") == 300);
    CHECK(f.at("connections_in_use").is_number_integer());
    CHECK(f.at("free_connections").get<int>() > 0);
    CHECK(f.at("wait_timeout_s").is_number_integer());
    CHECK(f.at("max_statement_time_s") == 0);
    CHECK(f.at("innodb_lock_wait_timeout_s") == 50);
    CHECK(f.at("lock_wait_timeout_s").is_number_integer());
    CHECK(f.at("read_only") == false);
    CHECK(f.at("innodb_read_only") == false);
    CHECK(f.at("replica") == false);  // poolbench has SUPER: it may read the replication status
    CHECK(f.at("aborted_connects").is_number_integer());
    CHECK(f.at("connection_errors_max_connections").is_number_integer());
    CHECK(f.at("open_transactions").is_number_integer());
    CHECK(f.at("can_create_tables") == true);
    CHECK(j.at("connect_ms").at("p50").get<double>() > 0);
    const json* free = diagnose_finding(j, "free_connections");
    REQUIRE(free != nullptr);
    CHECK(free->at("level") == "ok");
    CHECK(diagnose_finding(j, "workload_privileges") != nullptr);
    CHECK(diagnose_finding(j, "no_statement_timeout") != nullptr);
    CHECK(diagnose_finding(j, "sessions_not_inspectable") == nullptr);  // poolbench has PROCESS
    const json& p = j.at("pool_size");
    CHECK(p.at("recommended_max_size").get<int>() >= 3);
    CHECK(p.at("free_connections") == f.at("free_connections"));
    require_no_secrets(url, r.out + r.err + report + slurp(dir.path() / "d.xml") + slurp(dir.path() / "d.html"));

    // The URL's statement_timeout silences the advice to set one; --measure runs its ladder
    // through the driver, bounded by the free connections.
    const auto with = run_in(dir.path(), {"diagnose", "--db", url + "?statement_timeout=5s", "--samples", "2", "--measure",
                                          "--measure-step", "100ms", "--idle-in-transaction", "10m", "--lock-wait", "10m",
                                          "--json", "-"});
    INFO(with.err);
    CHECK(with.code == 0);
    const json w = parse_json(with.out);
    CHECK(diagnose_finding(w, "no_statement_timeout") == nullptr);
    CHECK(w.at("facts").at("session_max_statement_time_s") == 5);
    REQUIRE(w.at("ladder").at("steps").size() >= 2);
    CHECK(w.at("ladder").at("steps").at(1).at("connections") == 2);
    CHECK(w.at("ladder").at("steps").at(0).at("ops_s").get<double>() > 0);
    require_no_secrets(url, with.out + with.err);
}

TEST_CASE("mariadb: sessions left idle in transaction are a problem, with who and for how long",
          "[cli][mariadb][diagnose]") {
    const std::string url = mariadb_env("POOLBENCH_MARIADB_URL");
    TempDir dir;
    DiagSession admin(url);
    REQUIRE(admin.exec("CREATE TABLE IF NOT EXISTS poolbench_diag_idle (id INT PRIMARY KEY) ENGINE=InnoDB") == "");
    REQUIRE(admin.exec("INSERT IGNORE INTO poolbench_diag_idle VALUES (1), (2), (3)") == "");
    std::vector<std::unique_ptr<DiagSession>> leaked;
    std::string ids;
    for (int i = 0; i < 2; ++i) {
        leaked.push_back(std::make_unique<DiagSession>(url));
        REQUIRE(leaked.back()->exec("START TRANSACTION") == "");
        REQUIRE(leaked.back()->value("SELECT count(*) FROM poolbench_diag_idle") == "3");
        ids += (ids.empty() ? "" : ",") + leaked.back()->id();
    }
    REQUIRE(idle_in_transaction(admin, ids, 2));
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                       "--json", "-", "--junit", "d.xml"});
    INFO(r.err);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    const json* idle = diagnose_finding(j, "idle_in_transaction");
    REQUIRE(idle != nullptr);
    CHECK(idle->at("level") == "problem");
    CHECK(idle->at("text").get<std::string>().find("idle in transaction for more than 0.2 s (poolbench@127.0.0.1, "
                                                   "longest ") != std::string::npos);
    CHECK(idle->at("action").get<std::string>().find("idle_transaction_timeout") != std::string::npos);
    for (const auto& s : leaked) {
        const auto rows = table_rows(j, "transactions", "id", std::stoll(s->id()));
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].at("state") == "idle in transaction");
        CHECK(rows[0].at("state_s").get<double>() >= 0.3);
        CHECK(rows[0].at("user") == "poolbench");
        CHECK(rows[0].at("client") == "127.0.0.1");
        CHECK(rows[0].at("database") == "poolbench");
    }
    CHECK(j.at("facts").at("sessions_idle_in_transaction").get<int>() >= 2);
    // JUnit: the problem is a failed test case, named by its code and the client (stable across runs).
    const std::string junit = slurp(dir.path() / "d.xml");
    CHECK(junit.find("name=\"idle_in_transaction poolbench@127.0.0.1\" time=\"0\">\n      <failure "
                     "type=\"idle_in_transaction\"") != std::string::npos);
    // Nothing written or ended: the transactions are still open, the rows the same.
    for (auto& s : leaked) CHECK(s->value("SELECT count(*) FROM poolbench_diag_idle") == "3");
    leaked.clear();
    CHECK(admin.value("SELECT count(*) FROM poolbench_diag_idle") == "3");
}

TEST_CASE("mariadb: a lock chain names the root blocker, how many it blocks, for how long and on what",
          "[cli][mariadb][diagnose]") {
    const std::string url = mariadb_env("POOLBENCH_MARIADB_URL");
    TempDir dir;
    DiagSession holder(url);
    REQUIRE(holder.exec("CREATE TABLE IF NOT EXISTS poolbench_diag_lock (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB") == "");
    REQUIRE(holder.exec("INSERT IGNORE INTO poolbench_diag_lock VALUES (1, 100), (2, 200)") == "");
    const std::string before = holder.value("SELECT CONCAT(count(*), ':', sum(balance)) FROM poolbench_diag_lock");
    REQUIRE(holder.exec("START TRANSACTION") == "");
    REQUIRE(holder.value("SELECT balance FROM poolbench_diag_lock WHERE id = 1 FOR UPDATE") == "100");
    // Two sessions block on the row, each bounded by its own innodb_lock_wait_timeout.
    std::vector<std::unique_ptr<DiagSession>> waiters;
    for (int i = 0; i < 2; ++i) {
        waiters.push_back(std::make_unique<DiagSession>(url));
        REQUIRE(waiters.back()->exec("SET SESSION innodb_lock_wait_timeout = 30") == "");
    }
    std::vector<std::string> errors(2);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            errors[i] = waiters[i]->exec("UPDATE poolbench_diag_lock SET balance = balance WHERE id = 1");
        });
    }
    DiagSession watcher(url);
    const std::string ids = waiters[0]->id() + "," + waiters[1]->id();
    const bool blocked = wait_for([&] {
        // 'Updating' for a one-row UPDATE this long: waiting for the row lock (PROCESSLIST
        // only, see idle_in_transaction above).
        return watcher.value("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + ids +
                             ") AND STATE = 'Updating' AND TIME_MS > 300") == "2" &&
               // and the holder's transaction is over a second old (INNODB_TRX counts whole seconds)
               watcher.value("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = " + holder.id() +
                             " AND TIME_MS > 1100") == "1";
    });
    CHECK(blocked);
    const auto r = blocked ? run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--lock-wait", "250ms",
                                                 "--idle-in-transaction", "10m", "--long-query", "1s", "--json", "-",
                                                 "--junit", "d.xml"})
                           : Result{};
    REQUIRE(holder.exec("ROLLBACK") == "");  // the waiters go on and end
    for (auto& t : threads) t.join();
    INFO(r.err);
    INFO("the waiters' errors: " << errors[0] << " / " << errors[1]);
    REQUIRE(blocked);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    const json* chain = finding_containing(j, "lock_chain", "connection " + holder.id() + " has blocked 2 sessions for ");
    REQUIRE(chain != nullptr);
    CHECK(chain->at("level") == "problem");
    CHECK(chain->at("text").get<std::string>().find("on table `poolbench`.`poolbench_diag_lock` (poolbench@127.0.0.1, "
                                                    "idle in transaction)") != std::string::npos);
    CHECK(chain->at("action").get<std::string>().find("KILL " + holder.id()) != std::string::npos);
    CHECK(slurp(dir.path() / "d.xml").find("name=\"lock_chain `poolbench`.`poolbench_diag_lock` by poolbench@127.0.0.1\"") !=
          std::string::npos);
    // The holder blocks both; the second waiter also waits behind the first (one root).
    const auto rows = table_rows(j, "lock_waits", "blocker_id", std::stoll(holder.id()));
    CHECK(rows.size() == 2);
    for (const auto& row : rows) {
        CHECK(row.at("blocker_state") == "idle in transaction");
        CHECK(row.at("blocked_client") == "poolbench@127.0.0.1");
        CHECK(row.at("waiting_s").get<double>() >= 0.3);
        CHECK(row.at("lock").get<std::string>().find("RECORD X") != std::string::npos);
    }
    for (const auto& w : waiters) {
        const auto t = table_rows(j, "transactions", "id", std::stoll(w->id()));
        REQUIRE(t.size() == 1);
        CHECK(t[0].at("state") == "active (lock wait)");
        CHECK(t[0].at("statement") == "UPDATE poolbench_diag_lock SET balance = balance WHERE id = 1");
    }
    CHECK(finding_containing(j, "lock_chain", "connection " + waiters[0]->id() + " has") == nullptr);
    CHECK(finding_containing(j, "lock_chain", "connection " + waiters[1]->id() + " has") == nullptr);
    // Open for over a second but idle for less than --idle-in-transaction: a long transaction.
    const json* open = finding_containing(j, "long_transaction", "(longest: connection " + holder.id() + ", ");
    REQUIRE(open != nullptr);
    CHECK(open->at("level") == "warn");
    for (const auto& e : errors) CHECK(e.empty());  // both updates ran once the lock went
    CHECK(holder.value("SELECT CONCAT(count(*), ':', sum(balance)) FROM poolbench_diag_lock") == before);
}

TEST_CASE("mariadb: DDL waiting for a metadata lock behind an open transaction is reported", "[cli][mariadb][diagnose]") {
    const std::string url = mariadb_env("POOLBENCH_MARIADB_URL");
    TempDir dir;
    DiagSession holder(url);
    REQUIRE(holder.exec("CREATE TABLE IF NOT EXISTS poolbench_diag_ddl (id INT PRIMARY KEY) ENGINE=InnoDB") == "");
    REQUIRE(holder.exec("START TRANSACTION") == "");
    REQUIRE(holder.value("SELECT count(*) FROM poolbench_diag_ddl") == "0");
    DiagSession ddl(url);
    REQUIRE(ddl.exec("SET SESSION lock_wait_timeout = 30") == "");
    std::string error = "not run";
    std::thread t([&] { error = ddl.exec("ALTER TABLE poolbench_diag_ddl COMMENT 'diagnose test'"); });
    DiagSession watcher(url);
    const bool waiting = wait_for([&] {
        return watcher.value("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = " + ddl.id() +
                             " AND STATE = 'Waiting for table metadata lock' AND TIME_MS > 300") == "1";
    });
    CHECK(waiting);
    const auto r = waiting ? run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--lock-wait", "250ms",
                                                 "--idle-in-transaction", "10m", "--json", "-"})
                           : Result{};
    REQUIRE(holder.exec("ROLLBACK") == "");
    t.join();
    INFO(r.err);
    REQUIRE(waiting);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    const json* wait = finding_containing(j, "table_lock_wait", "connection " + ddl.id() + " (poolbench@127.0.0.1) "
                                          "running ALTER TABLE poolbench_diag_ddl COMMENT 'diagnose test'");
    REQUIRE(wait != nullptr);
    CHECK(wait->at("level") == "problem");
    CHECK(wait->at("text").get<std::string>().find("idle in transaction and may hold it") != std::string::npos);
    CHECK(error.empty());  // the DDL ran once the transaction ended
}

TEST_CASE("mariadb: a password in a running statement is hidden in every output", "[cli][mariadb][diagnose]") {
    const std::string url = mariadb_env("POOLBENCH_MARIADB_URL");
    TempDir dir;
    DiagSession runner(url);
    DiagSession watcher(url);
    const std::string sql = "SELECT SLEEP(30), 'Single\\'Secret1' AS password, \"DoubleSecret2\" AS x /* "
                            "CommentSecret3 */, 'Doubled''Secret4' AS y, `kept_identifier` -- DashSecret5\n, 2 AS z # "
                            "HashSecret6\nFROM (SELECT 1 AS kept_identifier) s";
    std::string error;
    std::thread t([&] { error = runner.exec(sql); });
    const bool running = wait_for([&] {
        return watcher.value("SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = " + runner.id() +
                             " AND STATE = 'User sleep'") == "1";
    });
    CHECK(running);
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--long-query", "1ms", "--lock-wait",
                                       "10m", "--idle-in-transaction", "10m", "--json", "d.json", "--junit", "d.xml",
                                       "--html", "d.html"});
    REQUIRE(watcher.exec("KILL QUERY " + runner.id()) == "");
    t.join();
    INFO(r.err);
    REQUIRE(running);
    const std::string everything = r.out + r.err + slurp(dir.path() / "d.json") + slurp(dir.path() / "d.xml") +
                                   slurp(dir.path() / "d.html");
    const json j = parse_json(slurp(dir.path() / "d.json"));
    const auto rows = table_rows(j, "longest_running", "id", std::stoll(runner.id()));
    REQUIRE(rows.size() == 1);
    // Cut to 120 characters with the "...", on one line.
    CHECK(rows[0].at("statement") == "SELECT SLEEP(30), '***' AS password, '***' AS x /***/, '***' AS y, `kept_identifier` "
                                     "/***/ , 2 AS z /***/ FROM (SELECT 1...");
    for (const char* secret : {"Secret1", "DoubleSecret2", "CommentSecret3", "Secret4", "DashSecret5", "HashSecret6"}) {
        INFO(secret);
        CHECK(everything.find(secret) == std::string::npos);
    }
    require_no_secrets(url, everything);
}

TEST_CASE("mariadb: a user without privileges gets findings about them, not a failure", "[cli][mariadb][diagnose]") {
    (void)mariadb_env("POOLBENCH_MARIADB_URL");
    const std::string url = mariadb_env("POOLBENCH_MARIADB_LIMITED_URL");
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--json", "d.json", "--html", "d.html"});
    INFO(r.out + r.err);
    REQUIRE(r.code == 0);  // warnings only: the database itself is usable
    const json j = parse_json(slurp(dir.path() / "d.json"));
    CHECK(j.at("facts").at("user") == "poolbench_limited@%");
    CHECK(j.at("facts").at("can_create_tables") == false);
    CHECK(j.at("facts").at("replica").is_null());
    const json* hidden = diagnose_finding(j, "sessions_not_inspectable");
    REQUIRE(hidden != nullptr);
    CHECK(hidden->at("level") == "warn");
    CHECK(hidden->at("action").get<std::string>().find("GRANT PROCESS ON *.* TO 'poolbench_limited'@'%'") != std::string::npos);
    const json* replication = diagnose_finding(j, "replication_not_inspectable");
    REQUIRE(replication != nullptr);
    CHECK(replication->at("action").get<std::string>().find("GRANT SLAVE MONITOR") != std::string::npos);
    bool told = false;
    for (const auto& f : j.at("findings")) {
        const std::string code = f.at("code");
        if (code == "workload_cannot_create_tables" || code == "workload_table_privileges") {
            told = true;
            CHECK(f.at("level") == "warn");
            CHECK(f.at("action").get<std::string>().find("GRANT") != std::string::npos);
            CHECK(f.at("action").get<std::string>().find("`poolbench_limited`@`%`") != std::string::npos);
        }
        CHECK(code != "workload_privileges");
    }
    CHECK(told);
    require_no_secrets(url, r.out + r.err + slurp(dir.path() / "d.json") + slurp(dir.path() / "d.html"));
}

TEST_CASE("mariadb: grants through a role and on single tables count, and what is missing is named",
          "[cli][mariadb][diagnose]") {
    (void)mariadb_env("POOLBENCH_MARIADB_URL");
    const std::string admin_url = mariadb_env("POOLBENCH_MARIADB_ADMIN_URL");
    const std::string tag = std::to_string(::getpid());
    const std::string db = "pbdiag_" + tag, user = "pbdiag_u" + tag, role = "pbdiag_r" + tag;
    const std::string password = "Role-Secret-" + tag;
    DiagSession admin(admin_url);
    // Dropped on every path, also when a REQUIRE fails.
    struct Cleanup {
        DiagSession& admin;
        std::string db, user, role;
        ~Cleanup() {
            (void)admin.exec("DROP USER IF EXISTS '" + user + "'@'%'");
            (void)admin.exec("DROP ROLE IF EXISTS " + role);
            (void)admin.exec("DROP DATABASE IF EXISTS " + db);
        }
    } cleanup{admin, db, user, role};
    // A database of its own with the workloads' tables (src/workload_sql.cpp), a role with
    // SELECT on all of it, and INSERT on one table given to the user directly.
    for (const std::string& sql :
         {"CREATE DATABASE " + db,
          "CREATE TABLE " + db + ".poolbench_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, filler TEXT) "
                                 "ENGINE=InnoDB",
          "CREATE TABLE " + db + ".poolbench_writes (run_id VARCHAR(64) NOT NULL, worker INT NOT NULL, seq BIGINT NOT "
                                 "NULL, payload TEXT, PRIMARY KEY (run_id, worker, seq)) ENGINE=InnoDB",
          "CREATE ROLE " + role, "GRANT SELECT ON " + db + ".* TO " + role,
          "CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + password + "' WITH MAX_USER_CONNECTIONS 5",
          "GRANT " + role + " TO '" + user + "'@'%'",
          "SET DEFAULT ROLE " + role + " FOR '" + user + "'@'%'"}) {
        INFO(sql);
        REQUIRE(admin.exec(sql) == "");
    }
    const std::string url = url_with_db(url_with_password(admin_url, password), db);
    const std::string user_url = url.substr(0, url.find("://") + 3) + user + url.substr(url.find(':', url.find("://") + 3));
    TempDir dir;
    const auto before = run_in(dir.path(), {"diagnose", "--db", user_url, "--samples", "2", "--json", "-"});
    INFO(before.err);
    REQUIRE(before.code == 0);
    const json b = parse_json(before.out);
    CHECK(b.at("facts").at("can_create_tables") == false);
    CHECK(b.at("facts").at("poolbench_accounts") == "usable");  // SELECT through the role
    CHECK(b.at("facts").at("poolbench_writes") == "no privilege");
    // The account's own connection limit bounds the free connections (and the pool size).
    CHECK(b.at("facts").at("user_connection_limit") == 5);
    CHECK(b.at("facts").at("free_connections") == 5);
    const json* few = diagnose_finding(b, "few_free_connections");
    REQUIRE(few != nullptr);
    CHECK(few->at("text").get<std::string>().find("bound by user " + user + "@%'s MAX_USER_CONNECTIONS (5)") !=
          std::string::npos);
    const json* missing = diagnose_finding(b, "workload_table_privileges");
    REQUIRE(missing != nullptr);
    CHECK(missing->at("action") == "GRANT SELECT, INSERT ON `" + db + "`.`poolbench_writes` TO `" + user +
                                       "`@`%` (write and mixed workloads)");
    CHECK(diagnose_finding(b, "workload_privileges") == nullptr);
    require_no_secrets(user_url, before.out + before.err);

    REQUIRE(admin.exec("GRANT INSERT ON " + db + ".poolbench_writes TO '" + user + "'@'%'") == "");
    const auto after = run_in(dir.path(), {"diagnose", "--db", user_url, "--samples", "2", "--json", "-"});
    INFO(after.err);
    REQUIRE(after.code == 0);
    const json a = parse_json(after.out);
    CHECK(a.at("facts").at("poolbench_writes") == "usable");
    CHECK(diagnose_finding(a, "workload_table_privileges") == nullptr);
    const json* ok = diagnose_finding(a, "workload_privileges");
    REQUIRE(ok != nullptr);
    CHECK(ok->at("level") == "ok");
}
