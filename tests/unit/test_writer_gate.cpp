// WriterGate under real threads (fake driver): one writer at a time through barging,
// hand-offs, spinning and timeouts; no writer starves behind one that barges back to back.
// Runs under ThreadSanitizer (scripts/build.sh tsan). No sleeps: bounded loops only.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Pool;
using poolbench::WriteLease;
using poolbench::WriterGate;
using poolbench::WriterGateOptions;

TEST_CASE("WriterGate options: the default threshold, and a negative or over-long one is a ConfigError", "[unit][gate]") {
    CHECK(WriterGateOptions{}.starvation_threshold == 10ms);
    CHECK(WriterGateOptions{}.why_invalid().empty());
    CHECK(WriterGateOptions{.starvation_threshold = 0us}.why_invalid().empty());
    CHECK(WriterGateOptions{.starvation_threshold = WriterGateOptions::max_starvation_threshold}.why_invalid().empty());
    CHECK(WriterGateOptions::max_starvation_threshold == std::chrono::hours{1});
    for (const auto too_long : {WriterGateOptions::max_starvation_threshold + 1us, std::chrono::microseconds::max()}) {
        const WriterGateOptions o{.starvation_threshold = too_long};
        CHECK_THAT(o.why_invalid(), Catch::Contains("above the limit"));
        CHECK_THROWS_AS(WriterGate("g", o), poolbench::ConfigError);
    }
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
    if (threshold == 0us) CHECK(gate.barges() == 0);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: a writer barging back to back cannot starve a queued one", "[unit][gate][concurrency]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 2, 10s));
    constexpr auto threshold = 1ms;
    // Scheduling on a loaded (or TSan) machine; far below the 10 s timeout and the time the
    // round cap takes, so a writer that is only served when the barging loop stops fails.
    constexpr auto margin = 2s;
    WriterGate gate("g", {.starvation_threshold = threshold});
    std::atomic<bool> queued_writer_done{false};
    std::string queued_writer_error;  // written by the thread before it sets done; read after join
    std::chrono::steady_clock::time_point served_at{};
    WriteLease first = gate.acquire(pool, 1s);
    std::thread waiter([&] {
        try {
            WriteLease w = gate.acquire(pool, 10s);
            served_at = std::chrono::steady_clock::now();
        } catch (const poolbench::PoolTimeout& e) {
            queued_writer_error = e.what();
        }
        queued_writer_done = true;
    });
    REQUIRE(pbtest::eventually([&] { return gate.waiting() == 1; }));
    // Release and take the turn again at once, as fast as possible: this thread is always
    // running when the turn is free. Once the queued writer has waited 1 ms the turn is
    // handed to it, and this thread's acquire() waits behind it.
    const auto released_at = std::chrono::steady_clock::now();  // the writer queued before this
    first.release();
    constexpr std::uint64_t round_cap = 50'000'000;
    std::uint64_t rounds = 0;
    while (!queued_writer_done.load() && rounds < round_cap) {
        WriteLease again = gate.acquire(pool, 10s);
        ++rounds;
    }
    waiter.join();
    INFO("barging turns before the queued writer was served: " << rounds);
    CHECK(rounds < round_cap);  // the loop ended because the queued writer was served
    INFO("queued writer: " << queued_writer_error);
    CHECK(queued_writer_error.empty());
    REQUIRE(served_at != std::chrono::steady_clock::time_point{});
    const auto waited = served_at - released_at;
    INFO("queued writer waited " << std::chrono::duration_cast<std::chrono::microseconds>(waited).count()
                                 << " us after the first release");
    CHECK(waited <= threshold + margin);
    CHECK(gate.waiting() == 0);
}

TEST_CASE("WriterGate: a writer queued behind a passed-over one does not time out while the turn is free",
          "[unit][gate][concurrency]") {
    // W1 queues, then W2 with a short timeout; the holder releases and barges at once, so W1
    // (woken to compete) loses and is passed over; then the holder releases and nobody
    // barges again. The turn is free, but only the front writer (W1) may take it from the
    // queue: W1 must look again within T/8 (1 s), not at its threshold (8 s), or W2 times out
    // with the turn free. Without that cap this failed whenever W1 was passed over.
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    WriterGate gate("g", {.starvation_threshold = 8s});
    std::string w1_error, w2_error;  // each written by its own thread, read after join
    WriteLease held = gate.acquire(pool, 1s);
    std::thread w1([&] {
        try {
            WriteLease w = gate.acquire(pool, 30s);
        } catch (const poolbench::PoolTimeout& e) {
            w1_error = e.what();
        }
    });
    REQUIRE(pbtest::eventually([&] { return gate.waiting() == 1; }));
    std::thread w2([&] {
        try {
            WriteLease w = gate.acquire(pool, 4s);
        } catch (const poolbench::PoolTimeout& e) {
            w2_error = e.what();
        }
    });
    REQUIRE(pbtest::eventually([&] { return gate.waiting() == 2; }));
    // The first release wakes W1 to compete; this running writer barges back to back, so W1
    // (nearly always) looks while the turn is held and is passed over: later releases do
    // not wake it. A bounded number of rounds, far shorter than the threshold.
    std::uint64_t rounds = 0;
    for (; rounds < 20'000 && gate.waiting() == 2; ++rounds) {
        held.release();
        held = gate.acquire(pool, 30s);
    }
    const bool w1_still_queued = gate.waiting() == 2;  // it looked, lost, and sleeps: passed over
    held.release();  // the turn is free from here on: nobody barges again
    w1.join();
    w2.join();
    INFO("barging rounds " << rounds << ", W1 still queued after them: " << w1_still_queued << "; W1: " << w1_error
                           << "; W2: " << w2_error);
    CHECK(w1_error.empty());
    CHECK(w2_error.empty());
    CHECK(gate.waiting() == 0);
    CHECK(gate.turns() == rounds + 3);
}

TEST_CASE("WriterGate: a timeout says whether the turn was held", "[unit][gate][concurrency]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, pbtest::config("gate-pool", 2, 10s));
    WriterGate gate("g", {.starvation_threshold = 1s});
    WriteLease held = gate.acquire(pool, 1s);
    try {
        WriteLease w = gate.acquire(pool, 1ms);
        FAIL("acquire() did not time out");
    } catch (const poolbench::PoolTimeout& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("(1 writer holds it, 0 others queued)"));
        CHECK(e.in_use() == 1);
    }
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
