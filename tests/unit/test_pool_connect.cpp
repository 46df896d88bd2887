// Opening connections: a driver that fails oddly, and the housekeeper retrying a failed
// min_idle open. (Retries with backoff within one acquire, max_connecting and the
// circuit breaker have their own files: test_lifecycle.cpp, test_pool_breaker.cpp.)
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::TestDriver;

namespace {

PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 5000ms) {
    return pbtest::config("more", max_size, timeout);
}

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

TEST_CASE("wait_for_min_idle returns once min_idle connections are open, not before", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().hold_connects = true;  // the housekeeper's first open blocks
    PoolConfig c = cfg(4);
    c.min_idle = 3;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return driver->state().connecting.load() == 1; }));
    // Nothing is open yet: a short wait times out and says so.
    CHECK_FALSE(pool.wait_for_min_idle(20ms));
    CHECK(pool.stats().idle == 0);
    std::atomic<bool> ready{false};
    std::thread waiter([&] { ready = pool.wait_for_min_idle(10s); });
    driver->state().hold_connects = false;
    waiter.join();
    CHECK(ready.load());
    // It returned with all three open: the load after it finds them idle.
    const auto s = pool.stats();
    CHECK(s.total >= 3);
    CHECK(s.idle >= 3);
    CHECK(s.pending == 0);
}

TEST_CASE("wait_for_min_idle returns false at once when opening fails, and true with min_idle 0", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().fail_connect = true;
    PoolConfig c = cfg(3);
    c.min_idle = 2;
    c.housekeeping_interval = 10s;  // one attempt within the test
    c.breaker_failures = 0;
    Pool pool(driver, c);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(pool.wait_for_min_idle(30s));
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // woke on the failure, not at the timeout
    CHECK(pool.stats().connect_failures >= 1);
    // Called after the failure (the housekeeper now waits its interval): false at once too.
    REQUIRE(eventually([&] { return pool.stats().connect_failures >= 1; }));
    const auto t1 = std::chrono::steady_clock::now();
    CHECK_FALSE(pool.wait_for_min_idle(30s));
    CHECK(std::chrono::steady_clock::now() - t1 < 5s);

    auto cold = std::make_shared<TestDriver>();
    Pool lazy(cold, cfg(3));
    CHECK(lazy.wait_for_min_idle(0ms));
    CHECK(cold->state().opened.load() == 0);
}

TEST_CASE("wait_for_min_idle returns false after shutdown", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    driver->state().hold_connects = true;
    PoolConfig c = cfg(3);
    c.min_idle = 2;
    Pool pool(driver, c);
    REQUIRE(eventually([&] { return driver->state().connecting.load() == 1; }));
    std::atomic<int> result{-1};
    std::thread waiter([&] { result = pool.wait_for_min_idle(30s) ? 1 : 0; });
    pool.shutdown();
    driver->state().hold_connects = false;
    waiter.join();
    CHECK(result.load() == 0);
}
