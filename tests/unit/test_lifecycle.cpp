// Lifecycle and resilience against the counting test driver: retries, circuit breaker,
// max_waiting, max_connecting, idle/lifetime/keepalive housekeeping, overflow, resize,
// suspend/resume (and its edge cases), evict_all, and suspect validation after a dead connection.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::DestroyReason;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::hold_for;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 2000ms) {
    return pbtest::config("life", max_size, timeout);
}

using pbtest::destroyed;

bool try_get(Pool& pool) {
    try {
        Lease l = pool.acquire();
        return true;
    } catch (const poolbench::ConnectError&) {  // CircuitOpen, or a probe that failed
        return false;
    }
}

}  // namespace

TEST_CASE("connection opening retries with backoff within one acquire", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.connect_retry.max_attempts = 3;
    Pool pool(driver, c);
    driver->state().fail_next_connects = 2;
    Lease l = pool.acquire();
    CHECK(l);
    const auto s = pool.stats();
    CHECK(s.connect_failures == 2);
    CHECK(s.created == 1);
    CHECK(driver->state().connect_calls == 3);
}

TEST_CASE("the circuit breaker opens, fails fast, probes, and closes", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(4);
    c.connect_retry.max_attempts = 1;
    c.breaker_failures = 3;
    c.breaker_cooldown = 150ms;
    Pool pool(driver, c);
    driver->state().fail_connect = true;
    for (int i = 0; i < 2; ++i) CHECK_THROWS_AS(pool.acquire(), poolbench::ConnectError);
    CHECK(pool.stats().breaker == BreakerState::closed);
    // The third failure opens it; that acquire (which did try) says so.
    CHECK_THROWS_WITH(pool.acquire(), Catch::Contains("connection refused (test); circuit breaker open since"));
    CHECK(pool.stats().breaker == BreakerState::open);
    const int calls = driver->state().connect_calls;
    std::chrono::nanoseconds worst{0};
    std::string message;
    for (int i = 0; i < 100; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        try {
            Lease l = pool.acquire();
        } catch (const poolbench::CircuitOpen& e) {
            message = e.what();
        }
        worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    INFO("worst fail-fast acquire: " << worst.count() << " ns");
    CHECK(worst < 20ms);  // typically a few microseconds; generous for sanitizer builds
    CHECK(driver->state().connect_calls == calls);  // no connection attempts while open
    CHECK_THAT(message, Catch::Contains("circuit breaker open since"));
    CHECK_THAT(message, Catch::Contains("fail at once until"));
    CHECK_THAT(message, Catch::Contains("connection refused"));
    CHECK(pool.stats().circuit_rejections >= 100);

    // After the cooldown one probe goes through; it fails, and the breaker opens again.
    REQUIRE(eventually([&] { return driver->state().connect_calls > calls || (try_get(pool), false); }));
    CHECK(pool.stats().breaker == BreakerState::open);
    // The database comes back: the next probe succeeds and closes the breaker.
    driver->state().fail_connect = false;
    REQUIRE(eventually([&] { return try_get(pool); }));
    const auto s = pool.stats();
    CHECK(s.breaker == BreakerState::closed);
    REQUIRE(s.breaker_history.size() >= 5);
    const auto& h = s.breaker_history;
    CHECK(h[0].to == BreakerState::open);
    CHECK(h[1].to == BreakerState::half_open);
    CHECK(h[2].to == BreakerState::open);
    CHECK(h[h.size() - 1].to == BreakerState::closed);
    CHECK(s.breaker_transitions == h.size());
}

TEST_CASE("max_waiting sheds load at once", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(1, 10'000ms);
    c.max_waiting = 2;
    Pool pool(driver, c);
    Lease held = pool.acquire();
    std::vector<std::thread> waiters;
    for (int i = 0; i < 2; ++i) waiters.emplace_back([&] { Lease l = pool.acquire(); });
    REQUIRE(eventually([&] { return pool.stats().waiting == 2; }));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(pool.acquire(), Catch::Contains("too many threads waiting"));
    CHECK(std::chrono::steady_clock::now() - t0 < 100ms);
    CHECK(pool.stats().overloaded == 1);
    held.release();
    for (auto& w : waiters) w.join();
}

TEST_CASE("at most max_connecting connections are opened at once", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(10, 20'000ms);
    c.max_connecting = 2;
    Pool pool(driver, c);
    driver->state().hold_connects = true;
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&] {
            Lease l = pool.acquire();
            ok.fetch_add(1);
            while (ok.load() < 8) std::this_thread::yield();  // all eight hold one at once
        });
    REQUIRE(eventually([&] { return driver->state().connecting == 2 && pool.stats().waiting == 6; }));
    driver->state().hold_connects = false;
    for (auto& t : ts) t.join();
    CHECK(ok == 8);
    CHECK(driver->state().peak_connecting == 2);
    CHECK(pool.stats().created == 8);
}

TEST_CASE("idle connections past idle_timeout close down to min_idle", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(4);
    c.min_idle = 1;
    c.idle_timeout = 60ms;
    c.housekeeping_interval = 20ms;
    Pool pool(driver, c);
    {
        Lease a = pool.acquire();
        Lease b = pool.acquire();
        Lease d = pool.acquire();
    }
    REQUIRE(eventually([&] { return pool.stats().total == 1; }));
    const auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::idle) >= 2);
    CHECK(s.idle == 1);
    CHECK(driver->state().live == 1);
}

