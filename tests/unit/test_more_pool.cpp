// Pool paths the main suites do not reach: drivers that fail oddly, shutdown while a
// connection is being opened, the housekeeper's min_idle refill failing and meeting the
// circuit breaker, waiters leaving the middle of the queue, suspend/resume edge cases,
// and a lease revoked while its connection is being reset.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::DestroyReason;
using poolbench::LeakReport;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::hold_for;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 5000ms) {
    return pbtest::config("more", max_size, timeout);
}

using pbtest::destroyed;

/// Opens connections that fail in a chosen way: by throwing something that is not a
/// std::exception, or a std::exception with an empty message.
class OddDriver final : public poolbench::Driver {
public:
    enum class Mode { throw_int, empty_message };
    explicit OddDriver(Mode m) : mode_(m) {}
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        calls.fetch_add(1);
        if (mode_ == Mode::throw_int) throw 42;
        throw std::runtime_error("");
    }
    [[nodiscard]] poolbench::Backend backend() const noexcept override { return poolbench::Backend::null; }
    [[nodiscard]] std::string describe() const override { return "odd://"; }
    std::atomic<int> calls{0};

private:
    Mode mode_;
};

/// A connection whose reset() runs a hook first (to let a test act while a release is
/// inside reset), then fails if the hook says so.
struct HookState {
    std::atomic<int> live{0};
    std::function<bool()> on_reset;  // returns false to make reset() throw
};

class HookConnection final : public poolbench::Connection {
public:
    explicit HookConnection(std::shared_ptr<HookState> st) : st_(std::move(st)) { st_->live.fetch_add(1); }
    ~HookConnection() override { st_->live.fetch_sub(1); }
    void execute(std::string_view sql) override {
        if (sql == "BEGIN") in_tx_ = true;
        if (sql == "ROLLBACK" || sql == "COMMIT") in_tx_ = false;
    }
    poolbench::Rows query(std::string_view, std::span<const poolbench::Value>) override { return {}; }
    bool ping() noexcept override { return true; }
    void reset() override {
        const bool ok = !st_->on_reset || st_->on_reset();
        if (!ok) throw poolbench::QueryError("reset failed (hook)", "XX000", 0, false);
        in_tx_ = false;
    }
    void interrupt() noexcept override {}
    [[nodiscard]] bool is_broken() const noexcept override { return false; }
    [[nodiscard]] bool in_transaction() const noexcept override { return in_tx_; }

private:
    std::shared_ptr<HookState> st_;
    bool in_tx_ = false;
};

class HookDriver final : public poolbench::Driver {
public:
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        return std::make_unique<HookConnection>(st);
    }
    [[nodiscard]] poolbench::Backend backend() const noexcept override { return poolbench::Backend::null; }
    [[nodiscard]] std::string describe() const override { return "hook://"; }
    std::shared_ptr<HookState> st = std::make_shared<HookState>();
};

std::size_t count(const std::vector<LeakReport>& v, LeakReport::Kind k) {
    return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [&](const LeakReport& r) { return r.kind == k; }));
}

}  // namespace

TEST_CASE("a driver that throws a non-standard exception or an empty message fails as 'unknown error'",
          "[unit][more]") {
    for (auto mode : {OddDriver::Mode::throw_int, OddDriver::Mode::empty_message}) {
        auto driver = std::make_shared<OddDriver>(mode);
        PoolConfig c = cfg(2);
        c.connect_retry.max_attempts = 2;
        c.connect_retry.base = 0ms;
        c.connect_retry.max = 0ms;
        Pool pool(driver, c);
        CHECK_THROWS_WITH(pool.acquire(), "pool 'more': cannot open a new connection: unknown error");
        CHECK(driver->calls == 2);
        const auto s = pool.stats();
        CHECK(s.connect_failures == 2);
        CHECK(s.total == 0);
        CHECK(s.pending == 0);
    }
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

TEST_CASE("the housekeeper retries a failed min_idle open after housekeeping_interval", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().fail_connect = true;
    PoolConfig c = cfg(3);
    c.min_idle = 2;
    c.housekeeping_interval = 20ms;
    c.breaker_failures = 0;  // no breaker: only the interval paces the retries
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return pool.stats().connect_failures >= 3; }));
    const auto failing = pool.stats();
    CHECK(failing.total == 0);
    CHECK(failing.pending == 0);
    CHECK(failing.breaker == BreakerState::closed);
    // An acquire's timeout message carries the housekeeper's last connection error.
    driver->state().fail_connect = false;
    REQUIRE(eventually([&] {
        const auto s = pool.stats();
        return s.idle == 2 && s.total == 2;
    }));
    CHECK(pool.stats().created == 2);
}

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

TEST_CASE("a lease revoked while its connection is being reset is closed, not put back", "[unit][more]") {
    auto driver = std::make_shared<HookDriver>();
    PoolConfig c = cfg(1);
    c.leak_threshold = 20ms;
    c.leak_reclaim_after = 40ms;
    Pool* pool_ptr = nullptr;
    std::atomic<int> resets{0};
    std::atomic<bool> reclaimed_during_reset{false};
    bool reset_succeeds = true;
    driver->st->on_reset = [&] {
        resets.fetch_add(1);
        // The release is inside reset(): the housekeeper reclaims the lease meanwhile.
        reclaimed_during_reset = eventually([&] { return pool_ptr->stats().leaks_reclaimed == 1; });
        return reset_succeeds;
    };
    Pool pool(driver, c);
    pool_ptr = &pool;

    SECTION("the reset succeeds") { reset_succeeds = true; }
    SECTION("the reset fails") { reset_succeeds = false; }

    {
        Lease l = pool.acquire();
        l->execute("BEGIN");
        CHECK(driver->st->live == 1);
    }  // release -> reset -> revoked meanwhile
    CHECK(resets == 1);
    CHECK(reclaimed_during_reset);
    const auto s = pool.stats();
    CHECK(s.leaks_reclaimed == 1);
    CHECK(s.revoked_outstanding == 0);
    CHECK(s.total == 0);
    CHECK(s.idle == 0);
    CHECK(s.active == 0);
    // The revoked connection closed with its lease (or just after, if the housekeeper
    // was still inside interrupt() on it and so held the last reference).
    CHECK(eventually([&] { return driver->st->live.load() == 0; }));
    CHECK(eventually([&] { return count(pool.leaks(), LeakReport::Kind::returned) == 1; }));
    // The capacity came back: a new connection can be opened.
    Lease again = pool.acquire(1000ms);
    CHECK(again);
    CHECK(driver->st->live == 1);
}

TEST_CASE("a throwing on_leak callback does not hurt the pool", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.leak_threshold = 20ms;
    std::atomic<int> calls{0};
    c.on_leak = [&](const LeakReport&) {
        calls.fetch_add(1);
        throw std::runtime_error("callback failed");
    };
    Pool pool(driver, c);
    {
        Lease leaked = pool.acquire();
        REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
        REQUIRE(eventually([&] { return calls == 1; }));
        CHECK(pool.leaks().size() == 1);
    }
    // The late return is reported too (the callback throws again, on this thread).
    CHECK(calls == 2);
    CHECK(pool.stats().leaks_returned_late == 1);
    Lease again = pool.acquire();
    CHECK(again);
    CHECK(pool.stats().hits == 1);
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
