// test_cli_compare.cpp — `poolbench compare BASE.json NEW.json`: the regression check.
// BASE is a real report from a short null:// run; NEW is the same report with chosen
// fields changed, so each judged metric is tested on its own.
#include "cli_support.hpp"

#include <fstream>
#include <functional>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json base_report(const TempDir& dir) {
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--threads", "2", "--ops", "2000", "--no-progress",
                                       "--json", "base.json"});
    REQUIRE(r.code == 0);
    return parse_json(slurp(dir.path() / "base.json"));
}

void write(const TempDir& dir, const char* name, const json& j) {
    std::ofstream(dir.path() / name) << j.dump(2);
}

Result compare(const TempDir& dir, std::initializer_list<std::string> extra = {}) {
    std::vector<std::string> args{"compare", "base.json", "new.json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_in(dir.path(), args);
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

bool line_has(const std::string& text, const std::string& start, const std::string& what) {
    std::size_t at = 0;
    while ((at = text.find(start, at)) != std::string::npos) {
        const auto end = text.find('\n', at);
        if (text.substr(at, end - at).find(what) != std::string::npos) return true;
        at = end;
    }
    return false;
}

}  // namespace

TEST_CASE("compare: a report against itself is no regression", "[cli][compare]") {
    TempDir dir;
    write(dir, "new.json", base_report(dir));
    const auto r = compare(dir, {"--json", "cmp.json"});
    CHECK(r.code == 0);
    CHECK(r.out.find("result: no regression") != std::string::npos);
    CHECK(r.out.find("note:") == std::string::npos);
    const json j = parse_json(slurp(dir.path() / "cmp.json"));
    CHECK(j["schema"] == "poolbench/compare@1");
    CHECK(j["verdict"] == "pass");
    CHECK(j["regressions"] == 0);
    CHECK(j["metrics"].size() >= 6);
}

TEST_CASE("compare: each judged metric fails the run on its own", "[cli][compare]") {
    TempDir dir;
    const json base = base_report(dir);
    struct Case {
        const char* what;
        const char* row;
        std::function<void(json&)> change;
    };
    const std::vector<Case> cases{
        {"throughput -20%", "throughput", [](json& j) { j["throughput_ops_s"] = j["throughput_ops_s"].get<double>() * 0.8; }},
        {"op p99 x2 and +1 ms", "op latency p99",
         [](json& j) { j["latency_us"]["op"]["p99"] = j["latency_us"]["op"]["p99"].get<double>() * 2 + 1000; }},
        {"failures", "failed + timed out", [](json& j) { j["ops"]["failed"] = 3; }},
        {"a leak", "leaks reported", [](json& j) { j["leaks"].push_back(json{{"held_ms", 900}}); }},
        {"a lost write", "writes lost",
         [](json& j) { j["writes"] = json{{"acknowledged", 10}, {"verified", 9}, {"lost", 1}, {"checked", true}}; }},
        {"own verdict", "own verdict failed", [](json& j) { j["verdict"] = "fail"; }},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        json now = base;
        c.change(now);
        write(dir, "new.json", now);
        const auto r = compare(dir);
        CHECK(r.code == 1);
        CHECK(line_has(r.out, c.row, "REGRESSED"));
        CHECK(r.out.find("result: 1 regression\n") != std::string::npos);
    }
}

TEST_CASE("compare: changes within the limits, or too small to matter, pass", "[cli][compare]") {
    TempDir dir;
    json now = base_report(dir);
    write(dir, "base.json", now);
    now["throughput_ops_s"] = now["throughput_ops_s"].get<double>() * 0.95;  // within 10%
    // Doubled, but by under 5 us: sub-microsecond latencies on null:// are noise.
    now["latency_us"]["op"]["p99"] = now["latency_us"]["op"]["p99"].get<double>() * 2;
    write(dir, "new.json", now);
    const auto r = compare(dir);
    CHECK(r.code == 0);
    CHECK(line_has(r.out, "throughput", "ok (limit -10%)"));
    // A tighter limit given on the command line turns the same drop into a regression.
    const auto tight = compare(dir, {"--throughput-drop", "2"});
    CHECK(tight.code == 1);
    CHECK(line_has(tight.out, "throughput", "REGRESSED (limit -2%)"));
}

TEST_CASE("compare: runs with different settings are compared, with a note for each difference", "[cli][compare]") {
    TempDir dir;
    json now = base_report(dir);
    now["config"]["threads"] = 64;
    now["config"]["workload"] = "read";
    write(dir, "new.json", now);
    const auto r = compare(dir);
    CHECK(r.code == 0);
    CHECK(r.out.find("note: the runs differ: threads 2 vs 64") != std::string::npos);
    CHECK(r.out.find("note: the runs differ: workload select1 vs read") != std::string::npos);
}

TEST_CASE("compare: unreadable, non-JSON and foreign files exit 2 with one line", "[cli][compare]") {
    TempDir dir;
    write(dir, "new.json", base_report(dir));
    std::ofstream(dir.path() / "garbage.json") << "{ not json";
    std::ofstream(dir.path() / "other.json") << R"({"schema": "something/else@3"})";
    std::ofstream(dir.path() / "future.json") << R"({"schema": "poolbench/report@2"})";
    for (const auto& [file, words] : std::vector<std::pair<std::string, std::string>>{
             {"missing.json", "cannot read BASE report missing.json"},
             {"garbage.json", "is not valid JSON"},
             {"other.json", "is not a poolbench report"},
             {"future.json", "reads poolbench/report@1"},
             {".", "is a directory"}}) {
        INFO(file);
        const auto r = run_in(dir.path(), {"compare", file, "new.json"});
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(words) != std::string::npos);
        CHECK(r.out.empty());
    }
    const auto usage = run_in(dir.path(), {"compare", "new.json"});
    CHECK(usage.code == 2);
    CHECK(count_lines(usage.err) == 1);
}

