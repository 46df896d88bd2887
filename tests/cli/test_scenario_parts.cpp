// test_scenario_parts.cpp — the scenario engine's pure parts, compiled in from src/: the
// recovery rule on synthetic timelines, and the expectation grammar.
#include "../../src/expectation.hpp"
#include "../../src/recovery.hpp"
#include "../../src/rotation_times.hpp"

#include <catch2/catch.hpp>

using poolbench::cli::ErrorCounts;
using poolbench::cli::TimelinePoint;

namespace {

/// 100 ms intervals with the given throughputs (and failures).
std::vector<TimelinePoint> timeline(std::initializer_list<double> ops, std::initializer_list<std::uint64_t> failed = {}) {
    std::vector<TimelinePoint> out;
    double t = 0;
    auto f = failed.begin();
    for (const double v : ops) {
        t += 0.1;
        TimelinePoint p;
        p.t_s = t;
        p.ops_s = v;
        if (f != failed.end()) p.failed = *f++;
        out.push_back(p);
    }
    return out;
}

}  // namespace

TEST_CASE("recovery: measured from the fault's end to the first interval back at 90% of the level before it",
          "[unit][recovery]") {
    // Level 1000 before the fault (0.0-0.3 s); fault 0.3-0.5 s; back at 0.7 s.
    const auto t = timeline({1000, 1000, 1000, 0, 0, 300, 800, 950, 990, 1000}, {0, 0, 0, 5, 7, 1, 0, 0, 0, 0});
    const std::vector<ErrorCounts> errors(t.size());
    const auto r = poolbench::cli::measure_recovery(t, errors, 0.3, 0.5);
    CHECK(r.basis == "before");
    CHECK(r.level_ops_s == Approx(1000));
    REQUIRE(r.recovery_ms);
    CHECK(*r.recovery_ms == Approx(200));  // interval 0.7-0.8 (950) is the first at 90% of 1000
    CHECK(r.failed == 13);
    CHECK(r.stalled_ms == Approx(200));
}

TEST_CASE("recovery: an interval with a failure is not recovered, and no recovery is none", "[unit][recovery]") {
    const auto t = timeline({1000, 1000, 0, 1000, 1000, 1000}, {0, 0, 3, 1, 0, 0});
    const std::vector<ErrorCounts> errors(t.size());
    const auto r = poolbench::cli::measure_recovery(t, errors, 0.2, 0.3);
    REQUIRE(r.recovery_ms);
    CHECK(*r.recovery_ms == Approx(100));  // 0.3-0.4 failed once: recovery starts at 0.4

    const auto never = timeline({1000, 1000, 0, 100, 100, 100});
    const auto n = poolbench::cli::measure_recovery(never, errors, 0.2, 0.3);
    CHECK_FALSE(n.recovery_ms);

    // Back at the level, but a failure follows before 20 operations succeeded in a row:
    // 10 ops/s over 100 ms is one operation an interval.
    const auto slow = timeline({10, 10, 0, 10, 10, 10, 10}, {0, 0, 1, 0, 1, 0, 0});
    const auto s = poolbench::cli::measure_recovery(slow, errors, 0.2, 0.3);
    CHECK_FALSE(s.recovery_ms);
}

TEST_CASE("recovery: a fault at 0 is measured against the level after it", "[unit][recovery]") {
    const auto t = timeline({0, 0, 500, 1000, 1000, 1000, 1000, 40});
    const std::vector<ErrorCounts> errors(t.size());
    const auto r = poolbench::cli::measure_recovery(t, errors, 0.0, 0.2);
    CHECK(r.basis == "after");
    CHECK(r.level_ops_s == Approx(1000));  // the median after the fault, the last partial interval left out
    REQUIRE(r.recovery_ms);
    CHECK(*r.recovery_ms == Approx(100));
}

