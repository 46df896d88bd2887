// Every PoolConfig::validate() rule, the names of enum values, URL and driver-factory
// errors that the other unit tests do not reach.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <set>
#include <string>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::DestroyReason;
using poolbench::PoolConfig;

namespace {

PoolConfig base() {
    PoolConfig c;
    c.name = "cfg";
    c.max_size = 4;
    return c;
}

/// The ConfigError message of validate(), or "valid" when it accepts the config.
std::string verdict(const PoolConfig& c) {
    try {
        c.validate();
    } catch (const poolbench::ConfigError& e) {
        return e.what();
    }
    return "valid";
}

std::string url_error(std::string_view url) {
    try {
        (void)poolbench::parse_db_url(url);
    } catch (const poolbench::ConfigError& e) {
        return e.what();
    }
    return "parsed";
}

}  // namespace

TEST_CASE("the default config and its boundary values are valid", "[unit][config]") {
    CHECK(verdict(base()) == "valid");
    PoolConfig c = base();
    c.core_size = 4;            // == max_size
    c.max_size_limit = 4;       // == max_size
    c.max_connecting = 1;
    c.idle_timeout = 0ms;
    c.max_lifetime = 0ms;
    c.max_lifetime_jitter = 0.0;
    c.keepalive_interval = 0ms;
    c.connect_retry.max_attempts = 1;
    c.connect_retry.base = 0ms;
    c.connect_retry.max = 0ms;
    c.breaker_failures = 0;
    c.breaker_cooldown = 0ms;  // allowed: the breaker is off
    c.starvation_threshold = 0us;
    CHECK(verdict(c) == "valid");
    c.max_size_limit = 100'000;
    c.max_lifetime_jitter = 0.999;
    CHECK(verdict(c) == "valid");
}

TEST_CASE("each invalid setting is rejected with the pool, the field and the value", "[unit][config]") {
    PoolConfig c = base();

    SECTION("core_size above max_size") {
        c.core_size = 5;
        CHECK(verdict(c) == "pool 'cfg': core_size 5 is above max_size 4");
    }
    SECTION("max_size_limit below max_size") {
        c.max_size_limit = 3;
        CHECK(verdict(c) == "pool 'cfg': max_size_limit 3 is below max_size 4");
    }
    SECTION("max_size_limit above the hard limit") {
        c.max_size_limit = 100'001;
        CHECK(verdict(c) == "pool 'cfg': max_size_limit 100001 is above the limit of 100000");
    }
    SECTION("max_connecting 0") {
        c.max_connecting = 0;
        CHECK(verdict(c) == "pool 'cfg': max_connecting is 0; it must be at least 1");
    }
    SECTION("negative idle_timeout") {
        c.idle_timeout = -1ms;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': idle_timeout is negative"));
    }
    SECTION("negative max_lifetime") {
        c.max_lifetime = -1ms;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': max_lifetime is negative"));
    }
    SECTION("max_lifetime_jitter out of [0, 1)") {
        c.max_lifetime_jitter = 1.0;
        CHECK(verdict(c) == "pool 'cfg': max_lifetime_jitter must be in [0, 1) (got 1.000000)");
        c.max_lifetime_jitter = -0.25;
        CHECK(verdict(c) == "pool 'cfg': max_lifetime_jitter must be in [0, 1) (got -0.250000)");
        c.max_lifetime_jitter = std::numeric_limits<double>::quiet_NaN();
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': max_lifetime_jitter must be in [0, 1)"));
    }
    SECTION("negative keepalive_interval") {
        c.keepalive_interval = -5ms;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': keepalive_interval is negative"));
    }
    SECTION("connect_retry.max_attempts below 1") {
        c.connect_retry.max_attempts = 0;
        CHECK(verdict(c) == "pool 'cfg': connect_retry.max_attempts is 0; it must be at least 1 (1 = no retries)");
        c.connect_retry.max_attempts = -3;
        CHECK(verdict(c) == "pool 'cfg': connect_retry.max_attempts is -3; it must be at least 1 (1 = no retries)");
    }
    SECTION("negative connect_retry.base") {
        c.connect_retry.base = -1ms;
        CHECK(verdict(c) == "pool 'cfg': connect_retry.base is negative (-1 ms); use 0 for no pause");
    }
    SECTION("connect_retry.max below connect_retry.base") {
        c.connect_retry.base = 100ms;
        c.connect_retry.max = 99ms;
        CHECK(verdict(c) == "pool 'cfg': connect_retry.max (99 ms) is below base (100 ms); raise max or lower base");
    }
    SECTION("negative breaker_failures") {
        c.breaker_failures = -1;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': breaker_failures is negative"));
    }
    SECTION("breaker on with no cooldown") {
        c.breaker_failures = 3;
        c.breaker_cooldown = 0ms;
        CHECK(verdict(c) == "pool 'cfg': breaker_cooldown must be positive when the circuit breaker is on");
        c.breaker_cooldown = -10ms;
        CHECK(verdict(c) == "pool 'cfg': breaker_cooldown must be positive when the circuit breaker is on");
    }
    SECTION("negative leak_reclaim_after") {
        c.leak_reclaim_after = -1ms;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': leak_reclaim_after is negative"));
    }
    SECTION("negative starvation_threshold") {
        c.starvation_threshold = -1us;
        CHECK_THAT(verdict(c), Catch::StartsWith("pool 'cfg': starvation_threshold is negative"));
    }
    SECTION("a Pool refuses the config before opening anything") {
        c.max_connecting = 0;
        auto driver = std::make_shared<pbtest::TestDriver>();
        CHECK_THROWS_WITH(poolbench::Pool(driver, c), Catch::Contains("max_connecting is 0"));
        CHECK(driver->state().connect_calls == 0);
    }
}