TEST_CASE("compare: a report missing a judged field, or with the wrong type, exits 2 rather than passing",
          "[cli][compare]") {
    TempDir dir;
    const json base = base_report(dir);
    const std::vector<std::pair<std::string, std::function<void(json&)>>> cases{
        {"throughput_ops_s", [](json& j) { j.erase("throughput_ops_s"); }},
        {"throughput_ops_s", [](json& j) { j["throughput_ops_s"] = "fast"; }},
        {"latency_us/op/p50", [](json& j) { j.erase("latency_us"); }},
        {"ops/total", [](json& j) { j["ops"] = "x"; }},
        {"verdict", [](json& j) { j["verdict"] = 5; }},
        {"verdict 'maybe'", [](json& j) { j["verdict"] = "maybe"; }},
        {"throughput_ops_s = -5", [](json& j) { j["throughput_ops_s"] = -5; }},
    };
    for (const auto& [field, change] : cases) {
        INFO(field);
        json now = base;
        change(now);
        write(dir, "new.json", now);
        const auto r = compare(dir);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find("NEW report new.json has") != std::string::npos);
        CHECK(r.err.find(field) != std::string::npos);
    }
    json odd = base;
    odd["schema"] = 5;
    write(dir, "new.json", odd);
    CHECK(compare(dir).code == 2);
    write(dir, "new.json", base);
    const auto nan = compare(dir, {"--throughput-drop", "nan"});
    CHECK(nan.code == 2);
    CHECK(count_lines(nan.err) == 1);
}

TEST_CASE("compare: a report of a run that did not complete exits 2, and --json never replaces an input",
          "[cli][compare]") {
    TempDir dir;
    const json base = base_report(dir);
    // A real error report: what a run that could not use its database leaves.
    const auto failed = run_in(dir.path(), {"stress", "--db", "sqlite:///nonexistent-dir/x.db", "--json", "new.json"});
    REQUIRE(failed.code == 3);
    const auto r = compare(dir);
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("NEW report new.json is from a run that did not complete (cannot use database") !=
          std::string::npos);

    write(dir, "new.json", base);
    const std::string before = slurp(dir.path() / "base.json");
    for (const char* target : {"base.json", "./new.json"}) {
        INFO(target);
        const auto clash = compare(dir, {"--json", target});
        CHECK(clash.code == 2);
        CHECK(clash.err.find("a report must not replace it") != std::string::npos);
    }
    CHECK(slurp(dir.path() / "base.json") == before);
}

