// Pool behaviour against the counting test driver: counters, leases, the connection cap
// under load, validation, reset on release, replacing broken connections, min_idle and
// idle order. Each documented thread-safety and fairness guarantee in pool.hpp has a
// named test here or in test_pool_waiting.cpp (waiting, fairness, timeouts) and
// test_pool_shutdown.cpp (shutdown and destruction).
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <barrier>
#include <mutex>
#include <set>
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

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 2000ms) {
    return pbtest::config("test", max_size, timeout);
}

using pbtest::destroyed;

}  // namespace

// The accessors are &-qualified: `pool.acquire()->execute()` must not compile.
template <class L>
concept can_arrow = requires(L&& l) { std::forward<L>(l).operator->(); };
template <class L>
concept can_deref = requires(L&& l) { *std::forward<L>(l); };
static_assert(!can_arrow<Lease> && !can_deref<Lease>);  // a temporary lease
static_assert(can_arrow<Lease&> && can_deref<Lease&>);  // a named lease
static_assert(!std::is_copy_constructible_v<Lease> && std::is_nothrow_move_constructible_v<Lease>);

TEST_CASE("config validation names the field and the fix", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    auto bad = [&](PoolConfig c) -> std::string {
        try {
            Pool p(driver, c);
        } catch (const poolbench::ConfigError& e) {
            return e.what();
        }
        return "no error";
    };
    PoolConfig c = cfg(0);
    CHECK_THAT(bad(c), Catch::Contains("max_size is 0"));
    c = cfg(4);
    c.min_idle = 5;
    CHECK_THAT(bad(c), Catch::Contains("min_idle 5 is above max_size 4"));
    c = cfg(4, -1ms);
    CHECK_THAT(bad(c), Catch::Contains("acquire_timeout is negative"));
    c = cfg(4);
    c.validation_interval = -5ms;
    CHECK_THAT(bad(c), Catch::Contains("validation_interval is negative"));
    c = cfg(4);
    c.housekeeping_interval = 0ms;
    CHECK_THAT(bad(c), Catch::Contains("housekeeping_interval"));
    c = cfg(200'000);
    CHECK_THAT(bad(c), Catch::Contains("above the limit"));
    CHECK_THROWS_AS(Pool(nullptr, cfg(1)), poolbench::ConfigError);
    CHECK(driver->state().opened == 0);
}

TEST_CASE("counters after every step, and the limit case", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(2, 50ms));
    auto s = pool.stats();
    CHECK(s.total == 0);
    CHECK(s.idle == 0);
    CHECK(s.active == 0);
    {
        Lease a = pool.acquire();
        s = pool.stats();
        CHECK(s.total == 1);
        CHECK(s.active == 1);
        CHECK(s.misses == 1);
        CHECK(s.hits == 0);
        Lease b = pool.acquire();
        s = pool.stats();
        CHECK(s.total == 2);
        CHECK(s.active == 2);
        CHECK(s.idle == 0);
        CHECK_FALSE(pool.try_acquire().has_value());
        CHECK_THROWS_AS(pool.acquire(0ms), poolbench::PoolTimeout);
        CHECK(pool.stats().timeouts == 1);
        CHECK(driver->state().live == 2);
    }
    s = pool.stats();
    CHECK(s.total == 2);
    CHECK(s.idle == 2);
    CHECK(s.active == 0);
    {
        auto c = pool.try_acquire();
        REQUIRE(c.has_value());
        CHECK(pool.stats().hits == 1);
    }
    s = pool.stats();
    CHECK(s.acquires == s.hits + s.misses);
    CHECK(s.created - s.destroyed == s.total);
    CHECK(s.peak_total == 2);
    CHECK(s.peak_active == 2);
    CHECK(s.usage.count() == 3);
    CHECK(s.acquire_wait.count() == 3);
    CHECK(s.connect.count() == 2);
}

TEST_CASE("a connection returned is reused by the same thread", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(4));
    int first = 0;
    {
        Lease l = pool.acquire();
        first = pbtest::conn_id(l);
    }
    for (int i = 0; i < 100; ++i) {
        Lease l = pool.acquire();
        CHECK(pbtest::conn_id(l) == first);
    }
    CHECK(driver->state().opened == 1);
    CHECK(pool.stats().hits == 100);
}

TEST_CASE("a lease says when it was handed out on steady_clock's time line", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    // The pool's clock agrees with steady_clock to within microseconds (fast_clock.hpp).
    const auto before = std::chrono::steady_clock::now() - 1ms;
    Lease a = pool.acquire();
    const auto after = std::chrono::steady_clock::now() + 1ms;
    CHECK(a.acquired_at() >= before);
    CHECK(a.acquired_at() <= after);
    const auto first = a.acquired_at();
    Lease moved = std::move(a);
    CHECK(moved.acquired_at() == first);
    CHECK(Lease{}.acquired_at() == std::chrono::steady_clock::time_point{});
}

