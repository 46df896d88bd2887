// The circuit breaker as the pool uses it: opened by acquires or by the housekeeper's
// min_idle refill, the cooldown, the probe and what queued acquirers get meanwhile, and
// the transition history. (The breaker's first test, open / fail fast / probe / close,
// is in test_lifecycle.cpp.)
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 5000ms) {
    return pbtest::config("more", max_size, timeout);
}

}  // namespace

TEST_CASE("the housekeeper's failures open the breaker, and min_idle refill waits for the cooldown, then probes",
          "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().fail_connect = true;
    PoolConfig c = cfg(3);
    c.min_idle = 1;
    c.housekeeping_interval = 10ms;
    c.breaker_failures = 2;
    c.breaker_cooldown = 300ms;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return pool.stats().breaker == BreakerState::open; }));
    const int calls_at_open = driver->state().connect_calls;
    CHECK(calls_at_open == 2);
    // While open, an acquire that needs a connection is refused without trying.
    CHECK_THROWS_AS(pool.acquire(), poolbench::CircuitOpen);
    driver->state().fail_connect = false;
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    const auto s = pool.stats();
    CHECK(s.breaker == BreakerState::closed);
    CHECK(s.connect_failures == 2);
    REQUIRE(s.breaker_history.size() >= 3);
    const auto& h = s.breaker_history;
    CHECK(h[0].to == BreakerState::open);
    CHECK(h[1].to == BreakerState::half_open);
    CHECK(h.back().to == BreakerState::closed);
    // The housekeeper did not probe before the cooldown was over (the clock is the
    // system clock: allow it a few ms of slack).
    CHECK(h[1].at - h[0].at >= 290ms);
    CHECK(driver->state().connect_calls == calls_at_open + 1);  // exactly one probe
}

TEST_CASE("min_idle is restored after a breaker opened by acquires cools down, with no timers configured",
          "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(3);
    c.idle_timeout = 0ms;  // no lifecycle timers: the housekeeper sleeps until it is told
    c.max_lifetime = 0ms;
    c.keepalive_interval = 0ms;
    c.connect_retry.max_attempts = 1;
    c.breaker_failures = 1;
    c.breaker_cooldown = 100ms;
    c.housekeeping_interval = 20ms;
    Pool pool(driver, c);
    driver->state().fail_connect = true;
    CHECK_THROWS_AS(pool.acquire(), poolbench::ConnectError);
    REQUIRE(pool.stats().breaker == BreakerState::open);
    driver->state().fail_connect = false;
    pool.resize(3, 1);  // now the housekeeper owes one idle connection, but the breaker is open
    CHECK(pool.stats().total == 0);
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }, 3000ms));
    const auto s = pool.stats();
    CHECK(s.breaker == BreakerState::closed);
    CHECK(s.created == 1);
}