TEST_CASE("expectations: units convert to the path's own unit, and bad ones say what was expected", "[unit][expect]") {
    using poolbench::cli::parse_expectation;
    std::string error;
    auto e = parse_expectation(" latency_us.op.p99 < 50ms ", error);
    REQUIRE(e);
    CHECK(e->path == "latency_us.op.p99");
    CHECK(e->op == "<");
    CHECK(e->value == Approx(50'000));
    e = parse_expectation("recovery_ms<=1.5s", error);
    REQUIRE(e);
    CHECK(e->op == "<=");
    CHECK(e->value == Approx(1500));
    e = parse_expectation("duration_s >= 500ms", error);
    REQUIRE(e);
    CHECK(e->value == Approx(0.5));
    e = parse_expectation("throughput_ops_s != 0", error);  // a rate, not a time
    REQUIRE(e);
    CHECK(e->op == "!=");
    CHECK_FALSE(parse_expectation("throughput_ops_s > 5s", error));
    CHECK(error.find("is not a time") != std::string::npos);
    CHECK_FALSE(parse_expectation("ops.failed", error));
    CHECK(error.find("no comparison") != std::string::npos);
    CHECK_FALSE(parse_expectation("ops.failed == lots", error));
    CHECK(error.find("not a number") != std::string::npos);
    CHECK_FALSE(parse_expectation("recovery_ms < 3 fortnights", error));
    CHECK(error.find("unknown unit") != std::string::npos);

    const nlohmann::ordered_json report{{"ops", {{"failed", 3}}}, {"recovery_ms", nullptr},
                                        {"latency_us", {{"op", {{"count", 0}, {"p99", 0}}}}}};
    auto x = poolbench::cli::evaluate_expectation(*parse_expectation("ops.failed <= 3", error), report, "");
    CHECK(x.passed);
    CHECK(x.actual == 3);
    x = poolbench::cli::evaluate_expectation(*parse_expectation("ops.failed < 3", error), report, "");
    CHECK_FALSE(x.passed);
    x = poolbench::cli::evaluate_expectation(*parse_expectation("recovery_ms < 1s", error), report, "");
    CHECK_FALSE(x.passed);
    CHECK(x.note == "no value (not recovered by the end of its phase)");  // the fault ran: it did happen
    x = poolbench::cli::evaluate_expectation(*parse_expectation("latency_us.op.p99 < 1s", error), report, "");
    CHECK_FALSE(x.passed);
    CHECK(x.note == "no samples");
    CHECK(poolbench::cli::check_expectation_path(*parse_expectation("ops.lost == 0", error), report)
              .find("the report has no 'ops.lost'") != std::string::npos);
}

#include "../../src/human.hpp"

TEST_CASE("human numbers: one formatter, no exponents", "[unit][human]") {
    using namespace poolbench::cli;  // NOLINT(google-build-using-namespace): test
    CHECK(human_rate(1'780'000) == "1.78 M ops/s");
    CHECK(human_rate(46'750) == "46.8 k ops/s");
    CHECK(human_rate(950) == "950.0 ops/s");
    CHECK(human_count(30'800'000) == "30.8 M");
    CHECK(human_count(27'890) == "27,890");
    CHECK(human_us(812) == "812.0 µs");
    CHECK(human_us(3'139'000) == "3.139 s");
    CHECK(human_change_pct(4'470'000) == "+4,470,000%");
    CHECK(human_change_pct(-3) == "-3.0%");
    CHECK(human_number(95'000'000) == "95 M");
    CHECK(human_number(1500) == "1,500");
    CHECK(human_number(72.058) == "72.1");
    CHECK(human_number(0.25) == "0.25");
}

namespace {

using poolbench::NodeState;
using RotClock = std::chrono::steady_clock;

poolbench::RotationEvent change(RotClock::time_point t0, int at_ms, NodeState from, NodeState to) {
    poolbench::RotationEvent e;
    e.at_steady = t0 + std::chrono::milliseconds(at_ms);
    e.from = from;
    e.to = to;
    return e;
}

}  // namespace

TEST_CASE("rotation times: out after the fault began, back after it ended", "[unit][replica]") {
    const auto t0 = RotClock::now();
    using S = NodeState;
    const std::vector<poolbench::RotationEvent> h{
        change(t0, 0, S::unchecked, S::healthy),
        change(t0, 1300, S::healthy, S::suspect),  // a read met the stopped replica
        change(t0, 1310, S::suspect, S::down),     // its check confirmed it
        change(t0, 5200, S::down, S::healthy),
        change(t0, 9000, S::healthy, S::lagging),  // later, unrelated: not counted
    };
    const auto ms = [&](int v) { return t0 + std::chrono::milliseconds(v); };
    const auto r = poolbench::cli::rotation_times(h, ms(1000), ms(4000));
    REQUIRE(r.failover_ms);
    CHECK(*r.failover_ms == Approx(300));
    REQUIRE(r.rejoin_ms);
    CHECK(*r.rejoin_ms == Approx(1200));

    // Not reverted (a promotion): no rejoin even when it came back.
    const auto promoted = poolbench::cli::rotation_times(h, ms(1000), std::nullopt);
    CHECK(promoted.failover_ms);
    CHECK_FALSE(promoted.rejoin_ms);

    // Back before the start command returned: 0, never negative.
    const auto early = poolbench::cli::rotation_times(h, ms(1000), ms(6000));
    REQUIRE(early.rejoin_ms);
    CHECK(*early.rejoin_ms == Approx(0));

    // Back for a moment during the fault (a check passed on a pooled connection while the
    // server shut down), out again: the return that counts is the one after the end.
    const std::vector<poolbench::RotationEvent> flap{
        change(t0, 0, S::unchecked, S::healthy),  change(t0, 1020, S::healthy, S::suspect),
        change(t0, 1030, S::suspect, S::healthy), change(t0, 1400, S::healthy, S::down),
        change(t0, 4700, S::down, S::healthy),
    };
    const auto f = poolbench::cli::rotation_times(flap, ms(1000), ms(4000));
    REQUIRE(f.failover_ms);
    CHECK(*f.failover_ms == Approx(20));
    REQUIRE(f.rejoin_ms);
    CHECK(*f.rejoin_ms == Approx(700));

    // Never back by the end of the history: none.
    const std::vector<poolbench::RotationEvent> stays_out(h.begin(), h.begin() + 3);
    const auto out = poolbench::cli::rotation_times(stays_out, ms(1000), ms(4000));
    CHECK(out.failover_ms);
    CHECK_FALSE(out.rejoin_ms);
}

TEST_CASE("rotation times: a replica that never left, or was out already", "[unit][replica]") {
    const auto t0 = RotClock::now();
    using S = NodeState;
    const auto ms = [&](int v) { return t0 + std::chrono::milliseconds(v); };
    const std::vector<poolbench::RotationEvent> steady{change(t0, 0, S::unchecked, S::healthy)};
    const auto never = poolbench::cli::rotation_times(steady, ms(1000), ms(2000));
    CHECK_FALSE(never.failover_ms);
    CHECK_FALSE(never.rejoin_ms);

    const std::vector<poolbench::RotationEvent> out_before{change(t0, 0, S::unchecked, S::healthy),
                                                           change(t0, 500, S::healthy, S::down),
                                                           change(t0, 2500, S::down, S::healthy)};
    const auto already = poolbench::cli::rotation_times(out_before, ms(1000), ms(2000));
    REQUIRE(already.failover_ms);
    CHECK(*already.failover_ms == Approx(0));
    REQUIRE(already.rejoin_ms);
    CHECK(*already.rejoin_ms == Approx(500));
}

#include "../../src/runner.hpp"

TEST_CASE("outage probes: a fault started inside another's outage leaves that outage an end", "[unit][recovery]") {
    using poolbench::cli::OutageProbe;
    std::atomic<OutageProbe*> slot{nullptr};
    OutageProbe first, second;
    const auto publish = [&](OutageProbe& p) {
        p.previous = slot.load();
        slot.store(&p);
    };
    const auto fail = [&](std::int64_t t) { poolbench::cli::for_each_probe(&slot, [&](OutageProbe& p) { p.failed(t); }); };
    const auto ok = [&](std::int64_t t) {
        poolbench::cli::for_each_probe(&slot, [&](OutageProbe& p) { p.succeeded(t); });
    };
    publish(first);
    fail(100);
    publish(second);  // starts while the first's outage is open
    fail(200);
    for (std::int64_t t = 300; t < 300 + OutageProbe::confirm; ++t) ok(t);
    CHECK(first.first_failure_ns == 100);
    CHECK(first.recovered_ns == 300);  // it was 0 for good when only the newest probe was fed
    CHECK(second.first_failure_ns == 200);
    CHECK(second.recovered_ns == 300);

    // A fault that ended without a failure does not take a later fault's outage as its own.
    OutageProbe quiet, later;
    slot.store(nullptr);
    publish(quiet);
    quiet.closed = true;
    publish(later);
    fail(1000);
    CHECK(quiet.first_failure_ns == 0);
    CHECK(later.first_failure_ns == 1000);
    // One whose outage was open when it ended follows it to its end.
    OutageProbe open, next;
    slot.store(nullptr);
    publish(open);
    fail(2000);
    open.closed = true;
    publish(next);
    fail(2100);
    for (std::int64_t t = 2200; t < 2200 + OutageProbe::confirm; ++t) ok(t);
    CHECK(open.recovered_ns == 2200);
}
