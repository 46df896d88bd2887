// The writer gate's turn rule (lib/src/gate_turns.hpp: bounded barging, the pool's rule)
// with the time passed in: no threads, no sleeps. Bells are only marked here, never slept
// on. Throughput is measured by scripts/bench_writes.sh, not here.
#include "gate_turns.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

using poolbench::internal::GateTurns;
using poolbench::internal::Waiter;

namespace {
constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t us = 1'000;

bool handed(const Waiter& w) { return w.outcome.load() == Waiter::Outcome::handed; }
}  // namespace

TEST_CASE("gate turns: a free turn is taken at once, and given back", "[gate_turns]") {
    GateTurns g(10 * ms);
    CHECK(g.try_take(1 * ms));
    CHECK(g.held());
    CHECK_FALSE(g.try_take(2 * ms));  // one writer at a time
    const auto wakes = g.release(3 * ms);
    CHECK(wakes == nullptr);
    CHECK_FALSE(g.held());
    CHECK(g.turns() == 1);
    CHECK(g.waits() == 0);
    CHECK(g.barges() == 0);
}

TEST_CASE("gate turns: before the threshold a running writer barges, the front is woken once, then passed over",
          "[gate_turns]") {
    GateTurns g(10 * ms);
    REQUIRE(g.try_take(100 * ms));
    Waiter w;
    g.enqueue(w, 101 * ms);
    CHECK(g.queued() == 1);
    CHECK(g.wake_by(w, 101 * ms, 5'000 * ms) == 5'000 * ms);  // not passed over: sleeps until woken or the deadline

    // The release frees the turn and wakes the front writer to compete for it.
    auto wakes = g.release(102 * ms);
    CHECK_FALSE(g.held());
    CHECK(wakes != nullptr);
    CHECK_FALSE(handed(w));
    // A running writer takes it first: barging past the queued writer.
    CHECK(g.try_take(102 * ms + 1 * us));
    CHECK(g.barges() == 1);
    // The woken writer looks, finds the turn held and is passed over ...
    CHECK_FALSE(g.look(w, 102 * ms + 50 * us));
    // ... so releases no longer wake it; it looks again by itself every T/8 until its threshold.
    wakes = g.release(103 * ms);
    CHECK(wakes == nullptr);
    CHECK(g.recheck_ns() == 1'250 * us);
    CHECK(g.wake_by(w, 102 * ms + 50 * us, 5'000 * ms) == 103 * ms + 300 * us);
    CHECK(g.wake_by(w, 110 * ms, 5'000 * ms) == 111 * ms);           // never past its threshold
    CHECK(g.wake_by(w, 102 * ms + 50 * us, 103 * ms) == 103 * ms);  // nor its deadline
    CHECK(g.try_take(104 * ms));
    CHECK(g.barges() == 2);
    CHECK(g.turns() == 3);
}

TEST_CASE("gate turns: once the front has waited the threshold, the turn is handed to it and newcomers queue",
          "[gate_turns]") {
    GateTurns g(10 * ms);
    REQUIRE(g.try_take(100 * ms));
    Waiter w;
    g.enqueue(w, 100 * ms);
    CHECK_FALSE(g.front_starving(109 * ms));
    CHECK(g.front_starving(110 * ms));

    // At the threshold a running writer may not take a free turn either.
    Waiter late;
    SECTION("the release hands the turn over; it stays held") {
        const auto wakes = g.release(110 * ms);
        CHECK(handed(w));
        CHECK(wakes != nullptr);
        CHECK(g.held());
        CHECK(g.handoffs() == 1);
        CHECK_FALSE(g.try_take(110 * ms + 1 * us));  // newcomers cannot take a handed turn
        CHECK(g.queued() == 0);
    }
    SECTION("a passed-over front looks again at its threshold and takes a free turn") {
        auto wakes = g.release(101 * ms);  // woken to compete
        CHECK(wakes != nullptr);
        REQUIRE(g.try_take(101 * ms));     // a barger wins
        CHECK_FALSE(g.look(w, 101 * ms));  // passed over
        wakes = g.release(102 * ms);       // nobody woken; the turn is free
        CHECK(wakes == nullptr);
        CHECK_FALSE(g.held());
        CHECK(g.wake_by(w, 109 * ms, 5'000 * ms) == 110 * ms);
        CHECK_FALSE(g.try_take(110 * ms));  // the front starves: a newcomer must queue
        g.enqueue(late, 110 * ms);
        CHECK(g.look(w, 110 * ms));         // woke at its threshold: the free turn is its
        CHECK(g.held());
        CHECK_FALSE(g.look(late, 110 * ms + 1 * us));
    }
}

TEST_CASE("gate turns: the starvation round serves the queue in order, then barging resumes", "[gate_turns]") {
    GateTurns g(10 * ms);
    REQUIRE(g.try_take(0 * ms + 1));
    std::vector<Waiter> ws(4);
    for (std::size_t i = 0; i < ws.size(); ++i) g.enqueue(ws[i], static_cast<std::int64_t>(1 + i) * ms);

    std::int64_t now = 20 * ms;  // everyone has waited the threshold
    for (std::size_t i = 0; i < ws.size(); ++i) {
        const auto wakes = g.release(now);
        CHECK(handed(ws[i]));
        CHECK(wakes != nullptr);
        if (i + 1 < ws.size()) CHECK_FALSE(handed(ws[i + 1]));
        CHECK_FALSE(g.try_take(now + 1));  // held by the writer just handed it
        now += 50 * us;
    }
    CHECK(g.handoffs() == 4);
    // A writer that queued during the round has not waited the threshold: barging again.
    Waiter fresh;
    g.enqueue(fresh, now);
    const auto wakes = g.release(now + 1 * ms);
    CHECK(wakes != nullptr);
    CHECK_FALSE(handed(fresh));
    CHECK_FALSE(g.held());
}

TEST_CASE("gate turns: threshold 0 is strict first come, first served", "[gate_turns]") {
    GateTurns g(0);
    REQUIRE(g.try_take(1 * ms));
    Waiter a, b;
    g.enqueue(a, 2 * ms);
    CHECK_FALSE(g.try_take(2 * ms));  // even at the same instant: nobody barges
    g.enqueue(b, 2 * ms);
    g.release(2 * ms);
    CHECK(handed(a));
    g.release(2 * ms);
    CHECK(handed(b));
    g.release(2 * ms);
    CHECK_FALSE(g.held());
    CHECK(g.barges() == 0);
    CHECK(g.handoffs() == 2);
}

TEST_CASE("gate turns: a writer that times out leaves, and a free turn wakes the new front even if passed over",
          "[gate_turns]") {
    GateTurns g(10 * ms);
    REQUIRE(g.try_take(1 * ms));
    Waiter a, b;
    g.enqueue(a, 2 * ms);
    g.enqueue(b, 3 * ms);
    SECTION("turn held: nobody to wake; order is kept") {
        CHECK(g.leave(a) == nullptr);
        CHECK(g.queued() == 1);
        g.release(20 * ms);
        CHECK(handed(b));
    }
    SECTION("turn free: the new front is rung to take it") {
        (void)g.release(4 * ms);      // wakes a to compete
        REQUIRE(g.try_take(4 * ms));  // a barger wins
        CHECK_FALSE(g.look(a, 4 * ms));
        (void)g.release(5 * ms);      // a is passed over: the turn is free and nobody is woken
        CHECK(g.leave(a) != nullptr);  // a times out: b's bell is returned, to ring after unlocking
        CHECK(b.notified);
        CHECK(g.look(b, 5 * ms));
        CHECK(g.held());
    }
}

TEST_CASE("gate turns: a passed-over front writer takes a free turn within T/8, so the writer behind it does not "
          "time out",
          "[gate_turns]") {
    // The reviewer's probe, by hand: T = 2 s; W2 queues behind W1 with a 300 ms timeout; a
    // barger passes W1 over, then releases and nobody barges again. W1 must take the free
    // turn within T/8 (not at its threshold), so W2 is served long before its deadline.
    constexpr std::int64_t threshold = 2'000 * ms;
    GateTurns g(threshold);
    REQUIRE(g.recheck_ns() == 250 * ms);
    REQUIRE(g.try_take(1'000 * ms));
    Waiter w1, w2;
    g.enqueue(w1, 1'000 * ms);
    g.enqueue(w2, 1'001 * ms);
    const std::int64_t w2_deadline = 1'301 * ms;
    REQUIRE(g.release(1'002 * ms) != nullptr);  // wakes w1 to compete
    REQUIRE(g.try_take(1'002 * ms));            // a barger wins
    REQUIRE_FALSE(g.look(w1, 1'002 * ms + 20 * us));  // w1 is passed over
    const std::int64_t w1_sleeps_until = g.wake_by(w1, 1'002 * ms + 20 * us, 1'000 * ms + 30'000 * ms);
    CHECK(w1_sleeps_until == 1'252 * ms + 20 * us);  // T/8 after it looked, not its threshold (3 s)
    const std::int64_t free_from = 1'003 * ms;
    CHECK(g.release(free_from) == nullptr);  // passed over: the release wakes nobody
    CHECK_FALSE(g.held());                  // and the turn is free from here on
    CHECK(g.wake_by(w2, 1'001 * ms, w2_deadline) == w2_deadline);  // w2 only waits to be rung
    CHECK_FALSE(g.look(w2, free_from + 1 * us));                   // not the front: it may not take the turn
    // w1 wakes by itself and takes the free turn, idle for less than T/8.
    REQUIRE(g.look(w1, w1_sleeps_until));
    CHECK(w1_sleeps_until - free_from <= g.recheck_ns());
    // Its release wakes w2 (not passed over), which takes the turn before its deadline.
    REQUIRE(g.release(w1_sleeps_until + 15 * us) != nullptr);
    CHECK(w2.notified);
    CHECK(g.look(w2, w1_sleeps_until + 80 * us));
    CHECK(w1_sleeps_until + 80 * us < w2_deadline);

    // With a short threshold the recheck is at least 100 us.
    GateTurns short_t(200 * us);
    CHECK(short_t.recheck_ns() == 100 * us);
}

TEST_CASE("gate turns: a queued writer is served within the threshold plus the turns ahead of it, whatever barges",
          "[gate_turns]") {
    // A running writer that nearly always wins the race for a free turn (the worst case for
    // the queue): every 10 us the holder releases and it takes the turn again if it may.
    // Three writers queued; a served writer does not come back. Every 2nd time a release
    // wakes the front writer, it looks before the barger does (and takes the turn); otherwise
    // it looks after (and is passed over). A passed-over writer wakes by itself at wake_by()
    // and looks. Once every 149 releases no barger comes at all: the turn stays free until
    // the front writer looks (woken, or by itself within recheck_ns()).
    constexpr std::int64_t threshold = 2 * ms;
    constexpr std::int64_t hold = 10 * us;
    constexpr std::int64_t deadline = 10'000 * ms;
    GateTurns g(threshold);
    std::vector<Waiter> ws(3);
    std::vector<std::int64_t> since(ws.size()), served(ws.size(), -1), wake_at(ws.size(), deadline);
    std::int64_t now = 1 * ms;
    REQUIRE(g.try_take(now));
    for (std::size_t i = 0; i < ws.size(); ++i) {
        since[i] = now + static_cast<std::int64_t>(i) * us;
        g.enqueue(ws[i], since[i]);
        wake_at[i] = g.wake_by(ws[i], since[i], deadline);
    }
    auto unserved = [&] { return std::count(served.begin(), served.end(), -1); };
    // Queued writer i looks at `at` (woken, or by itself); true if it took the turn.
    int looks = 0, looks_taken = 0, self_wakes = 0;
    std::int64_t longest_idle = 0;
    auto look = [&](std::size_t i, std::int64_t at) {
        ++looks;
        if (g.look(ws[i], at)) {
            served[i] = at;
            ++looks_taken;
            return true;
        }
        wake_at[i] = g.wake_by(ws[i], at, deadline);
        return false;
    };
    int step = 0, woken_count = 0;
    for (; step < 10'000 && unserved() > 0; ++step) {
        // Passed-over writers whose own wake-up is due look now (the turn is held).
        for (std::size_t i = 0; i < ws.size(); ++i) {
            if (served[i] < 0 && wake_at[i] <= now) {
                ++self_wakes;
                look(i, now);
            }
        }
        now += hold;
        const std::uint32_t* const bell = g.release(now);
        bool taken = false;
        for (std::size_t i = 0; i < ws.size() && !taken; ++i) {
            if (served[i] < 0 && handed(ws[i])) {
                served[i] = now;
                taken = true;
            }
        }
        if (taken) continue;
        // The woken front writer (if any) is the first unserved one.
        const auto front = static_cast<std::size_t>(std::find(served.begin(), served.end(), -1) - served.begin());
        const bool woken = bell != nullptr;
        if (woken && ++woken_count % 2 == 0 && look(front, now + 1 * us)) continue;  // it won the race
        const bool barger = step % 149 != 148;
        if (barger && g.try_take(now)) {
            if (woken && ws[front].notified) look(front, now + 3 * us);  // lost the race: passed over
            continue;
        }
        if (barger) FAIL("a running writer could not take a free turn that was not handed over");
        // No barger: the turn is free. The woken front looks at once; a passed-over one at its wake_by().
        const std::int64_t free_from = now;
        // (A self-wake that fell due while the turn was still held looked then and found it held.)
        const std::int64_t at = woken ? now + 3 * us : std::max(now, wake_at[front]);
        REQUIRE(look(front, at));
        longest_idle = std::max(longest_idle, at - free_from);
        now = at;
    }
    INFO("steps " << step << ", looks " << looks << " (took the turn: " << looks_taken << "), self wakes "
                  << self_wakes << ", longest idle free turn " << longest_idle << " ns");
    REQUIRE(unserved() == 0);
    for (std::size_t i = 0; i < ws.size(); ++i) {
        INFO("writer " << i << " queued at " << since[i] << ", served at " << served[i]);
        CHECK(served[i] - since[i] <= threshold + static_cast<std::int64_t>(i + 1) * (hold + g.recheck_ns()));
        if (i > 0) CHECK(served[i] > served[i - 1]);  // in arrival order
    }
    CHECK(g.barges() > 50);
    CHECK(looks_taken >= 2);  // the look branch runs and takes the turn (woken, and by itself)
    CHECK(self_wakes > 0);    // passed-over writers wake by themselves and look
    CHECK(longest_idle <= g.recheck_ns());
}