TEST_CASE("compare: --junit has one test case per judged check and a failure per regression, and --html charts both runs",
          "[cli][compare][html]") {
    TempDir dir;
    json now = base_report(dir);
    now["throughput_ops_s"] = now["throughput_ops_s"].get<double>() * 0.5;  // regressed
    now["writes"] = json{{"acknowledged", 10}, {"verified", 9}, {"lost", 1}, {"checked", true}};  // regressed
    write(dir, "new.json", now);
    const auto r = compare(dir, {"--json", "cmp.json", "--junit", "cmp.xml", "--html", "cmp.html"});
    INFO(r.err);
    CHECK(r.code == 1);
    const json j = parse_json(slurp(dir.path() / "cmp.json"));
    std::size_t judged = 0;
    for (const auto& m : j.at("metrics")) judged += m.at("judged").get<bool>() ? 1 : 0;
    REQUIRE(j.at("regressions") == 2);

    const std::string x = slurp(dir.path() / "cmp.xml");
    CHECK(x.rfind("<?xml", 0) == 0);
    CHECK(count_of(x, "<testcase ") == judged);
    CHECK(count_of(x, "<failure type=\"regression\"") == 2);
    CHECK(x.find("tests=\"" + std::to_string(judged) + "\" failures=\"2\"") != std::string::npos);
    CHECK(x.find("name=\"throughput (ops/s)\" time=\"0\">\n      <failure") != std::string::npos);
    CHECK(x.find("name=\"writes lost\" time=\"0\">\n      <failure") != std::string::npos);
    CHECK(x.find("name=\"op latency p50 (us)\" time=\"0\"/>") != std::string::npos);  // passed
    CHECK(x.find("<system-out>compare: base.json (BASE) -&gt; new.json (NEW)") != std::string::npos);

    const std::string h = slurp(dir.path() / "cmp.html");
    CHECK(h.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(h.find("<h1>poolbench compare — <span class=\"fail\">FAIL</span></h1>") != std::string::npos);
    CHECK(count_of(h, "<td class=\"regressed\">REGRESSED") == 2);
    CHECK(count_of(h, "<svg class=\"chart\"") == 3);  // throughput, op p99, the op histogram: BASE and NEW
    CHECK(h.find("<script") == std::string::npos);

    // The same two reports with nothing regressed: every test case passes.
    write(dir, "new.json", base_report(dir));
    const auto same = compare(dir, {"--junit", "cmp.xml", "--html", "cmp.html"});
    CHECK(same.code == 0);
    CHECK(count_of(slurp(dir.path() / "cmp.xml"), "<failure") == 0);
    CHECK(slurp(dir.path() / "cmp.html").find("<span class=\"pass\">PASS</span>") != std::string::npos);

    // Targets are checked before anything is read: none may be an input, nor unwritable.
    const auto onto_input = compare(dir, {"--html", "new.json"});
    CHECK(onto_input.code == 2);
    CHECK(count_lines(onto_input.err) == 1);
    CHECK(parse_json(slurp(dir.path() / "new.json")).at("schema") == "poolbench/report@1");
    // A NEW that is not a report: exit 2, and the pages say so instead of staying green.
    std::ofstream(dir.path() / "new.json") << "not json";
    const auto broken = compare(dir, {"--junit", "cmp.xml", "--html", "cmp.html"});
    CHECK(broken.code == 2);
    CHECK(slurp(dir.path() / "cmp.html").find("ERROR</span></h1>") != std::string::npos);
    CHECK(count_of(slurp(dir.path() / "cmp.xml"), "<error type=\"exit 2\"") == 1);
    const auto nowhere = compare(dir, {"--junit", "/nonexistent-dir/cmp.xml"});
    CHECK(nowhere.code == 2);
    CHECK(count_lines(nowhere.err) == 1);
    CHECK(nowhere.err.find("--junit") != std::string::npos);
}
