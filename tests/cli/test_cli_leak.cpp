// test_cli_leak.cpp — `poolbench leak` end to end: exact detection with traces, no false
// positives for leases held under the threshold, reclaim restoring capacity, usage and
// database errors. Thresholds are 200 ms so each run takes well under a second.
#include "cli_support.hpp"

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

constexpr const char* injector = "poolbench_leak_injected_lease";

bool traced_in_top5(const json& leak) {
    const json& stack = leak.at("stack");
    for (std::size_t i = 0; i < std::min<std::size_t>(5, stack.size()); ++i) {
        if (stack.at(i).get<std::string>().find(injector) != std::string::npos) return true;
    }
    return false;
}

const json* find_expectation(const json& j, const std::string& name) {
    for (const auto& e : j.at("expectations")) {
        if (e.at("name") == name) return &e;
    }
    return nullptr;
}

// The checks every passing `leak` run must satisfy with `n` injected leaks.
void check_exact_detection(const json& j, int n) {
    CHECK(j.at("command") == "leak");
    CHECK(j.at("verdict") == "pass");
    CHECK(j.at("leaks_tracked") == true);
    const json& check = j.at("leak_check");
    CHECK(check.at("injected") == n);
    CHECK(check.at("reported") == n);
    CHECK(check.at("traced_to_injector") == n);
    CHECK(check.at("false_positives") == 0);
    CHECK(check.at("returned_late") == n);
    CHECK(check.at("injector") == injector);
    CHECK(j.at("ops").at("failed") == 0);
    // A lease's first report is "suspected", or a traced "reclaimed" when the reclaim
    // deadline passed before the housekeeper got to it (the library counts only the former
    // in leaks_detected).
    const int reclaimed_first = check.value("reclaimed_before_report", 0);
    CHECK(j.at("pool").at("leaks_detected").get<int>() + reclaimed_first == n);

    int first_reports = 0;
    for (const auto& leak : j.at("leaks")) {
        INFO(leak.dump(2));
        require_number_fields(leak, {"held_ms", "thread_id"});
        CHECK(leak.at("thread").is_string());
        REQUIRE(leak.at("stack").is_array());
        CHECK(leak.at("kind") != "returned");  // late returns are counted, not listed
        const bool first = leak.at("kind") == "suspected" || !leak.at("stack").empty();
        if (!first) continue;
        ++first_reports;
        CHECK(leak.at("thread_name") == "pb-leaker");
        CHECK(leak.at("held_ms").get<double>() >= 200.0);
        CHECK(traced_in_top5(leak));
    }
    CHECK(first_reports == n);
    const json* reported = find_expectation(j, "leak_check.reported == " + std::to_string(n));
    REQUIRE(reported != nullptr);
    CHECK(reported->at("passed") == true);
}

}  // namespace

TEST_CASE("leak on null://: every injected leak is reported once, traced to the injector", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--leaks", "3", "--threshold", "200ms", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    check_exact_detection(j, 3);
    const json& check = j.at("leak_check");
    CHECK(check.at("legitimate_holds") == 2);
    CHECK_FALSE(check.contains("second_phase"));
    CHECK_FALSE(check.contains("reclaim_after_ms"));
    CHECK(j.at("config").at("leak_threshold_ms") == 200);
    CHECK(j.at("ops").at("ok") == 2000);

    // The text report (on stderr with --json -) shows each leak with its thread and trace.
    CHECK(r.err.find("held ") != std::string::npos);
    CHECK(r.err.find("by thread pb-leaker (") != std::string::npos);
    CHECK(r.err.find(std::string("      at poolbench::cli::") + injector) != std::string::npos);
    CHECK(r.err.find("leak check: injected 3, reported 3") != std::string::npos);
    CHECK(r.err.find("tracking not enabled") == std::string::npos);
    CHECK(r.err.find("verdict: PASS") != std::string::npos);
}