TEST_CASE("a successful probe lets the queued acquirers open connections at once", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(3);
    c.connect_retry.max_attempts = 1;
    c.breaker_failures = 1;
    c.breaker_cooldown = 50ms;
    c.max_connecting = 1;
    Pool pool(driver, c);
    Lease held = pool.acquire();
    driver->state().fail_connect = true;
    CHECK_THROWS_AS(pool.acquire(), poolbench::ConnectError);
    REQUIRE(pool.stats().breaker == BreakerState::open);
    driver->state().fail_connect = false;
    driver->state().hold_connects = true;
    const int calls = driver->state().connect_calls;
    // After the cooldown the next acquire is the probe; it blocks in connect.
    std::atomic<bool> probe_got{false};
    std::thread probe([&] {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < give_up) {
            try {
                Lease l = pool.acquire();
                probe_got = static_cast<bool>(l);
                return;
            } catch (const poolbench::CircuitOpen&) {
                std::this_thread::yield();  // cooldown not over yet
            }
        }
    });
    REQUIRE(eventually([&] { return driver->state().connect_calls == calls + 1; }));
    CHECK(pool.stats().breaker == BreakerState::half_open);
    // max_connecting = 1 is used by the probe: this acquirer queues behind it.
    std::atomic<bool> waiter_got{false};
    std::thread waiter([&] {
        Lease l = pool.acquire();
        waiter_got = static_cast<bool>(l);
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    driver->state().hold_connects = false;
    probe.join();
    waiter.join();
    CHECK(probe_got);
    CHECK(waiter_got);
    const auto s = pool.stats();
    CHECK(s.breaker == BreakerState::closed);
    CHECK(s.created == 3);  // held, the probe's and the waiter's own
    CHECK(s.timeouts == 0);
}

TEST_CASE("waiters that no lease can serve get CircuitOpen when the breaker opens", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(3, 10'000ms);
    c.connect_retry.max_attempts = 1;
    c.breaker_failures = 1;
    c.breaker_cooldown = 10'000ms;
    c.max_connecting = 1;
    Pool pool(driver, c);
    driver->state().fail_connect = true;
    driver->state().hold_connects = true;
    std::string opener_error;
    std::thread opener([&] {
        try {
            Lease l = pool.acquire();
        } catch (const poolbench::ConnectError& e) {
            opener_error = e.what();
        }
    });
    REQUIRE(eventually([&] { return driver->state().connecting == 1; }));
    std::string waiter_error;
    bool waiter_circuit = false;
    std::thread waiter([&] {
        try {
            Lease l = pool.acquire();
        } catch (const poolbench::CircuitOpen& e) {
            waiter_circuit = true;
            waiter_error = e.what();
        } catch (const std::exception& e) {
            waiter_error = e.what();
        }
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    driver->state().hold_connects = false;
    opener.join();
    waiter.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);  // not its 10 s timeout
    CHECK_THAT(opener_error, Catch::Contains("cannot open a new connection: connection refused (test)"));
    CHECK(waiter_circuit);
    CHECK_THAT(waiter_error, Catch::Contains("circuit breaker open since"));
    const auto s = pool.stats();
    CHECK(s.circuit_rejections == 1);
    CHECK(s.waiting == 0);
    CHECK(driver->state().connect_calls == 1);
}

TEST_CASE("the breaker keeps its last 32 transitions and counts them all", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().fail_connect = true;
    PoolConfig c = cfg(2);
    c.connect_retry.max_attempts = 1;
    c.breaker_failures = 1;
    c.breaker_cooldown = 1ms;
    Pool pool(driver, c);
    // Each failed probe after a cooldown is two transitions: half_open, then open again.
    REQUIRE(eventually([&] {
        try {
            Lease l = pool.acquire();
        } catch (const poolbench::ConnectError&) {
        }
        return pool.stats().breaker_transitions >= 40;
    }));
    const auto s = pool.stats();
    CHECK(s.breaker_history.size() == 32);
    CHECK(s.breaker_transitions >= 40);
    CHECK(s.breaker == BreakerState::open);
    // The oldest were dropped: what is kept alternates, ending with the latest state.
    for (std::size_t i = 1; i < s.breaker_history.size(); ++i) {
        CHECK(s.breaker_history[i].to != s.breaker_history[i - 1].to);
        CHECK(s.breaker_history[i].at >= s.breaker_history[i - 1].at);
    }
    CHECK(s.breaker_history.back().to == BreakerState::open);
}

TEST_CASE("waiters queued behind an open breaker get the probe once the cooldown ends", "[unit][review]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = pbtest::config("breaker-queue", 2, 3000ms);
    c.breaker_failures = 1;
    c.breaker_cooldown = 50ms;
    c.connect_retry.max_attempts = 1;
    Pool pool(driver, c);
    Lease l1 = pool.acquire();
    Lease l2 = pool.acquire();
    driver->state().fail_connect = true;
    std::atomic<int> w1_result{0};  // 1 got, 2 failed
    std::atomic<int> w2_result{0};
    std::thread w1([&] {
        try {
            Lease l = pool.acquire();
            w1_result = 1;
        } catch (const poolbench::Error&) {
            w1_result = 2;
        }
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    std::thread w2([&] {
        try {
            Lease l = pool.acquire();
            w2_result = 1;
        } catch (const poolbench::Error&) {
            w2_result = 2;
        }
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 2; }));
    l2.invalidate();
    l2.release();  // w1 gets a permit; its connect fails; the breaker opens with l1 still out
    REQUIRE(eventually([&] { return w1_result.load() == 2; }));
    CHECK(pool.stats().breaker == BreakerState::open);
    driver->state().fail_connect = false;  // the database is back
    l1.invalidate();
    l1.release();  // nothing leased: w2 fails fast now, or is served by the probe after the cooldown
    const auto t0 = std::chrono::steady_clock::now();
    w1.join();
    w2.join();
    // Either way w2 did not wait out its 3 s timeout, and once the cooldown is over an
    // acquire is served (the probe closes the breaker).
    CHECK(w2_result.load() != 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(eventually([&] {
        try {
            Lease after = pool.acquire(2000ms);
            return static_cast<bool>(after);
        } catch (const poolbench::CircuitOpen&) {
            return false;
        }
    }));
    CHECK(pool.stats().timeouts == 0);
    CHECK(pool.stats().breaker == BreakerState::closed);
}
