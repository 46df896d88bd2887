// test_cli_diagnose_pg_fixes.cpp — `poolbench diagnose` against the throwaway PostgreSQL
// (POOLBENCH_PG_URL; FAILS without it), for what a user-test round found: passwords in
// statement texts in every quoting form, sessions a low-privilege role cannot inspect,
// lock queues named by their root holder, one free connection, a table locked with no
// waiters yet, and JUnit names that stay the same from run to run.
//
// Roles and tables are the test's own (named with its pid); the server is shared with
// other tests running at the same time, so checks look for this test's sessions.
#include "pg_session.hpp"

#include <regex>
#include <set>
#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

std::string tag() { return std::to_string(::getpid()); }

/// A LOGIN role of the test's own, dropped at the end (with its sessions gone first).
class Role {
public:
    Role(Session& admin, std::string name, const std::string& extra = "") : admin_(admin), name_(std::move(name)) {
        (void)admin_.exec("DROP ROLE IF EXISTS " + name_);
        REQUIRE(admin_.exec("CREATE ROLE " + name_ + " LOGIN PASSWORD 'pw-" + name_ + "' " + extra).empty());
        REQUIRE(admin_.exec("GRANT CONNECT ON DATABASE " + admin_.value("SELECT current_database()") + " TO " + name_).empty());
    }
    Role(const Role&) = delete;
    Role& operator=(const Role&) = delete;
    ~Role() { (void)admin_.exec("DROP ROLE IF EXISTS " + name_); }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] std::string url(const std::string& base) const { return url_as(base, name_, "pw-" + name_); }

private:
    Session& admin_;
    std::string name_;
};

std::vector<const json*> findings(const json& j, const std::string& code) {
    std::vector<const json*> out;
    for (const auto& f : j.at("findings")) {
        if (f.at("code") == code) out.push_back(&f);
    }
    return out;
}

std::vector<std::string> junit_names(const std::string& xml) {
    std::vector<std::string> out;
    static const std::regex name("<testcase classname=\"[^\"]*\" name=\"([^\"]*)\"");
    for (std::sregex_iterator it(xml.begin(), xml.end(), name), end; it != end; ++it) out.push_back((*it)[1]);
    return out;
}

}  // namespace

TEST_CASE("pg: diagnose shows no password from a statement, in any quoting form, in any output", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session admin(url, "pb-diag-pw-admin");
    std::vector<std::unique_ptr<Role>> roles;
    for (int i = 0; i < 4; ++i) roles.push_back(std::make_unique<Role>(admin, "pb_diag_pw" + std::to_string(i) + "_" + tag()));
    const std::vector<std::string> statements = {
        R"(SELECT E'Esc\'EscSecret2' AS password)",
        "ALTER ROLE " + roles[0]->name() + " PASSWORD $$DollarSecret1$$",
        "ALTER ROLE " + roles[1]->name() + " PASSWORD $tg$TagSecret3$tg$",
        "ALTER ROLE " + roles[2]->name() + " PASSWORD 'Dbl''DblSecret4'",
        "ALTER ROLE " + roles[3]->name() + " password/**/'CommentSecret5'",
        "SELECT 'host=127.0.0.1 password=ConnSecret6 dbname=x' AS conninfo",
        "SELECT 1 AS x -- password: CommentSecret7\n, 2 AS y"};
    const std::vector<std::string> secrets = {"EscSecret2", "DollarSecret1", "TagSecret3", "DblSecret4",
                                              "CommentSecret5", "ConnSecret6", "CommentSecret7"};
    const std::string app = "pb-diag-pw-" + tag();
    IdleSessions open = leave_idle_in_transaction(url, app, statements);
    REQUIRE(wait_for([&] {
        return admin.value("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + open.pids +
                           ") AND state = 'idle in transaction'") == std::to_string(statements.size());
    }));
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--json", "-", "--junit", "d.xml",
                                       "--html", "d.html"});
    INFO(r.err);
    REQUIRE((r.code == 0 || r.code == 1));
    const json j = parse_json(r.out);
    const std::string junit = slurp(dir.path() / "d.xml");
    const std::string html = slurp(dir.path() / "d.html");
    for (const auto& secret : secrets) {
        INFO(secret);
        CHECK(r.out.find(secret) == std::string::npos);
        CHECK(r.err.find(secret) == std::string::npos);
        CHECK(junit.find(secret) == std::string::npos);
        CHECK(html.find(secret) == std::string::npos);
    }
    // The statements are still shown, with their constants hidden, on one line.
    int shown = 0;
    for (const auto& row : j.at("tables").at("idle_in_transaction").at("rows")) {
        if (row.at("application") != app) continue;
        ++shown;
        const std::string s = row.at("last_statement");
        CHECK(s.find('\n') == std::string::npos);
        if (s.rfind("ALTER ROLE", 0) == 0) CHECK(s.find("'***'") != std::string::npos);
    }
    CHECK(shown == static_cast<int>(statements.size()));
    open.sessions.clear();
}

