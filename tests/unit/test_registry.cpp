// PoolRegistry: named pools made from URLs, looked up, listed, removed and closed, their
// statistics in one call, and all of it from many threads at once.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/registry.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::PoolRegistry;

namespace {
poolbench::PoolConfig sized(std::size_t max_size) { return pbtest::config("any", max_size, 1000ms); }
}  // namespace

TEST_CASE("registry: create, get, names, stats", "[registry]") {
    PoolRegistry reg;
    auto a = reg.create("alpha", "null://", sized(3));
    auto b = reg.create("beta", "null://", pbtest::config("ignored", 2, 1000ms));
    CHECK(a->config().name == "alpha");
    CHECK(b->config().name == "beta");  // the registry's name wins
    CHECK(b->config().max_size == 2);
    CHECK(reg.get("alpha") == a);
    CHECK(reg.find("gamma") == nullptr);
    CHECK_THROWS_WITH(reg.get("gamma"), Catch::Contains("no pool named 'gamma' (registered: alpha, beta)"));
    CHECK(reg.names() == std::vector<std::string>{"alpha", "beta"});
    CHECK(reg.size() == 2);

    { auto l1 = a->acquire(); auto l2 = a->acquire(); auto l3 = b->acquire(); }
    const auto stats = reg.stats();
    REQUIRE(stats.size() == 2);
    CHECK(stats.at("alpha").acquires == 2);
    CHECK(stats.at("beta").acquires == 1);
    CHECK(stats.at("alpha").max_size == 3);
}

TEST_CASE("registry: bad names, URLs and settings register nothing", "[registry]") {
    PoolRegistry reg;
    reg.create("a", "null://");
    CHECK_THROWS_WITH(reg.create("a", "null://"), Catch::Contains("'a' is already registered"));
    CHECK_THROWS_AS(reg.create("", "null://"), poolbench::ConfigError);
    CHECK_THROWS_AS(reg.create("b", "nosuch://x"), poolbench::ConfigError);
    CHECK_THROWS_AS(reg.create("c", "null://", sized(0)), poolbench::ConfigError);
    CHECK_THROWS_AS(reg.add("d", nullptr), poolbench::UsageError);
    auto other = std::make_shared<poolbench::Pool>(std::make_shared<pbtest::TestDriver>(), pbtest::config("own", 1, 100ms));
    CHECK_THROWS_AS(reg.add("a", other), poolbench::ConfigError);
    CHECK(reg.names() == std::vector<std::string>{"a"});
    CHECK(reg.add("mine", other) == other);
    CHECK(other->config().name == "own");  // add() keeps the pool's own name
}

TEST_CASE("registry: remove keeps the pool open, close shuts it down", "[registry]") {
    PoolRegistry reg;
    auto a = reg.create("a", "null://");
    auto b = reg.create("b", "null://");
    auto c = reg.create("c", "null://");
    CHECK(reg.remove("a") == a);
    CHECK(reg.remove("a") == nullptr);
    { auto l = a->acquire(); }  // still usable
    CHECK_FALSE(a->stats().closed);

    CHECK(reg.close("b"));
    CHECK_FALSE(reg.close("b"));
    CHECK(b->stats().closed);
    CHECK_THROWS_AS(b->acquire(), poolbench::PoolClosed);

    CHECK(reg.close_all());
    CHECK(c->stats().closed);
    CHECK(reg.size() == 0);
    CHECK(reg.stats().empty());
}

TEST_CASE("registry: many threads add, use, list and close pools at once", "[registry]") {
    PoolRegistry reg;
    reg.create("shared", "null://", sized(4));
    constexpr int threads = 8;
    constexpr int rounds = 6;
    std::atomic<int> made{0};
    std::atomic<int> close_failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            for (int r = 0; r < rounds; ++r) {
                const std::string name = "t" + std::to_string(t) + "-" + std::to_string(r);
                auto p = reg.create(name, "null://", sized(1));
                made.fetch_add(1);
                { auto l = reg.get("shared")->acquire(); }
                { auto l = p->acquire(); }
                (void)reg.names();
                if (r % 2 == 0) (void)reg.stats();  // every pool's histograms: not cheap
                if (r % 2 == 0 && !reg.close(name)) close_failures.fetch_add(1);  // no CHECK off the main thread
            }
        });
    }
    for (auto& th : ts) th.join();
    CHECK(made.load() == threads * rounds);
    CHECK(close_failures.load() == 0);
    CHECK(reg.size() == 1 + threads * rounds / 2);
    CHECK(reg.stats().at("shared").acquires == static_cast<std::uint64_t>(threads * rounds));
}
