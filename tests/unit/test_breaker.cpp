// The circuit breaker as a pure state machine: the clock is passed in, no threads, no sleeps.
#include "pool/breaker.hpp"

#include <catch2/catch.hpp>

using poolbench::BreakerState;
using poolbench::internal::CircuitBreaker;
using Decision = CircuitBreaker::Decision;

namespace {
constexpr std::int64_t ms = 1'000'000;
CircuitBreaker::Now at(std::int64_t t_ms) {
    return {t_ms * ms, std::chrono::system_clock::time_point{} + std::chrono::milliseconds(t_ms)};
}
}  // namespace

TEST_CASE("breaker: opens after N consecutive failures, not before", "[breaker]") {
    CircuitBreaker b(3, 100 * ms);
    CHECK_FALSE(b.on_failure("refused", at(0)));
    CHECK_FALSE(b.on_failure("refused", at(1)));
    CHECK(b.admit(at(2)) == Decision::allow);
    CHECK(b.on_failure("refused", at(3)));
    CHECK(b.state() == BreakerState::open);
    CHECK(b.open_until_ns() == 103 * ms);
    CHECK(b.transitions() == 1);
    REQUIRE(b.history().size() == 1);
    CHECK(b.history().back().reason == "refused");
}

TEST_CASE("breaker: a success in between resets the count", "[breaker]") {
    CircuitBreaker b(2, 100 * ms);
    CHECK_FALSE(b.on_failure("x", at(0)));
    CHECK_FALSE(b.on_success(at(1)));  // closed stays closed: no transition
    CHECK_FALSE(b.on_failure("x", at(2)));
    CHECK(b.closed());
    CHECK(b.transitions() == 0);
}

TEST_CASE("breaker: rejects during the cooldown, lets exactly one probe through after it", "[breaker]") {
    CircuitBreaker b(1, 100 * ms);
    REQUIRE(b.on_failure("down", at(0)));
    CHECK(b.admit(at(50)) == Decision::reject);
    CHECK(b.admit(at(99)) == Decision::reject);
    CHECK(b.admit(at(100)) == Decision::probe);
    CHECK(b.state() == BreakerState::half_open);
    CHECK(b.admit(at(101)) == Decision::reject);  // the probe is out
}

TEST_CASE("breaker: a failed probe opens it again for a full cooldown, a good one closes it", "[breaker]") {
    CircuitBreaker b(5, 100 * ms);
    for (int i = 0; i < 5; ++i) (void)b.on_failure("down", at(i));
    REQUIRE(b.open());
    REQUIRE(b.admit(at(200)) == Decision::probe);
    CHECK(b.on_failure("still down", at(210)));  // one failure is enough when half-open
    CHECK(b.open());
    CHECK(b.open_until_ns() == 310 * ms);
    CHECK(b.admit(at(309)) == Decision::reject);
    REQUIRE(b.admit(at(310)) == Decision::probe);
    CHECK(b.on_success(at(320)));
    CHECK(b.closed());
    CHECK(b.admit(at(321)) == Decision::allow);
    // closed -> open -> half-open -> open -> half-open -> closed
    CHECK(b.transitions() == 5);
}

TEST_CASE("breaker: with failures 0 it is off: never opens, always admits", "[breaker]") {
    CircuitBreaker b(0, 100 * ms);
    for (int i = 0; i < 1000; ++i) CHECK_FALSE(b.on_failure("down", at(i)));
    CHECK(b.closed());
    CHECK(b.admit(at(1000)) == Decision::allow);
    CHECK(b.transitions() == 0);
}

TEST_CASE("breaker: the message says since when, the last error, and when the probe comes", "[breaker]") {
    CircuitBreaker b(2, 1500 * ms);
    (void)b.on_failure("e1", at(0));
    (void)b.on_failure("connection refused", at(1000));
    const std::string open = b.describe(at(1250), "connection refused");
    CHECK(open == "circuit breaker open since 00:00:01.000 UTC after 2 consecutive connection failures "
                  "(last: connection refused); acquires that need a new connection fail at once until "
                  "00:00:02.500 UTC (in 1250 ms), then one probe is let through");
    REQUIRE(b.admit(at(2500)) == Decision::probe);
    CHECK(b.describe(at(2501), "") ==
          "circuit breaker half-open (a probe connection is being opened) after 2 consecutive connection failures");
}

TEST_CASE("breaker: the history keeps the last 32 transitions", "[breaker]") {
    CircuitBreaker b(1, 10 * ms);
    std::int64_t t = 0;
    for (int i = 0; i < 20; ++i) {
        (void)b.on_failure("down " + std::to_string(i), at(t));
        t += 10;
        REQUIRE(b.admit(at(t)) == Decision::probe);
        (void)b.on_success(at(t));
    }
    CHECK(b.transitions() == 60);
    CHECK(b.history().size() == 32);
    CHECK(b.history().back().to == BreakerState::closed);
}