TEST_CASE("pg: a role without pg_read_all_stats counts the sessions it cannot inspect", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session admin(url, "pb-diag-low-admin");
    Role low(admin, "pb_diag_low_" + tag());
    const std::string app = "pb-diag-hidden-" + tag();
    std::vector<std::unique_ptr<Session>> held;
    for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Session>(url, app));  // the superuser's
    const auto r = run_in(dir.path(), {"diagnose", "--db", low.url(url), "--samples", "2", "--json", "-"});
    INFO(r.err);
    REQUIRE((r.code == 0 || r.code == 1));
    const json j = parse_json(r.out);
    const json& f = j.at("facts");
    CHECK(f.at("superuser") == false);
    CHECK(f.at("sessions_not_inspectable").get<int>() >= 3);
    CHECK(f.at("connections_in_use").get<int>() >= 3);
    // Free = max - reserved - in use, with the hidden sessions counted in use.
    const int reserved = f.at("superuser_reserved_connections").get<int>() +
                         (f.at("reserved_connections").is_null() ? 0 : f.at("reserved_connections").get<int>());
    CHECK(f.at("free_connections").get<int>() ==
          f.at("max_connections").get<int>() - reserved - f.at("connections_in_use").get<int>());
    CHECK(j.at("pool_size").at("free_connections") == f.at("free_connections"));
    const auto hidden = findings(j, "sessions_not_inspectable");
    REQUIRE(hidden.size() == 1);
    CHECK(hidden[0]->at("text").get<std::string>().find("could not be inspected (grant pg_read_all_stats)") !=
          std::string::npos);
    held.clear();
}

TEST_CASE("pg: a queue behind one idle holder is one lock chain naming the holder with all it blocks",
          "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    const std::string table = "poolbench_diag_queue_" + tag();
    Session holder(url, "pb-diag-queue-holder");
    REQUIRE(holder.exec("CREATE TABLE IF NOT EXISTS " + table + " (id int PRIMARY KEY, balance int)").empty());
    REQUIRE(holder.exec("INSERT INTO " + table + " VALUES (1, 100) ON CONFLICT DO NOTHING").empty());
    REQUIRE(holder.exec("BEGIN").empty());
    REQUIRE(holder.exec("UPDATE " + table + " SET balance = balance WHERE id = 1").empty());
    std::vector<std::unique_ptr<Session>> waiters;
    std::vector<std::thread> threads;
    std::vector<std::string> errors(3);
    std::set<std::string> pids;
    for (int i = 0; i < 3; ++i) {
        waiters.push_back(std::make_unique<Session>(url, "pb-diag-queue-waiter"));
        pids.insert(std::to_string(waiters.back()->pid()));
    }
    for (std::size_t i = 0; i < 3; ++i) {
        threads.emplace_back([&, i] {
            errors[i] = waiters[i]->exec("SET statement_timeout = '30s'; UPDATE " + table +
                                         " SET balance = balance + 1 WHERE id = 1");
        });
    }
    const std::string holder_pid = std::to_string(holder.pid());
    Session watcher(url, "pb-diag-queue-watch");
    std::string in;
    for (const auto& p : pids) in += (in.empty() ? "" : ",") + p;
    const bool queued = wait_for([&] {
        return watcher.value("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid IN (" + in + ")") == "3";
    });
    const auto r = queued ? run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--lock-wait", "1h", "--json", "-"})
                          : Result{};
    REQUIRE(holder.exec("ROLLBACK").empty());
    for (auto& t : threads) t.join();
    INFO(r.err);
    REQUIRE(queued);
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("sessions_waiting_on_locks").get<int>() >= 3);
    int mine = 0;
    for (const json* f : findings(j, "lock_chain")) {
        const std::string text = f->at("text");
        bool names_waiter = false;
        for (const auto& p : pids) names_waiter = names_waiter || text.find("pid " + p + " ") != std::string::npos;
        CHECK_FALSE(names_waiter);
        if (text.find("pid " + holder_pid + " ") == std::string::npos) continue;
        ++mine;
        CHECK(text.find("pid " + holder_pid + " has blocked 3 sessions for ") == 0);
        CHECK(text.find("on relation " + table + " (app 'pb-diag-queue-holder', idle in transaction)") != std::string::npos);
    }
    CHECK(mine == 1);
    for (const auto& e : errors) CHECK(e.empty());
}