TEST_CASE("leak on a SQLite file", "[cli][leak]") {
    TempDir dir;
    const std::string url = "sqlite://" + (dir.path() / "leak.db").string();
    const auto r = run_in(dir.path(), {"leak", "--db", url, "--threshold", "200ms", "--ops", "500", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "sqlite");
    check_exact_detection(j, 3);
}

TEST_CASE("leak --reclaim revokes the leases and the pool serves a second phase", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--reclaim", "400ms",
                                       "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    check_exact_detection(j, 3);
    const json& check = j.at("leak_check");
    CHECK(check.at("reclaimed") == 3);
    CHECK(check.at("reclaim_after_ms") == 400);
    CHECK(check.at("revoked_use_threw") == true);
    const json& second = check.at("second_phase").at("ops");
    CHECK(second.at("ok") == 2000);
    CHECK(second.at("failed") == 0);
    CHECK(second.at("timed_out") == 0);
    CHECK(j.at("ops").at("ok") == 4000);
    CHECK(j.at("pool").at("leaks_reclaimed") == 3);

    // The whole pool leaked: only reclaim can give the second phase a connection.
    const auto all = run_in(dir.path(), {"leak", "--db", "null://", "--leaks", "4", "--pool-size", "4", "--threshold",
                                         "200ms", "--reclaim", "400ms", "--acquire-timeout", "5s", "--json", "-"});
    INFO(all.err);
    REQUIRE(all.code == 0);
    const json a = parse_json(all.out);
    check_exact_detection(a, 4);
    CHECK(a.at("leak_check").at("legitimate_holds") == 0);
    CHECK(a.at("leak_check").at("reclaimed") == 4);
    CHECK(a.at("leak_check").at("second_phase").at("ops").at("ok") == 2000);
}

TEST_CASE("leak: leaking the whole pool without --reclaim exits 2", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--leaks", "10", "--pool-size", "10"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("--leaks 10") != std::string::npos);
    CHECK(r.err.find("--reclaim") != std::string::npos);
    CHECK(r.out.empty());
    const auto over = run_in(dir.path(), {"leak", "--db", "null://", "--leaks", "11", "--pool-size", "10", "--reclaim",
                                          "1s"});
    CHECK(over.code == 2);
    CHECK(count_lines(over.err) == 1);
}

TEST_CASE("leak: bad durations and ranges exit 2 with one line", "[cli][leak]") {
    TempDir dir;
    for (const auto& args : std::vector<std::vector<std::string>>{{"--threshold", "5parsecs"},
                                                                    {"--threshold", "0s"},
                                                                    {"--threshold", "200"},
                                                                    {"--threshold", "11m"},
                                                                    {"--reclaim", "soon"},
                                                                    {"--leaks", "0"},
                                                                    {"--threads", "0"},
                                                                    {"--pool-size", "0"},
                                                                    {"--ops", "0"}}) {
        INFO(args[0] << " " << args[1]);
        std::vector<std::string> argv{"leak", "--db", "null://", args[0], args[1]};
        const auto r = run_in(dir.path(), argv);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(args[0]) != std::string::npos);
    }
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "500ms", "--reclaim", "500ms"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--reclaim 500ms must be longer than --threshold 500ms") != std::string::npos);
}

TEST_CASE("leak: an unopenable SQLite path exits 3 naming the path", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "sqlite:///nonexistent-dir/x.db"});
    CHECK(r.code == 3);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("/nonexistent-dir/x.db") != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("leak --help lists its options and the top-level help lists leak", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--help"});
    CHECK(r.code == 0);
    for (const char* option : {"--leaks", "--threshold", "--reclaim", "--threads", "--pool-size", "--json"}) {
        INFO(option);
        CHECK(r.out.find(option) != std::string::npos);
    }
    CHECK(r.out.find("=500ms") != std::string::npos);
    const auto top = run_in(dir.path(), {"--help"});
    CHECK(top.out.find("leak") != std::string::npos);
}