TEST_CASE("max_lifetime rotates idle connections and never closes one under its user", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.min_idle = 1;
    c.max_lifetime = 80ms;
    c.max_lifetime_jitter = 0.0;
    c.idle_timeout = 0ms;
    c.housekeeping_interval = 20ms;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    Lease held = pool.acquire();
    const int first = pbtest::conn_id(held);
    // Held past its lifetime: still usable, still the same connection.
    pbtest::hold_for(120ms);
    CHECK(driver->state().live == 1);
    CHECK(held->ping());
    CHECK(pbtest::conn_id(held) == first);
    held.release();  // closed on return, being past its lifetime
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::lifetime) >= 1; }));
    // ...and the idle replacement rotates too while nobody uses it.
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::lifetime) >= 2; }));
    REQUIRE(eventually([&] { return pool.stats().idle >= 1; }));
    Lease again = pool.acquire();
    CHECK(pbtest::conn_id(again) != first);
}

TEST_CASE("keepalive pings idle connections and replaces dead ones", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.min_idle = 1;
    c.keepalive_interval = 30ms;
    c.housekeeping_interval = 10ms;
    c.validation_interval = 60'000ms;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return driver->state().pings >= 2; }));
    CHECK(pool.stats().idle == 1);
    driver->state().fail_ping = true;
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::validation) >= 1; }));
    driver->state().fail_ping = false;
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    CHECK(pool.stats().reconnects >= 1);
}

TEST_CASE("overflow above core_size closes on return", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(4);
    c.core_size = 2;
    Pool pool(driver, c);
    {
        std::vector<Lease> all;
        for (int i = 0; i < 4; ++i) all.push_back(pool.acquire());
        const auto s = pool.stats();
        CHECK(s.total == 4);
        CHECK(s.overflow_active == 2);
    }
    const auto s = pool.stats();
    CHECK(s.total == 2);
    CHECK(s.idle == 2);
    CHECK(destroyed(s, DestroyReason::surplus) == 2);
}