TEST_CASE("empty and moved-from leases", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    Lease a = pool.acquire();
    Lease b = std::move(a);
    CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): documented moved-from state
    CHECK(b);
    CHECK_THROWS_AS(a.connection(), poolbench::UsageError);
    CHECK_THROWS_WITH(a->ping(), Catch::Contains("lease is empty"));
    b.release();
    b.release();  // idempotent
    CHECK_FALSE(b);
    CHECK(pool.stats().idle == 1);
    Lease c = pool.acquire();
    Lease d;
    d = std::move(c);  // move-assign into an empty lease
    CHECK(pool.stats().active == 1);
    d = Lease{};  // move-assign an empty lease releases what d held
    CHECK(pool.stats().active == 0);
    CHECK(pool.stats().idle == 1);
}

TEST_CASE("100 threads x 1000 ops on a pool of 10 never exceed 10 connections", "[unit][stress]") {
    // The default (running threads may barge) and strict hand-off, where every release
    // goes to a sleeping waiter that takes it without the pool's lock.
    const auto threshold = GENERATE(std::chrono::microseconds{10'000}, std::chrono::microseconds{0});
    INFO("starvation_threshold " << threshold.count() << " us");
    auto driver = std::make_shared<TestDriver>();
    PoolConfig config = cfg(10, 30'000ms);
    config.starvation_threshold = threshold;
    Pool pool(driver, config);
    // No connection is ever leased to two threads at once.
    std::mutex held_mu;
    std::set<const poolbench::Connection*> held;
    std::atomic<int> double_leases{0};
    constexpr int threads = 100;
    constexpr int ops = 1000;
    std::atomic<bool> done{false};
    std::atomic<int> errors{0};
    std::atomic<std::size_t> max_seen_total{0};
    std::atomic<std::size_t> max_seen_active{0};
    // A watcher checks the invariant while the load runs, not only at the end.
    std::thread watcher([&] {
        while (!done.load()) {
            const auto s = pool.stats();
            max_seen_total = std::max(max_seen_total.load(), s.total);
            max_seen_active = std::max(max_seen_active.load(), s.active);
            if (s.total > 10 || s.active > 10 || driver->state().live > 10) errors.fetch_add(1000000);
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            for (int i = 0; i < ops; ++i) {
                try {
                    Lease l = pool.acquire();
                    const poolbench::Connection* conn = &*l;
                    {
                        std::lock_guard g(held_mu);
                        if (!held.insert(conn).second) double_leases.fetch_add(1);
                    }
                    l->execute("SELECT 1");
                    std::this_thread::yield();  // let others queue behind this lease
                    std::lock_guard g(held_mu);
                    held.erase(conn);
                } catch (const std::exception&) {
                    errors.fetch_add(1);
                }
            }
        });
    }
    for (auto& w : workers) w.join();
    done = true;
    watcher.join();
    const auto s = pool.stats();
    CHECK(errors == 0);
    CHECK(double_leases == 0);
    CHECK(driver->state().peak_live <= 10);
    CHECK(s.peak_total <= 10);
    CHECK(max_seen_total <= 10);
    CHECK(s.active == 0);
    CHECK(s.acquires == threads * ops);
    CHECK(s.hits + s.misses == threads * ops);
    CHECK(s.usage.count() == threads * ops);
    CHECK(s.created - s.destroyed == s.total);
    CHECK(s.timeouts == 0);
}

TEST_CASE("a broken or invalidated connection is destroyed and replaced", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    int first = 0;
    {
        Lease l = pool.acquire();
        first = pbtest::conn_id(l);
        CHECK_THROWS_AS(l->execute("BREAK"), poolbench::QueryError);
        CHECK(l->is_broken());
    }
    auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::broken) == 1);
    CHECK(s.total == 0);
    int second = 0;
    {
        Lease l = pool.acquire();
        second = pbtest::conn_id(l);
        CHECK(second != first);
        l.invalidate();
    }
    {
        Lease l = pool.acquire();
        CHECK(pbtest::conn_id(l) != second);
    }
    s = pool.stats();
    CHECK(destroyed(s, DestroyReason::broken) == 2);
    CHECK(s.created == 3);
    CHECK(driver->state().live == 1);
}

TEST_CASE("validation on borrow replaces a dead idle connection within the same call", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.validation_interval = 0ms;  // ping on every borrow
    Pool pool(driver, c);
    {
        Lease l = pool.acquire();  // new: not pinged
    }
    CHECK(driver->state().pings == 0);
    {
        Lease l = pool.acquire();
    }
    CHECK(driver->state().pings == 1);
    driver->state().fail_ping = true;
    {
        Lease l = pool.acquire();  // idle one fails its ping, a new one is opened
        CHECK(l);
    }
    const auto s = pool.stats();
    CHECK(s.validation_failures == 1);
    CHECK(destroyed(s, DestroyReason::validation) == 1);
    CHECK(s.created == 2);
}

TEST_CASE("recently used connections skip validation", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(1);
    c.validation_interval = 60'000ms;
    Pool pool(driver, c);
    for (int i = 0; i < 10; ++i) {
        Lease l = pool.acquire();
    }
    CHECK(driver->state().pings == 0);
}

TEST_CASE("reset on release rolls back, and a failed reset destroys the connection", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    {
        Lease l = pool.acquire();
        l->execute("BEGIN");
        CHECK(l->in_transaction());
    }
    CHECK(driver->state().resets == 1);
    {
        Lease l = pool.acquire();
        CHECK_FALSE(l->in_transaction());
        l->execute("BEGIN");
        driver->state().fail_reset = true;
    }
    const auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::reset) == 1);
    CHECK(s.total == 0);
}

