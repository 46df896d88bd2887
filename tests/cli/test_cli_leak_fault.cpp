// test_cli_leak_fault.cpp — the scenario engine's leak fault, the mechanism `poolbench leak`
// runs on: its findings in the fault's record (leak_check), legitimate holds that must not
// be reported, the engine's built-in leak checks, and the file errors that keep a leak
// fault from running where it could not be judged. Thresholds are 200-300 ms.
#include "cli_support.hpp"

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

const json* find_expectation(const json& j, const std::string& name, const std::string& scope) {
    for (const auto& e : j.at("expectations")) {
        if (e.at("name") == name && e.value("scope", std::string()) == scope) return &e;
    }
    return nullptr;
}

const char* const leak_file = R"(
[scenario]
description = "leaks beside legitimate holds"

[pool]
max_size = 10
leak_threshold = "300ms"
housekeeping_interval = "100ms"

[[phase]]
name = "load"
threads = 4
duration = "1500ms"

[[phase.fault]]
kind = "leak"
leaks = 2
holds = 3
hold_for = "150ms"
at = "100ms"
for = "1s"
expect = ["leak_check.false_positives == 0", "leak_check.legitimate_holds == 3"]
)";

}  // namespace

TEST_CASE("leak fault: holds beside the leaks are not reported, and the fault's record has the leak check",
          "[cli][run][leak]") {
    TempDir dir;
    write_file(dir.path() / "leak.toml", leak_file);
    const auto r = run_in(dir.path(), {"run", "./leak.toml", "--db", "null://", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& fault = j.at("faults").at(0);
    CHECK(fault.at("leaks_reported") == 2);
    const json& check = fault.at("leak_check");
    CHECK(check.at("injected") == 2);
    CHECK(check.at("reported") == 2);
    CHECK(check.at("traced_to_injector") == 2);
    CHECK(check.at("false_positives") == 0);
    CHECK(check.at("legitimate_holds") == 3);
    CHECK(check.at("returned_late") == 2);
    CHECK(check.at("injector") == "poolbench_leak_injected_lease");
    CHECK_FALSE(check.contains("second_phase"));  // only an awaiting fault has one
    CHECK_FALSE(j.contains("leak_check"));         // `poolbench leak`'s own section only
    // Only the leaker's leases were reported, from its own thread.
    REQUIRE(j.at("leaks").size() == 2);
    for (const auto& leak : j.at("leaks")) CHECK(leak.at("thread_name") == "pb-leaker");
    CHECK(fault.at("detail").get<std::string>().find("3 held legitimately by pb-holder") != std::string::npos);

    // The engine's built-in checks on the fault, scoped to it, beside the file's own.
    const std::string scope = "fault 1 (leak) in phase load";
    for (const char* name : {"leak_check.reported == 2", "leak_check.traced_to_injector == 2",
                             "leak_check.false_positives == 0", "leak_check.returned_late == 2",
                             "leak_check.legitimate_holds == 3"}) {
        INFO(name);
        const json* e = find_expectation(j, name, scope);
        REQUIRE(e != nullptr);
        CHECK(e->at("passed") == true);
    }
}

TEST_CASE("leak fault: a second leak fault counts only its own leases", "[cli][run][leak]") {
    TempDir dir;
    std::string text = leak_file;
    text += R"(
[[phase]]
name = "again"
threads = 4
duration = "1500ms"

[[phase.fault]]
kind = "leak"
leaks = 1
at = "100ms"
for = "1s"
)";
    write_file(dir.path() / "two.toml", text);
    const auto r = run_in(dir.path(), {"run", "./two.toml", "--db", "null://", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& second = j.at("faults").at(1).at("leak_check");
    CHECK(second.at("injected") == 1);
    CHECK(second.at("reported") == 1);
    CHECK(second.at("false_positives") == 0);  // the first fault's reports are not its own
    CHECK(second.at("returned_late") == 1);
    CHECK(j.at("pool").at("leaks_detected") == 3);
}

TEST_CASE("leak fault: files that could not judge a leak fault exit 2 before anything runs", "[cli][run][leak]") {
    TempDir dir;
    const std::string phase = "[[phase]]\nname = \"load\"\nthreads = 2\nduration = \"2s\"\n";
    struct Case {
        const char* name;
        std::string text;
        const char* says;
    };
    const std::vector<Case> cases{
        {"holds on another fault", phase + "[[phase.fault]]\nkind = \"latency\"\nfor = \"1s\"\nlatency = \"1ms\"\nholds = 2\n",
         "'holds' applies to leak faults, not latency"},
        {"no traces", "[pool]\nleak_threshold = \"200ms\"\nleak_trace_every = 5\n" + phase +
                          "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\n",
         "a leak fault needs [pool] leak_threshold set and leak_trace_every = 1"},
        {"a hold the pool must report", "[pool]\nleak_threshold = \"200ms\"\n" + phase +
                                            "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\nholds = 1\nhold_for = \"300ms\"\n",
         "bad.toml:11:12: hold_for (300 ms) must be under [pool] leak_threshold (200 ms)"},
        {"leaks and holds beyond the pool", "[pool]\nmax_size = 4\nleak_threshold = \"200ms\"\n" + phase +
                                                "[[phase.fault]]\nkind = \"leak\"\nleaks = 2\nholds = 3\nfor = \"1500ms\"\n",
         "2 leaks and 3 legitimate holds need 5 connections at once; the pool has 4"},
        {"an ops-bounded phase", "[pool]\nleak_threshold = \"200ms\"\n[[phase]]\nname = \"load\"\nops = 1000\n"
                                 "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\n",
         "a leak fault needs a phase bounded by duration, not ops"},
        {"overlapping leak faults that leave the load nothing",
         "[pool]\nmax_size = 10\nleak_threshold = \"200ms\"\nhousekeeping_interval = \"100ms\"\n" + phase +
             "[[phase.fault]]\nkind = \"leak\"\nleaks = 6\nfor = \"1s\"\n"
             "[[phase.fault]]\nkind = \"leak\"\nleaks = 6\nat = \"500ms\"\nfor = \"1s\"\n",
         "bad.toml:16:6: leak faults 1 and 2 of phase 'load' overlap at 500 ms and hold 12 leases at once"},
        {"hold_for without holds", "[pool]\nleak_threshold = \"200ms\"\n" + phase +
                                       "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\nhold_for = \"50ms\"\n",
         "bad.toml:10:12: hold_for applies only with holds"},
        {"a fractional leaks", "[pool]\nleak_threshold = \"200ms\"\n" + phase +
                                   "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\nleaks = 1.5\n",
         "leaks must be a whole number written without a decimal point or exponent (got the float 1.5)"},
        {"reclaim after the window", "[pool]\nleak_threshold = \"200ms\"\nleak_reclaim_after = \"900ms\"\n" + phase +
                                         "[[phase.fault]]\nkind = \"leak\"\nfor = \"1500ms\"\n",
         "must exceed [pool] leak_reclaim_after (900 ms) plus housekeeping_interval (1000 ms)"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        write_file(dir.path() / "bad.toml", c.text);
        const auto r = run_in(dir.path(), {"run", "./bad.toml", "--db", "sqlite://x.db"});
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(c.says) != std::string::npos);
        CHECK_FALSE(fs::exists(dir.path() / "x.db"));  // nothing ran
    }
}

TEST_CASE("leak fault: a cross-field error caused by --set names the --set", "[cli][run][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "leak-injection", "--set", "phase.load.fault.1.hold_for=2s", "--check"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("--set phase.load.fault.1.hold_for=2s: hold_for (2000 ms) must be under") != std::string::npos);
    CHECK(r.err.find("leak-injection.toml") == std::string::npos);
}

TEST_CASE("leak fault: one that cannot get its leases does not hold up the fault clock past its window",
          "[cli][run][leak]") {
    TempDir dir;
    // The pool is busy with the load: 4 threads holding every connection for 900 ms per
    // statement, leaks = 3 of a pool of 4, a 500 ms window.
    write_file(dir.path() / "busy.toml", R"(
[pool]
max_size = 4
leak_threshold = "200ms"
housekeeping_interval = "100ms"
acquire_timeout = "5s"

[[phase]]
name = "load"
threads = 4
duration = "2s"

[[phase.fault]]
kind = "latency"
latency = "900ms"
for = "1900ms"

[[phase.fault]]
kind = "leak"
leaks = 3
at = "100ms"
for = "500ms"
timeout = "10s"
)");
    const auto r = run_in(dir.path(), {"run", "./busy.toml", "--db", "sqlite://busy.db", "--no-progress", "--json", "-"});
    INFO(r.err);
    const json j = parse_json(r.out);
    const json& leak = j.at("faults").at(1);
    INFO(leak.dump(2));
    CHECK(leak.at("error").get<std::string>().find("did not start") == 0);
    // Given up at the end of its window (at 600 ms), not after its 10 s timeout (the wait's
    // exact length depends on when the fault clock got to it: not checked to the ms) ...
    CHECK(leak.at("error").get<std::string>().find("timed out after") != std::string::npos);
    // ... so the clock ended the other fault on time.
    CHECK(j.at("faults").at(0).at("ended_s").get<double>() < 2.1);
    CHECK(j.at("phases").at(0).at("duration_s").get<double>() < 3.0);
}

TEST_CASE("leak fault: a long hold taken before the fault began is not its false positive", "[cli][run][leak]") {
    TempDir dir;
    // Phase warm: a leak fault, so traces are symbolized fast later. Phase slow: its one
    // worker's first statement takes 900 ms (a lease taken at 0, reported after ~400 ms),
    // and the leak fault begins at 150 ms, before that report.
    write_file(dir.path() / "late.toml", R"(
[pool]
max_size = 4
leak_threshold = "400ms"
housekeeping_interval = "100ms"

[[phase]]
name = "warm"
threads = 1
duration = "1200ms"

[[phase.fault]]
kind = "leak"
leaks = 1
for = "1s"

[[phase]]
name = "slow"
threads = 1
duration = "2500ms"

[[phase.fault]]
kind = "latency"
latency = "900ms"
for = "950ms"

[[phase.fault]]
kind = "leak"
leaks = 1
at = "150ms"
for = "2s"
)");
    const auto r = run_in(dir.path(), {"run", "./late.toml", "--db", "sqlite://late.db", "--no-progress", "--json", "-"});
    INFO(r.err);
    const json j = parse_json(r.out);
    // The worker's lease was reported (by the pool), but not as the fault's false positive.
    bool worker_reported = false;
    for (const auto& l : j.at("leaks")) worker_reported = worker_reported || l.at("thread_name") != "pb-leaker";
    CHECK(worker_reported);
    const json& check = j.at("faults").at(2).at("leak_check");
    CHECK(check.at("reported") == 1);
    CHECK(check.at("false_positives") == 0);
    CHECK(check.at("detection_wait_ms").is_null());  // a run's leak fault does not await: not measured
    CHECK(r.err.find("leak check: injected 1, reported 1") != std::string::npos);  // the text report, on stderr
}