TEST_CASE("pg: diagnose works with exactly one free connection and says so", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    Session admin(url, "pb-diag-one-admin");
    Role one(admin, "pb_diag_one_" + tag(), "CONNECTION LIMIT 1");
    const auto r = run_in(dir.path(), {"diagnose", "--db", one.url(url), "--samples", "5", "--measure", "--measure-step",
                                       "100ms", "--json", "-"});
    INFO(r.err);
    REQUIRE((r.code == 0 || r.code == 1));
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("free_connections") == 1);
    const auto few = findings(j, "few_free_connections");
    REQUIRE(few.size() == 1);
    CHECK(few[0]->at("text").get<std::string>().find("only 1 more connections possible") != std::string::npos);
    CHECK(j.at("connect_ms").at("samples") == 5);
    REQUIRE(j.at("ladder").at("steps").size() == 1);
    CHECK(j.at("ladder").at("steps").at(0).at("connections") == 1);
    CHECK(j.at("pool_size").at("recommended_max_size") == 1);
}

TEST_CASE("pg: a table locked by an idle transaction with no waiters yet is reported, under a stable JUnit name",
          "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    const std::string table = "poolbench_diag_locked_" + tag();
    const std::string app = "pb-diag-locker-" + tag();
    Session holder(url, app);
    REQUIRE(holder.exec("CREATE TABLE IF NOT EXISTS " + table + " (id int)").empty());
    REQUIRE(holder.exec("BEGIN").empty());
    REQUIRE(holder.exec("LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE").empty());
    Session watcher(url, "pb-diag-locked-watch");
    REQUIRE(wait_for([&] {
        return watcher.value("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(holder.pid()) +
                             " AND state = 'idle in transaction' AND now() - state_change > interval '300 ms'") == "1";
    }));
    const auto first = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                           "--json", "-", "--junit", "a.xml"});
    const auto second = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "2", "--idle-in-transaction", "250ms",
                                            "--junit", "b.xml"});
    REQUIRE(holder.exec("ROLLBACK").empty());
    (void)holder.exec("DROP TABLE IF EXISTS " + table);
    INFO(first.err);
    CHECK(first.code == 1);  // the idle transaction is a problem
    const json j = parse_json(first.out);
    int locked = 0;
    for (const json* f : findings(j, "table_locked")) {
        const std::string text = f->at("text");
        if (text.find(table) == std::string::npos) continue;
        ++locked;
        CHECK(f->at("level") == "warn");
        CHECK(text.find("pid " + std::to_string(holder.pid()) + " (app '" + app + "', idle in transaction for ") == 0);
        CHECK(text.find("holds AccessExclusiveLock on table " + table + ": every read and write of it waits") !=
              std::string::npos);
    }
    CHECK(locked == 1);
    // JUnit: named by code and subject, the same in both runs though the seconds differ.
    const auto a = junit_names(slurp(dir.path() / "a.xml"));
    const auto b = junit_names(slurp(dir.path() / "b.xml"));
    const std::string locked_name = "table_locked " + table + " AccessExclusiveLock";
    const std::string idle_name = "idle_in_transaction " + app;
    for (const auto* names : {&a, &b}) {
        CHECK(std::count(names->begin(), names->end(), locked_name) == 1);
        CHECK(std::count(names->begin(), names->end(), idle_name) == 1);
        for (const auto& n : *names) CHECK(n.find(std::to_string(holder.pid())) == std::string::npos);
    }
}

TEST_CASE("pg: the --measure ladder's 1-connection step matches the round trip, or says why not", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "20", "--measure", "--measure-step", "500ms",
                                       "--json", "-"});
    INFO(r.err);
    REQUIRE((r.code == 0 || r.code == 1));
    const json j = parse_json(r.out);
    const double one = j.at("ladder").at("steps").at(0).at("ops_s").get<double>();
    const double expected = 1e6 / j.at("round_trip_us").at("p50").get<double>();
    INFO("1 connection: " << one << " ops/s; 1 / round trip: " << expected);
    CHECK(one * 10 > expected);  // never the order of magnitude off
    const bool explained = !findings(j, "ladder_single_connection_slow").empty();
    CHECK((one * 2 >= expected || explained));
}