TEST_CASE("a negative timeout for one acquire is a ConfigError", "[unit][config]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    poolbench::Pool pool(driver, base());
    CHECK_THROWS_WITH(pool.acquire(-1ms), "pool 'cfg': acquire timeout is negative");
    CHECK(driver->state().connect_calls == 0);
    CHECK(pool.config().name == "cfg");
    CHECK(pool.config().max_size == 4);
    CHECK(pool.driver().backend() == poolbench::Backend::null);
    CHECK(pool.driver().describe() == "test://");
}

TEST_CASE("every BreakerState and DestroyReason has its name", "[unit][config]") {
    CHECK(to_string(BreakerState::closed) == "closed");
    CHECK(to_string(BreakerState::open) == "open");
    CHECK(to_string(BreakerState::half_open) == "half_open");
    CHECK(to_string(static_cast<BreakerState>(7)) == "unknown");

    CHECK(to_string(DestroyReason::surplus) == "surplus");
    CHECK(to_string(DestroyReason::evicted) == "evicted");
    CHECK(to_string(DestroyReason::revoked) == "revoked");
    CHECK(to_string(DestroyReason::count_) == "unknown");
    // Every real reason has its own name (a report keyed by name never merges two).
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < poolbench::destroy_reason_count; ++i) {
        const auto name = to_string(static_cast<DestroyReason>(i));
        CHECK(name != "unknown");
        names.insert(name);
    }
    CHECK(names.size() == poolbench::destroy_reason_count);
}

TEST_CASE("Rows::int_at names a single row and a single column in the singular", "[unit][config]") {
    poolbench::Rows one;
    one.rows.push_back({poolbench::Value{std::int64_t{1}}});
    try {
        (void)one.int_at(1, 0);
        FAIL("no error");
    } catch (const poolbench::UsageError& e) {
        CHECK(std::string(e.what()) == "Rows::int_at(1, 0): row 1 is absent: the query returned 1 row");
    }
    poolbench::Rows wide;
    wide.rows.push_back({poolbench::Value{std::int64_t{1}}, poolbench::Value{std::int64_t{2}}});
    try {
        (void)wide.int_at(0, 2);
        FAIL("no error");
    } catch (const poolbench::UsageError& e) {
        CHECK(std::string(e.what()) == "Rows::int_at(0, 2): column 2 is absent: row 0 has 2 columns");
    }
    CHECK(wide.int_at(0, 1) == 2);
}

TEST_CASE("Backend names, an unknown backend, and malformed URL pieces", "[unit][config]") {
    using poolbench::Backend;
    CHECK(to_string(Backend::sqlite) == "sqlite");
    CHECK(to_string(Backend::postgresql) == "postgresql");
    CHECK(to_string(Backend::null) == "null");
    CHECK(to_string(static_cast<Backend>(42)) == "unknown");

    poolbench::DbUrl odd;
    odd.backend = static_cast<Backend>(42);
    odd.redacted = "weird://x";
    CHECK_THROWS_WITH(poolbench::make_driver(odd), "unknown backend in database URL 'weird://x'");

    CHECK_THAT(url_error("postgresql://u@[::1:5432/db"), Catch::Contains("IPv6 host '[::1:5432' lacks its closing ']'"));
    CHECK_THAT(url_error("sqlite:///tmp/x.db?%zz=1"),
               Catch::Contains("query parameter name '%zz' has a malformed %-escape"));
    CHECK_THAT(url_error("postgresql://u@[::1]x/db"), Catch::Contains("unexpected 'x' after IPv6 host (expected :port)"));
    CHECK(url_error("postgresql://u@[::1]:5432/db") == "parsed");
}
