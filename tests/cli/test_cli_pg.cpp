// test_cli_pg.cpp — the poolbench executable against a real PostgreSQL server
// (POOLBENCH_PG_URL; scripts/pg_sandbox.sh starts a throwaway one). Without the variable
// every test here FAILS, naming the script. Connection failures must exit 3 with one line
// that never contains the password.
#include "cli_support.hpp"

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

TEST_CASE("pg: diagnose reports the server's settings and connection headroom", "[cli][pg][diagnose]") {
    const std::string url = pg_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", url, "--samples", "5", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "postgresql");
    const json& s = j.at("settings");
    CHECK(s.at("server").get<std::string>().rfind("PostgreSQL 15", 0) == 0);
    CHECK(std::stoi(s.at("max_connections").get<std::string>()) > 0);
    CHECK(std::stoi(s.at("client connections now (this one included)").get<std::string>()) >= 1);
    CHECK(s.at("role") == "primary");
    bool headroom = false;
    for (const auto& f : j.at("findings")) {
        if (f.at("what").get<std::string>().find("more connections possible") != std::string::npos) headroom = true;
    }
    CHECK(headroom);
    CHECK(j.at("connect_ms").at("p50").get<double>() > j.at("round_trip_us").at("p50").get<double>() / 1000.0);
    const std::string password = url_password(url);
    REQUIRE(password.size() >= 3);
    CHECK(r.out.find(password) == std::string::npos);
    CHECK(r.err.find(password) == std::string::npos);
    // poolbench's own statement_timeout in the URL silences the advice to add one.
    const auto with_timeout = run_in(dir.path(), {"diagnose", "--db", url + "?statement_timeout=5s", "--samples", "2"});
    CHECK(with_timeout.code == 0);
    CHECK(with_timeout.out.find("no server-side statement_timeout") == std::string::npos);
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
