// WriterGate under real threads (fake driver): one writer at a time through barging,
// hand-offs, spinning and timeouts; no writer starves behind one that barges back to back.
// Runs under ThreadSanitizer (scripts/build.sh tsan). No sleeps: bounded loops only.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Pool;
using poolbench::WriteLease;
using poolbench::WriterGate;
using poolbench::WriterGateOptions;

TEST_CASE("WriterGate options: the default threshold, and a negative one is a ConfigError", "[unit][gate]") {
    CHECK(WriterGateOptions{}.starvation_threshold == 10ms);
    CHECK(WriterGateOptions{}.why_invalid().empty());
    CHECK(WriterGateOptions{.starvation_threshold = 0us}.why_invalid().empty());
    const WriterGateOptions bad{.starvation_threshold = -1us};
    CHECK_THAT(bad.why_invalid(), Catch::Contains("starvation_threshold is negative"));
    CHECK_THROWS_AS(WriterGate("g", bad), poolbench::ConfigError);
    try {
        WriterGate g("orders.db", bad);
    } catch (const poolbench::ConfigError& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("writer gate 'orders.db'"));
    }
    const WriterGate g("g", {.starvation_threshold = 250us});
    CHECK(g.options().starvation_threshold == 250us);
}

TEST_CASE("WriterGate: many writers, one turn at a time, every turn counted", "[unit][gate][concurrency]") {
    // 0: strict hand-offs only; 200 us: barging and hand-offs both happen in a run this
    // long; 1 s: almost only barging.
    const auto threshold = GENERATE(0us, 200us, 1'000'000us);
    INFO("starvation_threshold " << threshold.count() << " us");
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    WriterGate gate("g", {.starvation_threshold = threshold});
    constexpr int threads = 8;
    constexpr int per_thread = 400;
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
    std::uint64_t plain_counter = 0;  // written only while holding the turn: TSan checks the gate orders it
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                WriteLease w = gate.acquire(pool, 10s);
                if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
                ++plain_counter;
                inside.fetch_sub(1);
            }
        });
    }
    for (auto& t : ts) t.join();
    CHECK(overlaps.load() == 0);
    CHECK(plain_counter == static_cast<std::uint64_t>(threads * per_thread));
    CHECK(gate.turns() == static_cast<std::uint64_t>(threads * per_thread));
    CHECK(gate.waiting() == 0);
    CHECK(gate.handoffs() <= gate.waits());
    if (threshold == 0us) CHECK(gate.barges() == 0);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: a writer barging back to back cannot starve a queued one", "[unit][gate][concurrency]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 2, 10s));
    WriterGate gate("g", {.starvation_threshold = 1ms});
    std::atomic<bool> queued_writer_done{false};
    WriteLease first = gate.acquire(pool, 1s);
    std::thread waiter([&] {
        WriteLease w = gate.acquire(pool, 10s);
        queued_writer_done = true;
    });
    REQUIRE(pbtest::eventually([&] { return gate.waiting() == 1; }));
    // Release and take the turn again at once, as fast as possible: this thread is always
    // running when the turn is free. Once the queued writer has waited 1 ms the turn is
    // handed to it, and this thread's acquire() waits behind it.
    first.release();
    std::uint64_t rounds = 0;
    while (!queued_writer_done.load() && rounds < 50'000'000) {
        WriteLease again = gate.acquire(pool, 10s);
        ++rounds;
    }
    waiter.join();
    INFO("barging turns before the queued writer was served: " << rounds);
    CHECK(queued_writer_done.load());
    CHECK(gate.waiting() == 0);
}

TEST_CASE("WriterGate: timed-out writers leave the queue and the rest are still served", "[unit][gate][concurrency]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    WriterGate gate("g", {.starvation_threshold = 100us});
    constexpr int threads = 6;
    std::atomic<int> served{0};
    std::atomic<int> timeouts{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                try {
                    // Odd threads give up almost at once; even ones wait long enough to be served.
                    WriteLease w = gate.acquire(pool, t % 2 == 1 ? 0ms : 10s);
                    served.fetch_add(1);
                } catch (const poolbench::PoolTimeout&) {
                    timeouts.fetch_add(1);
                }
            }
        });
    }
    for (auto& t : ts) t.join();
    CHECK(served.load() + timeouts.load() == threads * 200);
    CHECK(served.load() >= threads / 2 * 200);  // every patient writer got every turn
    CHECK(gate.turns() >= static_cast<std::uint64_t>(served.load()));
    CHECK(gate.waiting() == 0);
    WriteLease w = gate.acquire(pool, 1s);  // the turn is free again
    CHECK(w);
}