TEST_CASE("leak runs as a scenario: a load phase, then a leak phase with its leak fault", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--ops", "500", "--json",
                                       "r.json", "--junit", "r.xml"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    REQUIRE(j.at("phases").size() == 2);
    CHECK(j.at("phases").at(0).at("name") == "load");
    CHECK(j.at("phases").at(0).at("ops").at("ok") == 500);
    CHECK(j.at("phases").at(1).at("name") == "leak");
    CHECK(j.at("phases").at(1).at("ops").at("total") == 0);  // no --reclaim: nothing runs after the leaks
    REQUIRE(j.at("faults").size() == 1);
    const json& fault = j.at("faults").at(0);
    CHECK(fault.at("kind") == "leak");
    CHECK(fault.at("phase") == "leak");
    CHECK(fault.at("reverted") == true);
    CHECK(fault.at("for_s").is_null());  // it lasts until its phase ends
    CHECK(fault.at("leak_check") == j.at("leak_check"));
    // The workload the flags describe is the run's.
    CHECK(j.at("config").at("workload") == "select1");
    CHECK(j.at("config").at("ops") == 500);
    // One JUnit test case per expectation, named as the leak command always named them.
    const std::string xml = slurp(dir.path() / "r.xml");
    for (const char* name : {"leak_check.reported == 3", "leak_check.traced_to_injector == 3",
                             "leak_check.false_positives == 0", "leak_check.returned_late == 3"}) {
        INFO(name);
        CHECK(xml.find(name) != std::string::npos);
    }

    const auto reclaim = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--reclaim", "400ms",
                                             "--ops", "500", "--json", "-"});
    INFO(reclaim.err);
    REQUIRE(reclaim.code == 0);
    const json k = parse_json(reclaim.out);
    // With --reclaim the leak phase runs the workload on the reclaimed capacity.
    CHECK(k.at("phases").at(1).at("ops") == k.at("leak_check").at("second_phase").at("ops"));
    CHECK(k.at("phases").at(1).at("ops").at("ok") == 500);
}

TEST_CASE("leak: the wait for the pool's reports is in the leak phase, its fault's window and the run's duration",
          "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--ops", "500", "--json",
                                       "r.json", "--junit", "r.xml"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const json& leak = j.at("phases").at(1);
    const json& fault = j.at("faults").at(0);
    const double wait_s = j.at("leak_check").at("detection_wait_ms").get<double>() / 1000.0;
    CHECK(wait_s >= 0.2);  // nothing is reported before the threshold
    // The leak phase lasts the wait, and its fault's window covers it.
    CHECK(leak.at("duration_s").get<double>() >= wait_s - 0.002);
    const double started = fault.at("started_s").get<double>();
    const double ended = fault.at("ended_s").get<double>();
    CHECK(started <= leak.at("started_s").get<double>() + 0.1);
    CHECK(ended - started >= wait_s - 0.002);
    CHECK(ended <= leak.at("started_s").get<double>() + leak.at("duration_s").get<double>() + 0.002);
    // The run's duration is wall time; throughput is over the time the load ran.
    CHECK(j.at("duration_s").get<double>() >= wait_s);
    const double load_s = j.at("load_duration_s").get<double>();
    REQUIRE(load_s > 0);
    CHECK(load_s < j.at("duration_s").get<double>());
    // (Over the wall time it would be 500 / duration_s: the wait makes that far lower.)
    CHECK(j.at("throughput_ops_s").get<double>() > 2 * 500.0 / j.at("duration_s").get<double>());
    CHECK(r.out.find("per second of the time the load ran") != std::string::npos);
    // JUnit's time is the run's.
    const std::string xml = slurp(dir.path() / "r.xml");
    const auto at = xml.find("time=\"");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(xml.substr(at + 6)) >= wait_s);
}

TEST_CASE("leak: more than 500 leaks are all listed (late returns do not push detections out)", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--leaks", "600",
                                       "--pool-size", "601", "--ops", "100", "--json", "r.json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    CHECK(j.at("leak_check").at("reported") == 600);
    CHECK(j.at("leaks").size() == 600);
    CHECK(j.at("leaks_not_listed") == 0);
    CHECK(r.out.find("leaks: none") == std::string::npos);
    CHECK(r.out.find("not listed") == std::string::npos);
}

TEST_CASE("leak: the built-in checks are report paths a scenario can expect as they are", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"leak", "--db", "null://", "--threshold", "200ms", "--ops", "200", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    std::vector<std::string> names;
    for (const auto& e : j.at("expectations")) {
        const std::string name = e.at("name");
        if (name.rfind("leak", 0) == 0) names.push_back(name);
    }
    REQUIRE(names.size() == 4);
    // Each, written in a leak fault's expect, passes --check.
    std::string file = "[pool]\nmax_size = 10\nleak_threshold = \"200ms\"\nhousekeeping_interval = \"100ms\"\n"
                       "[[phase]]\nname = \"load\"\nthreads = 2\nduration = \"2s\"\n"
                       "[[phase.fault]]\nkind = \"leak\"\nfor = \"1s\"\nexpect = [";
    for (const auto& n : names) file += "\"" + n + "\", ";
    file += "]\n";
    write_file(dir.path() / "copy.toml", file);
    const auto check = run_in(dir.path(), {"run", "./copy.toml", "--db", "null://", "--check"});
    INFO(check.err);
    CHECK(check.code == 0);
}
