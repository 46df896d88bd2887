// Regressions found by a second review of pool.cpp's concurrency.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::TestDriver;

TEST_CASE("a lease returned while its Pool is being destroyed is never a use-after-free", "[unit][review]") {
    // The releasing thread publishes its slot idle, shutdown sweeps it, and ~Pool must not
    // free the core while that thread is still inside release(). Run under TSan/ASan.
    auto driver = std::make_shared<TestDriver>();
    for (int i = 0; i < 300; ++i) {
        auto* pool = new Pool(driver, pbtest::config("race", 2, 2000ms));
        Lease lease = pool->acquire();
        std::atomic<int> go{0};
        std::thread releaser([&] {
            go = 1;
            while (go.load() != 2) std::this_thread::yield();
            lease.release();
        });
        while (go.load() != 1) std::this_thread::yield();
        go = 2;
        delete pool;
        releaser.join();
    }
    CHECK(driver->state().live == 0);
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

TEST_CASE("capacity freed while a waiter is queued is offered to it", "[unit][review]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, pbtest::config("freed", 1, 5000ms));
    {
        Lease warm = pool.acquire();
    }
    pool.suspend();  // the idle connection stays idle while a waiter queues
    std::atomic<bool> got{false};
    std::thread w([&] {
        Lease l = pool.acquire();
        got = static_cast<bool>(l);
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    pool.evict_all();  // closes the idle connection: capacity, not a connection, comes free
    CHECK(pool.stats().total == 0);
    pool.resume();
    w.join();
    CHECK(got);
    CHECK(pool.stats().timeouts == 0);
}
