// Opening connections: a driver that fails oddly, and the housekeeper retrying a failed
// min_idle open. (Retries with backoff within one acquire, max_connecting and the
// circuit breaker have their own files: test_lifecycle.cpp, test_pool_breaker.cpp.)
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>

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
