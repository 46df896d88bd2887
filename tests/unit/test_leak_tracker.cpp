// The leak tracker alone: lease traces, findings, and the report list, with the time
// passed in. The pool-level leak behaviour is in test_leaks.cpp.
#include "pool/leak_tracker.hpp"
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

using poolbench::LeakReport;
using poolbench::PoolConfig;
using poolbench::PoolStats;
using poolbench::internal::LeakTracker;
using poolbench::internal::LeaseTrace;

namespace {
constexpr std::int64_t ms = 1'000'000;
PoolConfig config(int threshold_ms, int reclaim_ms) {
    // (pbtest::config: assigning a literal to c.name here trips GCC 12's -Wrestrict false
    // positive in the ASan build.)
    PoolConfig c = pbtest::config("t", 1, std::chrono::milliseconds(1000));
    c.leak_threshold = std::chrono::milliseconds(threshold_ms);
    c.leak_reclaim_after = std::chrono::milliseconds(reclaim_ms);
    return c;
}
}  // namespace

TEST_CASE("leak tracker: off with threshold 0, and then every call returns at once", "[leak_tracker]") {
    LeakTracker t(config(0, 0));
    CHECK_FALSE(t.enabled());
    CHECK_FALSE(t.reclaims());
    LeaseTrace trace;
    t.on_lease(trace, 6, 0);
    CHECK_FALSE(t.inspect(trace, 6, 1'000'000 * ms).has_value());
    t.on_return(trace, 6, 0, 1'000'000 * ms);
    CHECK(t.reports().empty());
}

TEST_CASE("leak tracker: a lease past the threshold is found once, with its holder", "[leak_tracker]") {
    LeakTracker t(config(100, 0));
    LeaseTrace trace;
    t.on_lease(trace, 6, 1000 * ms);
    CHECK_FALSE(t.inspect(trace, 6, 1099 * ms).has_value());
    auto f = t.inspect(trace, 6, 1100 * ms);
    REQUIRE(f.has_value());
    CHECK(f->suspect);
    CHECK_FALSE(f->reclaim);
    CHECK(f->report.held == std::chrono::milliseconds(100));
    CHECK(f->report.pool == "t");
    CHECK(f->report.thread_id != 0);
    CHECK_FALSE(t.inspect(trace, 6, 1200 * ms).has_value());  // reported once per lease
    std::vector<LeakTracker::Finding> findings{*f};
    t.publish(findings);
    const auto reports = t.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].kind == LeakReport::Kind::suspected);
    PoolStats st;
    t.fill(st);
    CHECK(st.leaks_detected == 1);

    // Returned late: a "returned" report with how long it was held.
    t.on_return(trace, 6, 1000 * ms, 1300 * ms);
    const auto after = t.reports();
    REQUIRE(after.size() == 2);
    CHECK(after[1].kind == LeakReport::Kind::returned);
    CHECK(after[1].held == std::chrono::milliseconds(300));
    t.fill(st);
    CHECK(st.leaks_returned_late == 1);
}

TEST_CASE("leak tracker: a lease whose holder has not written its trace is not judged", "[leak_tracker]") {
    LeakTracker t(config(100, 0));
    LeaseTrace trace;
    t.on_lease(trace, 6, 0);
    CHECK_FALSE(t.inspect(trace, 10, 1000 * ms).has_value());  // lease 10: a newer holder, trace not yet written
}

TEST_CASE("leak tracker: a returned lease that was never suspected makes no report", "[leak_tracker]") {
    LeakTracker t(config(100, 0));
    LeaseTrace trace;
    t.on_lease(trace, 6, 0);
    t.on_return(trace, 6, 0, 50 * ms);
    CHECK(t.reports().empty());
}

TEST_CASE("leak tracker: past leak_reclaim_after the finding says reclaim, counts and reports follow", "[leak_tracker]") {
    LeakTracker t(config(100, 300));
    CHECK(t.reclaims());
    LeaseTrace trace;
    t.on_lease(trace, 6, 0);
    auto f = t.inspect(trace, 6, 300 * ms);  // first look already past both
    REQUIRE(f.has_value());
    CHECK(f->suspect);
    CHECK(f->reclaim);
    t.count_reclaim();
    std::vector<LeakTracker::Finding> findings{*f};
    t.publish(findings);
    const auto reports = t.reports();
    REQUIRE(reports.size() == 2);
    CHECK(reports[0].kind == LeakReport::Kind::suspected);
    CHECK(reports[1].kind == LeakReport::Kind::reclaimed);
    PoolStats st;
    t.fill(st);
    CHECK(st.leaks_reclaimed == 1);
    CHECK(st.leaks_detected == 1);
    t.on_reclaimed_return(trace, 6, 500 * ms);
    const auto after = t.reports();
    REQUIRE(after.size() == 3);
    CHECK(after[2].kind == LeakReport::Kind::returned);
    CHECK(after[2].held == std::chrono::milliseconds(500));
}

TEST_CASE("leak tracker: the check interval is a quarter of the threshold, within 5 ms and 1 s", "[leak_tracker]") {
    CHECK(LeakTracker(config(100, 0)).check_interval_ns() == 25 * ms);
    CHECK(LeakTracker(config(4, 0)).check_interval_ns() == 5 * ms);
    CHECK(LeakTracker(config(60'000, 0)).check_interval_ns() == 1000 * ms);
}

TEST_CASE("leak tracker: on_leak sees every report, a throwing callback does not escape", "[leak_tracker]") {
    PoolConfig c = config(100, 0);
    int seen = 0;
    c.on_leak = [&](const LeakReport&) {
        ++seen;
        throw std::runtime_error("callback failed");
    };
    LeakTracker t(c);
    LeaseTrace trace;
    t.on_lease(trace, 6, 0);
    auto f = t.inspect(trace, 6, 200 * ms);
    REQUIRE(f.has_value());
    std::vector<LeakTracker::Finding> findings{*f};
    t.publish(findings);
    CHECK(seen == 1);
    CHECK(t.reports().size() == 1);
}
