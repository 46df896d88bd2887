// Shutting a pool down and destroying it: waiters woken with PoolClosed, the grace period
// and its interrupts, connections being opened when shutdown comes, and leases that
// outlive their pool or are returned while it is being destroyed.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::DestroyReason;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 5000ms) {
    return pbtest::config("more", max_size, timeout);
}

using pbtest::destroyed;

}  // namespace

TEST_CASE("shutdown wakes 50 waiters with PoolClosed and closes everything", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2, 30'000ms));
    Lease a = pool.acquire();
    {
        Lease idle = pool.acquire();
    }
    std::atomic<int> closed{0};
    std::atomic<int> other{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 50; ++i) {
        waiters.emplace_back([&] {
            try {
                // The first waiter may take the one idle connection; hold it until shutdown.
                Lease l = pool.acquire();
                while (!pool.stats().closed) std::this_thread::yield();
            } catch (const poolbench::PoolClosed& e) {
                if (std::string(e.what()).find("shut down") != std::string::npos) closed.fetch_add(1);
            } catch (...) {
                other.fetch_add(1);
            }
        });
    }
    REQUIRE(eventually([&] { return pool.stats().waiting == 49; }));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(pool.shutdown(0ms));  // `a` is still out
    for (auto& w : waiters) w.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(closed == 49);
    CHECK(other == 0);
    CHECK_THROWS_AS(pool.acquire(), poolbench::PoolClosed);
    CHECK_THROWS_AS(pool.try_acquire(), poolbench::PoolClosed);
    CHECK(driver->state().live == 1);  // only the leased one remains
    a.release();
    CHECK(driver->state().live == 0);
    CHECK(pool.shutdown(0ms));  // idempotent, and now everything is closed
    const auto s = pool.stats();
    CHECK(s.total == 0);
    CHECK(destroyed(s, DestroyReason::shutdown) == 2);
}

TEST_CASE("shutdown grace waits for a lease and interrupts at the deadline", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2));
    Lease a = pool.acquire();
    CHECK_FALSE(pool.shutdown(20ms));
    CHECK(driver->state().interrupts == 1);
    std::thread returner([&] { a.release(); });
    CHECK(pool.shutdown(10'000ms));
    returner.join();
    CHECK(driver->state().live == 0);
}

TEST_CASE("a slow interrupt at the end of shutdown's grace does not hold the pool's lock", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2));
    Lease a = pool.acquire();
    driver->state().hold_interrupts = true;
    bool graceful = true;
    std::thread closer([&] { graceful = pool.shutdown(1ms); });
    REQUIRE(eventually([&] { return driver->state().interrupting.load() == 1; }));
    // While the interrupt is stuck, the holder can return its lease and anyone can read
    // stats: neither needs more than the pool's lock.
    std::atomic<bool> returned{false};
    std::thread holder([&] {
        a.release();
        (void)pool.stats();
        returned = true;
    });
    const bool unblocked = eventually([&] { return returned.load(); }, 5000ms);
    CHECK(driver->state().live == 1);  // the closer's copy keeps it open until interrupt() returns
    driver->state().hold_interrupts = false;
    holder.join();
    closer.join();
    CHECK(unblocked);
    CHECK_FALSE(graceful);
    CHECK(driver->state().live == 0);
    CHECK(pool.stats().total == 0);
}

TEST_CASE("a lease that outlives its pool closes its connection when returned", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Lease survivor;
    {
        Pool pool(driver, cfg(2));
        survivor = pool.acquire();
        Lease other = pool.acquire();
    }
    CHECK(driver->state().live == 1);
    CHECK(survivor->ping());
    survivor.release();
    CHECK(driver->state().live == 0);
}

TEST_CASE("shutdown while a connection is being opened: the opener gets PoolClosed, the connection is closed",
          "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2));
    driver->state().hold_connects = true;
    std::string error;
    std::thread opener([&] {
        try {
            Lease l = pool.acquire();
            error = "got a lease";
        } catch (const poolbench::PoolClosed& e) {
            error = e.what();
        }
    });
    REQUIRE(eventually([&] { return driver->state().connecting == 1; }));
    CHECK(pool.stats().pending == 1);
    CHECK(pool.shutdown(0ms) == false);  // the connection being opened still counts
    driver->state().hold_connects = false;
    opener.join();
    CHECK(error == "pool 'more' was shut down while a connection was being opened");
    const auto s = pool.stats();
    CHECK(s.total == 0);
    CHECK(s.pending == 0);
    CHECK(s.created == 1);
    CHECK(destroyed(s, DestroyReason::shutdown) == 1);
    CHECK(driver->state().live == 0);
    CHECK(driver->state().opened == 1);
}

TEST_CASE("shutdown while the housekeeper opens a min_idle connection closes it", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().hold_connects = true;
    PoolConfig c = cfg(2);
    c.min_idle = 1;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return driver->state().connecting == 1; }));
    CHECK(pool.stats().pending == 1);
    std::thread release_later([&] {
        (void)eventually([&] { return pool.stats().closed; });
        driver->state().hold_connects = false;
    });
    // Waits for the housekeeper's connection to be opened and then closed.
    CHECK(pool.shutdown(5000ms));
    release_later.join();
    const auto s = pool.stats();
    CHECK(s.total == 0);
    CHECK(s.created == 1);
    CHECK(destroyed(s, DestroyReason::shutdown) == 1);
    // The housekeeper closes the connection just after it gives the capacity back.
    CHECK(eventually([&] { return driver->state().live == 0; }));
}

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