TEST_CASE("connect failure: ConnectError names the pool, capacity comes back", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, cfg(1));
    driver->state().fail_connect = true;
    CHECK_THROWS_WITH(pool.acquire(), Catch::Contains("pool 'test': cannot open a new connection: connection refused"));
    auto s = pool.stats();
    CHECK(s.total == 0);
    CHECK(s.pending == 0);
    CHECK(s.connect_failures == 3);  // connect_retry.max_attempts tries within the one acquire
    driver->state().fail_connect = false;
    Lease l = pool.acquire();
    CHECK(l);
    CHECK(pool.stats().total == 1);
}

TEST_CASE("the housekeeper opens min_idle connections and restores them", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(5);
    c.min_idle = 3;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return pool.stats().idle == 3; }));
    {
        Lease l = pool.acquire();
        CHECK(pool.stats().hits == 1);
        l.invalidate();
    }
    REQUIRE(eventually([&] { return pool.stats().idle == 3 && pool.stats().total == 3; }));
    CHECK(pool.stats().created == 4);
}

TEST_CASE("FIFO idle order spreads use across connections", "[unit]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(3);
    c.idle_order = poolbench::IdleOrder::fifo;
    Pool pool(driver, c);
    {
        Lease a = pool.acquire();
        Lease b = pool.acquire();
        Lease d = pool.acquire();
    }
    std::vector<int> ids;
    for (int i = 0; i < 6; ++i) {
        Lease l = pool.acquire();
        ids.push_back(pbtest::conn_id(l));
    }
    // Least recently used first: the three connections take turns.
    CHECK(ids[0] != ids[1]);
    CHECK(ids[1] != ids[2]);
    CHECK(ids[0] != ids[2]);
    CHECK(ids[3] == ids[0]);
    CHECK(ids[4] == ids[1]);
}

TEST_CASE("null:// drives the pool with no I/O", "[unit]") {
    Pool pool(poolbench::make_driver("null://"), cfg(4));
    for (int i = 0; i < 1000; ++i) {
        Lease l = pool.acquire();
        CHECK(l->query("SELECT 1").int_at(0) == 1);
    }
    const auto s = pool.stats();
    CHECK(s.acquires == 1000);
    CHECK(s.created == 1);
    CHECK(s.hit_ratio() > 0.99);
    CHECK(pool.driver().backend() == poolbench::Backend::null);
}

TEST_CASE("peak_active counts leases that only the lock-free fast path served", "[unit]") {
    // Every connection open and idle before the load (min_idle = max), so no acquire takes
    // the slow path, and stats() is called only when nothing is leased: only the fast
    // path's sampling can see the 3 leases held at once (soak's paced load showed 0).
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(4);
    c.min_idle = 4;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return pool.stats().idle == 4; }));
    const auto misses = pool.stats().misses;
    // A fresh thread: its sampling counter starts at 0, so the sampled acquires (every
    // 64th) land on each position of the triple (64 % 3 == 1, 128 % 3 == 2).
    std::thread([&] {
        for (int i = 0; i < 300; ++i) {
            Lease a = pool.acquire();
            Lease b = pool.acquire();
            Lease d = pool.acquire();
        }
    }).join();
    const auto s = pool.stats();
    CHECK(s.misses == misses);  // all served by idle connections
    CHECK(s.active == 0);
    CHECK(s.peak_active == 3);
}
