// The waiter queue and the bounded-barging rule, with the time passed in: no threads, no
// sleeps. The wall-clock bound is measured by bench/ (scripts/bench.sh), not here.
#include "pool/waiter_queue.hpp"

#include <catch2/catch.hpp>

using poolbench::internal::FrontSignals;
using poolbench::internal::Waiter;
using poolbench::internal::WaiterQueue;
using OnRelease = FrontSignals::OnRelease;

namespace {
constexpr std::int64_t ms = 1'000'000;
}

TEST_CASE("waiter queue: first come, first served", "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter a, b, c;
    a.since_ns = 1 * ms;
    b.since_ns = 2 * ms;
    c.since_ns = 3 * ms;
    q.push_back(a);
    q.push_back(b);
    q.push_back(c);
    CHECK(q.size() == 3);
    CHECK(q.is_front(a));
    q.unlink(b);  // timed out in the middle
    CHECK(q.pop_front() == &a);
    CHECK(q.pop_front() == &c);
    CHECK(q.pop_front() == nullptr);
    CHECK(q.empty());
}

TEST_CASE("waiter queue: before the threshold a release wakes the front to compete, at it, the connection is handed over",
          "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter w;
    w.since_ns = 100 * ms;
    q.push_back(w);

    // Normal mode: running threads may barge; the release wakes the front waiter once.
    CHECK_FALSE(signals.starving(105 * ms));
    CHECK(signals.after_release(105 * ms) == OnRelease::wake_front);
    std::uint32_t* bell = q.notify_front();
    CHECK(bell != nullptr);
    CHECK(w.notified);
    CHECK(signals.after_release(106 * ms) == OnRelease::nothing);  // a wake is already on its way

    // It looked and lost to running threads: passed over, releases stop waking it.
    CHECK(q.begin_look(w));
    q.pass_over(w);
    CHECK(signals.after_release(107 * ms) == OnRelease::nothing);

    // At the threshold the next released connection goes to it, and newcomers must queue.
    CHECK(signals.starving(110 * ms));
    CHECK(signals.after_release(110 * ms) == OnRelease::hand_off);
    bell = q.hand_to_front(3, 7);
    CHECK(bell != nullptr);
    CHECK(w.outcome.load() == Waiter::Outcome::handed);
    CHECK(w.slot == 3);
    CHECK(w.word == 7);
    CHECK(q.empty());
    CHECK_FALSE(signals.starving(1'000 * ms));  // nobody queued: nobody starving
}

TEST_CASE("waiter queue: the starvation clock is the front waiter's, and moves on when it leaves", "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter old_one, new_one;
    old_one.since_ns = 1 * ms;  // (0 means "nobody queued"; the steady clock never reads 0)
    new_one.since_ns = 8 * ms;
    q.push_back(old_one);
    q.push_back(new_one);
    CHECK_FALSE(signals.starving(10 * ms));
    CHECK(signals.starving(11 * ms));
    q.unlink(old_one);
    CHECK_FALSE(signals.starving(11 * ms));
    CHECK(signals.starving(18 * ms));
}

TEST_CASE("waiter queue: a waiter reaching the threshold is woken by releases again", "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter w;
    w.since_ns = 1 * ms;
    q.push_back(w);
    REQUIRE(signals.after_release(1 * ms) == OnRelease::wake_front);
    REQUIRE(q.notify_front() != nullptr);
    REQUIRE(q.begin_look(w));
    q.pass_over(w);
    REQUIRE(signals.after_release(2 * ms) == OnRelease::nothing);
    q.starving_now(w);
    CHECK_FALSE(w.passed_over);
    CHECK(w.looked_at_threshold);
    CHECK(signals.after_release(3 * ms) == OnRelease::wake_front);
}

TEST_CASE("waiter queue: a woken waiter that leaves lets the next release wake the new front", "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter a, b;
    q.push_back(a);
    q.push_back(b);
    REQUIRE(signals.after_release(0) == OnRelease::wake_front);
    REQUIRE(q.notify_front() != nullptr);
    q.unlink(a);  // timed out instead of looking
    CHECK(signals.after_release(0) == OnRelease::wake_front);
    CHECK(q.notify_front() != nullptr);
    CHECK(b.notified);
}

TEST_CASE("waiter queue: fail_all settles every waiter and empties the queue", "[waiter_queue]") {
    FrontSignals signals(10 * ms);
    WaiterQueue q(signals);
    Waiter a, b;
    q.push_back(a);
    q.push_back(b);
    q.fail_all(Waiter::Outcome::closed);
    CHECK(q.empty());
    CHECK(a.outcome.load() == Waiter::Outcome::closed);
    CHECK(b.outcome.load() == Waiter::Outcome::closed);
    // a permit goes to the front only
    Waiter c, d;
    q.push_back(c);
    q.push_back(d);
    CHECK(q.permit_front(5) != nullptr);
    CHECK(c.outcome.load() == Waiter::Outcome::permit);
    CHECK(c.slot == 5);
    CHECK(d.outcome.load() == Waiter::Outcome::waiting);
}
