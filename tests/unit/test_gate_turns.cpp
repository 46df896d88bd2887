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
    CHECK(g.wake_by(w, 5'000 * ms) == 5'000 * ms);  // not passed over: sleeps until woken or the deadline

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
    // ... so releases no longer wake it, and it sleeps until its threshold.
    wakes = g.release(103 * ms);
    CHECK(wakes == nullptr);
    CHECK(g.wake_by(w, 5'000 * ms) == 111 * ms);
    CHECK(g.wake_by(w, 105 * ms) == 105 * ms);  // never past its deadline
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
        CHECK(g.wake_by(w, 5'000 * ms) == 110 * ms);
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
        g.leave(a);
        CHECK(g.queued() == 1);
        g.release(20 * ms);
        CHECK(handed(b));
    }
    SECTION("turn free: the new front is rung to take it") {
        (void)g.release(4 * ms);      // wakes a to compete
        REQUIRE(g.try_take(4 * ms));  // a barger wins
        CHECK_FALSE(g.look(a, 4 * ms));
        (void)g.release(5 * ms);      // a is passed over: the turn is free and nobody is woken
        g.leave(a);                   // a times out: b is rung at once
        CHECK(b.notified);
        CHECK(g.look(b, 5 * ms));
        CHECK(g.held());
    }
}

TEST_CASE("gate turns: a queued writer is served within the threshold plus the turns ahead of it, whatever barges",
          "[gate_turns]") {
    // A running writer that always wins the race for a free turn (the worst case for the
    // queue): every 10 us the holder releases and it takes the turn again if it may. Three
    // writers queued; a served writer does not come back.
    constexpr std::int64_t threshold = 2 * ms;
    constexpr std::int64_t hold = 10 * us;
    GateTurns g(threshold);
    std::vector<Waiter> ws(3);
    std::vector<std::int64_t> since(ws.size()), served(ws.size(), -1);
    std::int64_t now = 1 * ms;
    REQUIRE(g.try_take(now));
    for (std::size_t i = 0; i < ws.size(); ++i) {
        since[i] = now + static_cast<std::int64_t>(i) * us;
        g.enqueue(ws[i], since[i]);
    }
    auto unserved = [&] { return std::count(served.begin(), served.end(), -1); };
    for (int step = 0; step < 10'000 && unserved() > 0; ++step) {
        now += hold;
        (void)g.release(now);
        bool taken = false;
        for (std::size_t i = 0; i < ws.size() && !taken; ++i) {
            if (served[i] < 0 && handed(ws[i])) {
                served[i] = now;
                taken = true;
            }
        }
        if (taken || g.try_take(now)) continue;  // handed, or the running writer barged
        // The turn is free and nobody may barge: the front writer looks (woken, or at its threshold).
        for (std::size_t i = 0; i < ws.size() && !taken; ++i) {
            if (served[i] < 0 && g.look(ws[i], now)) {
                served[i] = now;
                taken = true;
            }
        }
        REQUIRE(taken);
    }
    REQUIRE(unserved() == 0);
    for (std::size_t i = 0; i < ws.size(); ++i) {
        INFO("writer " << i << " queued at " << since[i] << ", served at " << served[i]);
        CHECK(served[i] - since[i] <= threshold + static_cast<std::int64_t>(i + 1) * hold);
        if (i > 0) CHECK(served[i] > served[i - 1]);  // in arrival order
    }
    CHECK(g.barges() > 100);
    CHECK(g.handoffs() == 3);
}
