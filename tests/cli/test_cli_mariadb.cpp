// test_cli_mariadb.cpp — the poolbench executable against a real MariaDB server
// (POOLBENCH_MARIADB_URL and its siblings; scripts/mariadb_sandbox.sh starts a throwaway
// one): every workload, leak, soak, compare, clean, the exit codes, the password in no
// output, a least-privilege account told what a DBA must run, the server's connection
// headroom, and the MariaDB scenarios' checks. Without the variables every test here
// FAILS, naming the script. Tests that write, drop or grant do it in a database of their
// own (OwnDatabase), so nothing here touches another test's tables.
#include "mariadb_cli_support.hpp"

#include <fstream>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

const std::vector<std::string> workloads{"select1", "read", "write", "mixed", "read_write"};

std::int64_t rows_in(MariaSession& s, const std::string& db, const std::string& table) {
    if (s.number("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                 {poolbench::Value{db}, poolbench::Value{table}}) == 0) {
        return 0;
    }
    return s.number("SELECT count(*) FROM " + db + "." + table);
}

std::int64_t tables_named(MariaSession& s, const std::string& db, const std::string& table) {
    return s.number("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                    {poolbench::Value{db}, poolbench::Value{table}});
}

/// The statements after "ask a DBA to run: " in a refusal, one by one.
std::vector<std::string> dba_statements(const std::string& err) {
    const std::string marker = "ask a DBA to run: ";
    const auto at = err.find(marker);
    REQUIRE(at != std::string::npos);
    std::string todo = err.substr(at + marker.size());
    while (!todo.empty() && (todo.back() == '\n' || todo.back() == ' ')) todo.pop_back();
    std::vector<std::string> out;
    for (std::size_t from = 0; from <= todo.size();) {
        const auto end = todo.find("; ", from);
        out.push_back(todo.substr(from, end == std::string::npos ? std::string::npos : end - from));
        if (end == std::string::npos) break;
        from = end + 2;
    }
    return out;
}

}  // namespace

TEST_CASE("mariadb: stress passes with every workload and every acknowledged write is in the database",
          "[cli][mariadb]") {
    OwnDatabase db;
    MariaSession check(mariadb_admin_url());
    TempDir dir;
    for (const auto& workload : workloads) {
        INFO("workload " << workload);
        const std::int64_t before = rows_in(check, db.name(), "poolbench_writes");
        const auto r = run_in(dir.path(), {"stress", "--db", db.url(), "--ops", "2000", "--threads", "8", "--workload",
                                           workload, "--rows", "1000", "--no-progress", "--json", "-"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        const json j = parse_json(r.out);
        CHECK(j.at("database").at("backend") == "mariadb");
        CHECK(j.at("verdict") == "pass");
        CHECK(j.at("ops").at("ok") == 2000);
        CHECK(j.at("ops").at("failed") == 0);
        const std::int64_t written = rows_in(check, db.name(), "poolbench_writes") - before;
        if (workload == "select1" || workload == "read") {
            CHECK_FALSE(j.contains("writes"));
            CHECK(written == 0);
        } else {
            const json& w = j.at("writes");
            CHECK(w.at("checked") == true);
            CHECK(w.at("lost") == 0);
            CHECK(w.at("verified") == w.at("acknowledged"));
            // Counted from outside: exactly the acknowledged rows, no more, no fewer.
            CHECK(written == w.at("acknowledged").get<std::int64_t>());
            if (workload == "mixed") {
                CHECK(w.at("acknowledged").get<int>() > 0);
                CHECK(w.at("acknowledged").get<int>() < 2000);
            } else {
                CHECK(w.at("acknowledged") == 2000);  // one write per operation
            }
        }
        if (workload == "read") CHECK(rows_in(check, db.name(), "poolbench_accounts") == 1000);
    }
}

TEST_CASE("mariadb: the read workload seeds every row it reads, past max_recursive_iterations (1000)",
          "[cli][mariadb]") {
    OwnDatabase db;
    MariaSession check(mariadb_admin_url());
    TempDir dir;
    // MariaDB 10.11 stops a recursive CTE after max_recursive_iterations (1000 by default):
    // the seeding must not depend on it, or most reads find no row.
    const auto r = run_in(dir.path(), {"stress", "--db", db.url(), "--ops", "10", "--workload", "read", "--rows",
                                       "2500", "--no-progress"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(rows_in(check, db.name(), "poolbench_accounts") == 2500);
    CHECK(check.number("SELECT max(id) FROM " + db.name() + ".poolbench_accounts") == 2500);
    // Seeded once: a second run finds every row and writes nothing (so it also runs on a
    // read-only replica).
    const auto again = run_in(dir.path(), {"stress", "--db", db.url(), "--ops", "10", "--workload", "read", "--rows",
                                           "2500", "--no-progress"});
    CHECK(again.code == 0);
    CHECK(rows_in(check, db.name(), "poolbench_accounts") == 2500);
}

TEST_CASE("mariadb: a phase with faults gives its outage per fault, never 'still failing when the phase ended'",
          "[cli][mariadb][run]") {
    TempDir dir;
    const std::string file = (dir.path() / "kill.toml").string();
    std::ofstream(file) << "[scenario]\nbackends = [\"mariadb\"]\n[pool]\nmax_size = 4\n"
                           "[[phase]]\nname = \"load\"\nthreads = 16\nduration = \"2s\"\nworkload = \"select1\"\n"
                           "[[phase.fault]]\nkind = \"mariadb.kill_connections\"\nat = \"500ms\"\nfor = \"500ms\"\n"
                           "every = \"100ms\"\n";
    const auto r = run_in(dir.path(), {"run", file, "--db", mariadb_url(), "--no-progress", "--json", "kill.json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    std::ifstream in(dir.path() / "kill.json");
    const json j = json::parse(in);
    REQUIRE(j.at("ops").at("failed").get<int>() > 0);  // the kills broke operations in flight
    const json& fault = j.at("faults").at(0);
    REQUIRE(fault.at("outage_ms").is_number());  // the fault's outage ended within the phase
    CHECK(r.out.find("still failing") == std::string::npos);
}

TEST_CASE("mariadb: --help names MariaDB among the backends, and mariadb:// among the URLs", "[cli][mariadb]") {
    TempDir dir;
    const auto top = run_in(dir.path(), {"--help"});
    CHECK(top.code == 0);
    CHECK(top.out.substr(0, top.out.find('\n')).find("MariaDB") != std::string::npos);
    const auto stress = run_in(dir.path(), {"stress", "--help"});
    CHECK(stress.out.find("mariadb://") != std::string::npos);
}

TEST_CASE("mariadb: leak detection is exact", "[cli][mariadb][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", mariadb_url(), "--threshold", "200ms", "--ops", "500",
                                       "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "mariadb");
    const json& check = j.at("leak_check");
    CHECK(check.at("reported") == 3);
    CHECK(check.at("traced_to_injector") == 3);
    CHECK(check.at("false_positives") == 0);
    CHECK(check.at("returned_late") == 3);
    CHECK(j.at("verdict") == "pass");
}

TEST_CASE("mariadb: a short soak keeps its rate, writes nothing lost, and passes", "[cli][mariadb][soak]") {
    OwnDatabase db;
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", db.url(), "--rate", "400", "--duration", "2s", "--threads", "4",
                                       "--workload", "mixed", "--rows", "500", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("command") == "soak");
    CHECK(j.at("database").at("backend") == "mariadb");
    CHECK(j.at("verdict") == "pass");
    const double ops_s = j.at("throughput_ops_s").get<double>();
    CHECK(ops_s >= 380);
    CHECK(ops_s <= 420);
    CHECK(j.at("ops").at("failed") == 0);
    CHECK(j.at("writes").at("lost") == 0);
    CHECK(j.at("writes").at("verified") == j.at("writes").at("acknowledged"));
}

TEST_CASE("mariadb: compare judges two MariaDB reports", "[cli][mariadb][compare]") {
    TempDir dir;
    for (const char* name : {"a.json", "b.json"}) {
        const auto r = run_in(dir.path(), {"stress", "--db", mariadb_url(), "--workload", "mixed", "--rows", "1000",
                                           "--ops", "2000", "--threads", "4", "--no-progress", "--json", name});
        INFO(r.err);
        REQUIRE(r.code == 0);
    }
    const auto same = run_in(dir.path(), {"compare", "a.json", "a.json"});
    INFO(same.out << same.err);
    CHECK(same.code == 0);
    CHECK(same.out.find("result: no regression") != std::string::npos);
    // Two runs of one machine: limits wide enough that only a real failure would fail it.
    const auto two = run_in(dir.path(), {"compare", "a.json", "b.json", "--throughput-drop", "100", "--latency-rise",
                                         "10000", "--json", "c.json"});
    INFO(two.out << two.err);
    CHECK(two.code == 0);
    const json c = parse_json(slurp(dir.path() / "c.json"));
    CHECK(c.at("verdict") == "pass");
    CHECK(c.at("differences").empty());  // same backend, workload, threads, pool
    // Against a run on another backend: compared, with the difference said first.
    REQUIRE(run_in(dir.path(), {"stress", "--db", "null://", "--workload", "mixed", "--ops", "2000", "--threads", "4",
                                "--no-progress", "--json", "null.json"})
                .code == 0);
    const auto other = run_in(dir.path(), {"compare", "a.json", "null.json", "--json", "d.json"});
    INFO(other.out << other.err);
    CHECK(other.out.find("note: the runs differ: backend mariadb vs null") != std::string::npos);
    CHECK(parse_json(slurp(dir.path() / "d.json")).at("differences").at(0) == "backend mariadb vs null");
    // A lost write in NEW is a regression whatever the limits.
    json b = parse_json(slurp(dir.path() / "b.json"));
    b["writes"]["lost"] = 1;
    std::ofstream(dir.path() / "lost.json") << b.dump(2);
    const auto lost = run_in(dir.path(), {"compare", "a.json", "lost.json", "--throughput-drop", "100",
                                          "--latency-rise", "10000"});
    CHECK(lost.code == 1);
}

TEST_CASE("mariadb: clean drops poolbench's tables and nothing else", "[cli][mariadb][clean]") {
    OwnDatabase db;
    TempDir dir;
    REQUIRE(run_in(dir.path(), {"stress", "--db", db.url(), "--workload", "mixed", "--rows", "100", "--ops", "50",
                                "--no-progress"})
                .code == 0);
    MariaSession admin(db.admin_url());
    // The application's tables, one with poolbench's prefix: none is poolbench's to drop.
    admin.exec("CREATE TABLE orders (id INT PRIMARY KEY)");
    admin.exec("CREATE TABLE poolbench_notes (id INT PRIMARY KEY)");
    admin.exec("CREATE TABLE poolbench_lock_probe (x INT)");  // poolbench's (the SQLite lock holder's)

    // An account that may not drop them: exit 3, one line naming the GRANT a DBA would run,
    // nothing dropped. First it may not even count their rows, then (SELECT granted) not drop.
    const std::string grants = "ask a DBA to run: USE `" + db.name() +
                               "`; GRANT SELECT, DROP ON poolbench_accounts TO 'poolbench_limited'@'%'; "
                               "GRANT SELECT, DROP ON poolbench_writes TO 'poolbench_limited'@'%'; "
                               "GRANT SELECT, DROP ON poolbench_lock_probe TO 'poolbench_limited'@'%'";
    const auto denied = run_in(dir.path(), {"clean", "--db", db.limited_url()});
    INFO(denied.err);
    CHECK(denied.code == 3);
    CHECK(count_lines(denied.err) == 1);
    CHECK(denied.err.find("'poolbench_limited'@'%' may not count and drop poolbench_accounts, poolbench_writes, "
                          "poolbench_lock_probe (SELECT command denied") != std::string::npos);
    CHECK(denied.err.find(grants) != std::string::npos);
    admin.exec("GRANT SELECT ON `" + db.name() + "`.* TO poolbench_limited@'%'");
    const auto no_drop = run_in(dir.path(), {"clean", "--db", db.limited_url()});
    admin.exec("REVOKE SELECT ON `" + db.name() + "`.* FROM poolbench_limited@'%'");
    INFO(no_drop.err);
    CHECK(no_drop.code == 3);
    CHECK(count_lines(no_drop.err) == 1);
    CHECK(no_drop.err.find("(DROP command denied") != std::string::npos);
    CHECK(no_drop.err.find(grants) != std::string::npos);
    CHECK(tables_named(admin, db.name(), "poolbench_accounts") == 1);

    const auto dry = run_in(dir.path(), {"clean", "--db", db.url(), "--dry-run"});
    INFO(dry.out << dry.err);
    CHECK(dry.code == 0);
    CHECK(dry.out.find("would drop poolbench_accounts (100 rows)") != std::string::npos);
    CHECK(dry.out.find("would drop poolbench_writes") != std::string::npos);
    CHECK(tables_named(admin, db.name(), "poolbench_writes") == 1);

    const auto r = run_in(dir.path(), {"clean", "--db", db.url()});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("dropped poolbench_accounts (100 rows)") != std::string::npos);
    CHECK(r.out.find("dropped poolbench_writes") != std::string::npos);
    CHECK(r.out.find("dropped poolbench_lock_probe") != std::string::npos);
    for (const char* gone : {"poolbench_accounts", "poolbench_writes", "poolbench_lock_probe"}) {
        INFO(gone);
        CHECK(tables_named(admin, db.name(), gone) == 0);
    }
    CHECK(tables_named(admin, db.name(), "orders") == 1);
    CHECK(tables_named(admin, db.name(), "poolbench_notes") == 1);
    CHECK(run_in(dir.path(), {"clean", "--db", db.url()}).out.find("nothing to drop") != std::string::npos);
}

TEST_CASE("mariadb: a bad option value exits 2, an unusable server 3, each with one line and no password",
          "[cli][mariadb]") {
    const std::string url = mariadb_url();
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);  // the sandbox always has one; the redaction check needs it
    TempDir dir;
    auto one_line_without_password = [&](const Result& r) {
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.rfind("poolbench: ", 0) == 0);
        CHECK(r.err.find(password) == std::string::npos);
        CHECK(r.out.find(password) == std::string::npos);
    };
    struct BadValue {
        std::vector<std::string> args;
        const char* says;
    };
    const std::vector<BadValue> bad{
        {{"stress", "--db", url, "--threads", "0"}, "--threads"},
        {{"stress", "--db", url, "--workload", "scan"}, "--workload"},
        {{"stress", "--db", url + "?ssl_mode=sometimes"}, "ssl_mode"},
        {{"stress", "--db", url + "?connect_timeout=soon"}, "connect_timeout"},
        {{"stress", "--db", url + "?colour=red"}, "colour"},
        {{"leak", "--db", url, "--threshold", "fast"}, "--threshold"},
        {{"soak", "--db", url, "--rate", "-5"}, "--rate"},
    };
    for (const auto& c : bad) {
        INFO(c.args.at(0) << " " << c.says);
        const auto r = run_in(dir.path(), c.args);
        INFO(r.err);
        CHECK(r.code == 2);
        CHECK(r.err.find(c.says) != std::string::npos);
        one_line_without_password(r);
    }

    RefusingPort refusing;
    struct Unusable {
        const char* what;
        std::string url;
        const char* says;
    };
    const std::vector<Unusable> unusable{
        {"wrong password", url_with_password(url, password + "-wrong"), "access denied"},
        {"refused port", url_at(url, "127.0.0.1:" + std::to_string(refusing.port())), "refused"},
        {"unknown database", url_with_db(url, "poolbench_no_such_db"), "poolbench_no_such_db"},
        // Refused by the server: every release would close its connection, so the preflight says so.
        {"reset_query refused", url + "?reset_query=SELECT+pb_no_such_fn()", "reset_query fails on"},
        {"missing socket", url + "?socket=/nonexistent/pb-mysqld.sock", "socket file /nonexistent/pb-mysqld.sock does not exist"},
    };
    for (const auto& c : unusable) {
        for (const char* command : {"stress", "leak", "soak"}) {
            INFO(c.what << " (" << command << ")");
            const std::vector<std::string> args =
                std::string(command) == "soak"
                    ? std::vector<std::string>{command, "--db", c.url, "--duration", "1s", "--acquire-timeout", "5s"}
                    : std::vector<std::string>{command, "--db", c.url, "--ops", "10", "--acquire-timeout", "5s"};
            const auto r = run_in(dir.path(), args);
            INFO(r.err);
            CHECK(r.code == 3);
            CHECK(r.err.find(c.says) != std::string::npos);
            CHECK(r.err.find(password + "-wrong") == std::string::npos);
            one_line_without_password(r);
        }
    }
}

TEST_CASE("mariadb: the password is in no output: stdout, stderr, JSON, JUnit, HTML, also of a failed run",
          "[cli][mariadb]") {
    const std::string url = mariadb_url();
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);
    TempDir dir;
    auto check_outputs = [&](const Result& r) {
        CHECK(r.out.find(password) == std::string::npos);
        CHECK(r.err.find(password) == std::string::npos);
        for (const char* file : {"r.json", "r.xml", "r.html"}) {
            INFO(file);
            const std::string text = slurp(dir.path() / file);
            CHECK_FALSE(text.empty());
            CHECK(text.find(password) == std::string::npos);
        }
    };
    const std::vector<std::string> files{"--json", "r.json", "--junit", "r.xml", "--html", "r.html"};
    auto with_files = [&](std::vector<std::string> args) {
        args.insert(args.end(), files.begin(), files.end());
        return args;
    };
    // A run that passes, one that fails (errors carry server messages), one that cannot
    // connect (the error report), and a scenario whose fault reports its statements.
    const auto ok = run_in(dir.path(), with_files({"stress", "--db", url, "--workload", "mixed", "--rows", "100",
                                                   "--ops", "200", "--no-progress"}));
    INFO(ok.err);
    CHECK(ok.code == 0);
    check_outputs(ok);
    CHECK(parse_json(slurp(dir.path() / "r.json")).at("database").at("url").get<std::string>().find("***") !=
          std::string::npos);

    // The limited account (same password) refused at setup: server messages name the account.
    const auto setup = run_in(dir.path(), with_files({"stress", "--db", mariadb_limited_url(), "--workload", "write",
                                                      "--ops", "10", "--no-progress"}));
    INFO(setup.err);
    CHECK(setup.code == 3);
    check_outputs(setup);

    const auto refused = run_in(dir.path(), with_files({"stress", "--db", url_with_password(url, password + "x"),
                                                        "--ops", "10", "--no-progress"}));
    CHECK(refused.code == 3);
    check_outputs(refused);
    CHECK(parse_json(slurp(dir.path() / "r.json")).at("verdict") == "error");

    const auto killed = run_in(dir.path(), with_files({"run", "backend-kill-mariadb", "--db", url, "--no-progress",
                                                       "--set", "phase.load.duration=1500ms", "--set",
                                                       "phase.load.fault.1.at=500ms", "--set",
                                                       "phase.load.fault.1.for=300ms", "--set", "phase.load.rate=200"}));
    INFO(killed.err);
    CHECK((killed.code == 0 || killed.code == 1));
    check_outputs(killed);
}

TEST_CASE("mariadb: an account that may not create the tables is told, in one line, the SQL a DBA would run",
          "[cli][mariadb]") {
    OwnDatabase db;
    TempDir dir;
    const std::string password = url_password(mariadb_limited_url());
    REQUIRE(password.size() >= 3);
    const auto refused = run_in(dir.path(), {"stress", "--db", db.limited_url(), "--workload", "mixed", "--rows", "300",
                                             "--ops", "10", "--no-progress"});
    INFO(refused.err);
    CHECK(refused.code == 3);
    CHECK(count_lines(refused.err) == 1);
    CHECK(refused.err.find("password") == std::string::npos);
    CHECK(refused.err.find(password) == std::string::npos);
    // The server's refusal is ER_TABLEACCESS_DENIED_ERROR (1142), named as the server said it.
    CHECK(refused.err.find("CREATE command denied") != std::string::npos);
    CHECK(refused.err.find("(1142)") != std::string::npos);
    CHECK(refused.err.find("'poolbench_limited'@'%' cannot create table poolbench_accounts") != std::string::npos);
    CHECK(refused.err.find("ask a DBA to run: USE `" + db.name() + "`; CREATE TABLE IF NOT EXISTS poolbench_accounts") !=
          std::string::npos);
    CHECK(refused.err.find("GRANT SELECT ON poolbench_accounts TO 'poolbench_limited'@'%'") != std::string::npos);
    CHECK(refused.err.find("CREATE TABLE IF NOT EXISTS poolbench_writes") != std::string::npos);
    CHECK(refused.err.find("GRANT SELECT, INSERT ON poolbench_writes TO 'poolbench_limited'@'%'") != std::string::npos);
    CHECK(refused.err.find("SELECT CAST(300 AS SIGNED)") != std::string::npos);  // the seeding, with the row count written out

    // What it says works: a DBA runs exactly that, and the account's run passes.
    {
        MariaSession dba(mariadb_admin_url());
        for (const auto& sql : dba_statements(refused.err)) dba.exec(sql);
    }
    const auto r = run_in(dir.path(), {"stress", "--db", db.limited_url(), "--workload", "mixed", "--rows", "300",
                                       "--ops", "300", "--threads", "4", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(parse_json(r.out).at("writes").at("lost") == 0);

    // Tables that exist but this account may not write: said before the load, with the GRANT.
    MariaSession(db.admin_url()).exec("REVOKE INSERT ON poolbench_writes FROM poolbench_limited@'%'");
    const auto no_insert = run_in(dir.path(), {"stress", "--db", db.limited_url(), "--workload", "write", "--ops", "10",
                                               "--no-progress"});
    INFO(no_insert.err);
    CHECK(no_insert.code == 3);
    CHECK(count_lines(no_insert.err) == 1);
    CHECK(no_insert.err.find("'poolbench_limited'@'%' may not use table poolbench_writes") != std::string::npos);
    CHECK(no_insert.err.find("INSERT command denied") != std::string::npos);
    CHECK(no_insert.err.find("ask a DBA to run: USE `" + db.name() +
                             "`; GRANT SELECT, INSERT ON poolbench_writes TO 'poolbench_limited'@'%'") != std::string::npos);
    // Reading is still allowed: a read load runs.
    CHECK(run_in(dir.path(), {"stress", "--db", db.limited_url(), "--workload", "read", "--rows", "300", "--ops", "50",
                              "--no-progress"})
              .code == 0);
}

TEST_CASE("mariadb: a pool larger than the server's free connection slots is said once, with what to change",
          "[cli][mariadb]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", mariadb_url(), "--pool-size", "5000", "--threads", "2", "--ops",
                                       "100", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);  // two threads never need more than the server has
    const std::string warning = "poolbench: warning: the pool may open 5000 connections but the server has";
    REQUIRE(r.err.find(warning) != std::string::npos);
    CHECK(r.err.find(warning, r.err.find(warning) + 1) == std::string::npos);
    CHECK(r.err.find("lower --pool-size, or raise max_connections") != std::string::npos);
    CHECK(r.err.find("reserved") == std::string::npos);  // MariaDB keeps none back for ordinary accounts
    const json j = parse_json(r.out);
    REQUIRE(j.contains("notes"));
    CHECK(j.at("notes").at(0).get<std::string>().find("free (max_connections") != std::string::npos);
    // A pool that fits: no warning.
    const auto fits = run_in(dir.path(), {"stress", "--db", mariadb_url(), "--pool-size", "4", "--threads", "2",
                                          "--ops", "100", "--no-progress"});
    CHECK(fits.code == 0);
    CHECK(fits.err.find("warning: the pool may open") == std::string::npos);
}

TEST_CASE("mariadb: the MariaDB scenarios and faults are checked before anything runs", "[cli][mariadb][run]") {
    TempDir dir;
    const std::string url = "mariadb://check@127.0.0.1:1/check";  // --check and refusals never connect
    for (const char* name : {"lock-recovery-mariadb", "backend-kill-mariadb", "server-restart-mariadb"}) {
        INFO(name);
        const auto check = run_in(dir.path(), {"run", "--check", name});
        CHECK(check.code == 0);
        CHECK(check.out.find("runs on mariadb") != std::string::npos);
        // Not on another backend: exit 2, naming where they run.
        const auto pg = run_in(dir.path(), {"run", name, "--db", "postgresql://x@127.0.0.1:1/x", "--restart-command",
                                            "true"});
        CHECK(pg.code == 2);
        CHECK(pg.err.find("runs on mariadb, not on postgresql") != std::string::npos);
    }
    // A restart needs its command; the advice names the MariaDB sandbox.
    const auto missing = run_in(dir.path(), {"run", "server-restart-mariadb", "--db", url});
    CHECK(missing.code == 2);
    CHECK(missing.err.find("--restart-command") != std::string::npos);
    CHECK(missing.err.find("mariadb_sandbox.sh restart-command") != std::string::npos);

    const std::string base = "[[phase]]\nname = \"load\"\nduration = \"2s\"\nworkload = \"write\"\n[[phase.fault]]\n";
    struct Case {
        const char* what;
        std::string fault;
        const char* db;
        int code;
        const char* says;
    };
    const std::vector<Case> cases{
        {"mariadb.lock_table on MariaDB", "kind = \"mariadb.lock_table\"\nfor = \"1s\"\ntable = \"poolbench_writes\"\n",
         "mariadb", 0, "is valid"},
        {"mariadb.kill_connections every", "kind = \"mariadb.kill_connections\"\nfor = \"1s\"\nevery = \"200ms\"\n",
         "mariadb", 0, "is valid"},
        {"server.restart on MariaDB", "kind = \"server.restart\"\n", "mariadb", 0, "is valid"},
        {"server.restart on PostgreSQL", "kind = \"server.restart\"\n", "postgresql", 0, "is valid"},
        {"pg.restart stays PostgreSQL's", "kind = \"pg.restart\"\n", "mariadb", 2, "runs on postgresql, not on mariadb"},
        {"mariadb.restart is MariaDB's", "kind = \"mariadb.restart\"\n", "postgresql", 2,
         "runs on mariadb, not on postgresql"},
        {"server.restart has no 'for'", "kind = \"server.restart\"\nfor = \"1s\"\n", "mariadb", 2,
         "server.restart has no 'for'"},
        {"a table on a kill", "kind = \"mariadb.kill_connections\"\nfor = \"1s\"\ntable = \"t\"\n", "mariadb", 2,
         "'table' applies to pg.lock_table and mariadb.lock_table faults, not mariadb.kill_connections"},
        {"a bad table name", "kind = \"mariadb.lock_table\"\nfor = \"1s\"\ntable = \"t; DROP TABLE x\"\n", "mariadb", 2,
         "must be a plain lower-case name"},
        {"not on SQLite", "kind = \"mariadb.kill_connections\"\nfor = \"1s\"\n", "sqlite", 2,
         "runs on mariadb, not on sqlite"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        write_file(dir.path() / "s.toml", base + c.fault);
        const std::string db = std::string(c.db) == "mariadb"      ? url
                               : std::string(c.db) == "postgresql" ? "postgresql://x@127.0.0.1:1/x"
                                                                   : "sqlite://x.db";
        const auto r = run_in(dir.path(), {"run", "--check", "./s.toml", "--db", db, "--restart-command", "true"});
        INFO(r.out << r.err);
        CHECK(r.code == c.code);
        CHECK((r.out + r.err).find(c.says) != std::string::npos);
    }
}
