// Waiting for a connection: timeouts and what their message says, first come first
// served, the starvation rule, waiters leaving the queue, and capacity handed to the
// front waiter.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 2000ms) {
    return pbtest::config("test", max_size, timeout);
}

}  // namespace

TEST_CASE("an exhausted pool times out within 50 ms of its timeout and says why", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2));
    Lease a = pool.acquire();
    Lease b = pool.acquire();
    for (auto timeout : {100ms, 300ms}) {
        const auto t0 = std::chrono::steady_clock::now();
        std::string message;
        try {
            Lease c = pool.acquire(timeout);
        } catch (const poolbench::PoolTimeout& e) {
            message = e.what();
            CHECK(e.in_use() == 2);
            CHECK(e.max_size() == 2);
            CHECK(e.waited() >= timeout);
        }
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(took >= timeout);
        CHECK(took < timeout + 50ms);
        CHECK_THAT(message, Catch::Contains("pool 'test': timed out after"));
        CHECK_THAT(message, Catch::Contains("2/2 in use"));
        CHECK_THAT(message, Catch::Contains("waiting for a connection"));
    }
    CHECK(pool.stats().timeouts == 2);
    CHECK(pool.stats().waiting == 0);
}

TEST_CASE("a timeout's message accounts for every connection: connections being opened are named", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1, 10'000ms));
    driver->state().hold_connects = true;  // the one connection stays "being opened"
    std::thread opener([&] {
        try {
            Lease a = pool.acquire(5'000ms);
        } catch (const poolbench::Error&) {  // NOLINT(bugprone-empty-catch): only its connect matters here
        }
    });
    // A condition, polled with a bound: the opener is inside connect().
    for (int i = 0; i < 1000 && driver->state().connecting.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    REQUIRE(driver->state().connecting.load() == 1);
    std::string message;
    try {
        Lease b = pool.acquire(50ms);
    } catch (const poolbench::PoolTimeout& e) {
        message = e.what();
    }
    driver->state().hold_connects = false;
    opener.join();
    CHECK_THAT(message, Catch::Contains("0/1 in use, 0 idle, 1 being opened, 0 waiting"));
}

TEST_CASE("waiters are served in arrival order", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1, 10'000ms));
    Lease held = pool.acquire();
    constexpr int n = 12;
    std::mutex mu;
    std::vector<int> order;
    std::vector<std::thread> waiters;
    for (int i = 0; i < n; ++i) {
        waiters.emplace_back([&, i] {
            Lease l = pool.acquire();
            std::lock_guard lk(mu);
            order.push_back(i);
        });
        // Start the next waiter only once this one is queued, so arrival order is known.
        REQUIRE(eventually([&] { return pool.stats().waiting == static_cast<std::size_t>(i + 1); }));
    }
    // Newcomers must queue behind the waiters, not barge ahead of them.
    CHECK_FALSE(pool.try_acquire().has_value());
    held.release();
    for (auto& w : waiters) w.join();
    std::vector<int> expected(n);
    for (int i = 0; i < n; ++i) expected[static_cast<std::size_t>(i)] = i;
    CHECK(order == expected);
    CHECK(pool.stats().waits == n);
    CHECK(driver->state().opened == 1);
}

TEST_CASE("a destroyed connection hands its capacity to the front waiter", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1, 10'000ms));
    Lease a = pool.acquire();
    const int first = pbtest::conn_id(a);
    int got = -1;
    std::thread waiter([&] {
        Lease l = pool.acquire();
        got = pbtest::conn_id(l);
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    a.invalidate();
    a.release();
    waiter.join();
    CHECK(got != first);
    CHECK(got >= 0);
    CHECK(pool.stats().misses == 2);
}

TEST_CASE("no starvation: a waiter gets a connection from a thread that keeps re-acquiring it", "[unit]") {
    for (auto threshold : {std::chrono::microseconds{1'000}, std::chrono::microseconds{0}}) {
        auto driver = std::make_shared<TestDriver>();
        PoolConfig c = cfg(1, 5'000ms);
        c.starvation_threshold = threshold;
        Pool pool(driver, c);
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> barger_cycles{0};
        // The barger holds no lease between cycles for only a few instructions: without the
        // starvation rule a woken waiter would almost never find the connection idle.
        std::thread barger([&] {
            const auto until = std::chrono::steady_clock::now() + 20s;  // bounded even if the test fails
            while (!stop.load() && std::chrono::steady_clock::now() < until) {
                Lease l = pool.acquire();
                barger_cycles.fetch_add(1);
            }
        });
        REQUIRE(eventually([&] { return barger_cycles.load() > 1000; }));
        std::chrono::nanoseconds worst{0};
        int served = 0;
        for (int i = 0; i < 20; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            try {
                Lease l = pool.acquire();
                ++served;
            } catch (const poolbench::PoolTimeout&) {
            }
            worst = std::max(worst, std::chrono::steady_clock::now() - t0);
        }
        stop = true;
        barger.join();
        INFO("threshold " << threshold.count() << " us, worst wait " << worst.count() / 1000 << " us");
        CHECK(served == 20);
        CHECK(worst < 1s);
        CHECK(pool.stats().timeouts == 0);
    }
}

TEST_CASE("a waiter leaving the middle of the queue keeps the others in order", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    Lease held = pool.acquire();
    std::mutex m;
    std::vector<int> served;
    std::atomic<bool> middle_timed_out{false};
    std::atomic<std::size_t> waiting_at_timeout{0};
    auto serve = [&](int who) {
        Lease l = pool.acquire(10'000ms);
        std::lock_guard g(m);
        served.push_back(who);
    };
    std::thread first(serve, 1);
    REQUIRE(eventually([&] { return pool.stats().waiting == 1; }));
    std::thread middle([&] {
        try {
            Lease l = pool.acquire(500ms);  // long enough for the last one to queue behind it
        } catch (const poolbench::PoolTimeout& e) {
            middle_timed_out = true;
            waiting_at_timeout = e.waiting();
        }
    });
    REQUIRE(eventually([&] { return pool.stats().waiting == 2; }));
    std::thread last(serve, 3);
    REQUIRE(eventually([&] { return pool.stats().waiting == 3; }));
    middle.join();  // times out from the middle of the queue
    CHECK(middle_timed_out);
    CHECK(waiting_at_timeout == 2);  // the two others still queue
    CHECK(pool.stats().waiting == 2);
    std::thread tail_leaver([&] {
        try {
            Lease l = pool.acquire(50ms);
        } catch (const poolbench::PoolTimeout&) {
        }
    });
    tail_leaver.join();  // times out from the tail
    CHECK(pool.stats().waiting == 2);
    CHECK(pool.stats().timeouts == 2);
    held.release();
    first.join();
    last.join();
    REQUIRE(served.size() == 2);
    CHECK(served[0] == 1);
    CHECK(served[1] == 3);
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