TEST_CASE("resize grows for waiters at once and shrinks surplus", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(1, 10'000ms);
    c.max_size_limit = 4;
    Pool pool(driver, c);
    Lease a = pool.acquire();
    bool got = false;
    std::thread waiter([&] {
        Lease l = pool.acquire();
        got = static_cast<bool>(l);
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    pool.resize(3, 0);
    waiter.join();
    CHECK(got);
    CHECK(pool.stats().max_size == 3);
    a.release();
    CHECK(pool.stats().idle == 2);
    pool.resize(1, 0);
    auto s = pool.stats();
    CHECK(s.total == 1);
    CHECK(destroyed(s, DestroyReason::surplus) == 1);
    CHECK_THROWS_WITH(pool.resize(5, 0), Catch::Contains("max_size_limit (4)"));
    CHECK_THROWS_AS(pool.resize(0, 0), poolbench::ConfigError);
    CHECK_THROWS_AS(pool.resize(2, 3), poolbench::ConfigError);
}

TEST_CASE("suspend queues acquirers, and resume serves them", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2, 10'000ms));
    {
        Lease warm = pool.acquire();
    }
    pool.suspend();
    CHECK(pool.stats().suspended);
    CHECK_THROWS_AS(pool.acquire(30ms), poolbench::PoolTimeout);  // an idle connection exists
    bool got = false;
    std::thread waiter([&] {
        Lease l = pool.acquire();
        got = static_cast<bool>(l);
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    pool.resume();
    waiter.join();
    CHECK(got);
    CHECK_FALSE(pool.stats().suspended);
}

TEST_CASE("evict_all closes idle now and leased on return", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(3));
    Lease held = pool.acquire();
    {
        Lease a = pool.acquire();
        Lease b = pool.acquire();
    }
    pool.evict_all();
    CHECK(driver->state().live == 1);
    CHECK(held->ping());
    held.release();
    CHECK(driver->state().live == 0);
    CHECK(destroyed(pool.stats(), DestroyReason::evicted) == 3);
    Lease fresh = pool.acquire();
    held = std::move(fresh);
    CHECK(pool.stats().created == 4);
}

TEST_CASE("a dead connection makes the older idle ones suspect", "[unit][lifecycle]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(3);
    c.validation_interval = 60'000ms;  // no routine pings
    Pool pool(driver, c);
    {
        Lease a = pool.acquire();
        Lease b = pool.acquire();
        Lease d = pool.acquire();
        CHECK_THROWS_AS(d->execute("BREAK"), poolbench::QueryError);
    }
    CHECK(driver->state().pings == 0);
    {
        Lease x = pool.acquire();  // suspect: pinged before hand-out
        CHECK(driver->state().pings == 1);
    }
    {
        Lease y = pool.acquire();  // same connection, now cleared
        CHECK(driver->state().pings == 1);
    }
    auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::broken) == 1);
    {
        Lease a = pool.acquire();
        Lease b = pool.acquire();
        Lease d = pool.acquire();  // replaces the broken one
    }
    CHECK(pool.stats().reconnects == 1);
}

TEST_CASE("suspend and resume edge cases", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.housekeeping_interval = 10ms;
    Pool pool(driver, c);

    SECTION("resume when not suspended changes nothing") {
        pool.resume();
        CHECK_FALSE(pool.stats().suspended);
        Lease l = pool.acquire();
        CHECK(l);
    }
    SECTION("suspending twice needs one resume") {
        pool.suspend();
        pool.suspend();
        CHECK(pool.stats().suspended);
        CHECK_FALSE(pool.try_acquire().has_value());
        pool.resume();
        CHECK_FALSE(pool.stats().suspended);
        auto l = pool.try_acquire();
        REQUIRE(l.has_value());
        CHECK(*l);
    }
    SECTION("suspend after shutdown is a no-op") {
        pool.shutdown();
        pool.suspend();
        CHECK_FALSE(pool.stats().suspended);
        CHECK(pool.stats().closed);
        CHECK_THROWS_AS(pool.acquire(), poolbench::PoolClosed);
    }
    SECTION("resume gives a queued acquirer a new connection when none is idle") {
        pool.suspend();
        std::atomic<bool> got{false};
        std::thread waiter([&] {
            Lease l = pool.acquire();
            got = static_cast<bool>(l);
        });
        REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
        CHECK(driver->state().connect_calls == 0);
        pool.resume();
        waiter.join();
        CHECK(got);
        CHECK(pool.stats().created == 1);
        CHECK(pool.stats().misses == 1);
    }
    SECTION("the housekeeper opens nothing while suspended and tops up min_idle after resume") {
        pool.suspend();
        pool.resize(2, 1);
        hold_for(80ms);  // several housekeeping intervals while suspended
        CHECK(driver->state().connect_calls == 0);
        CHECK(pool.stats().total == 0);
        pool.resume();
        REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
        CHECK(driver->state().connect_calls == 1);
    }
}
