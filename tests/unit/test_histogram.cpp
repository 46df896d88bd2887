#include <poolbench/histogram.hpp>
#include <poolbench/internal/atomic_histogram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using poolbench::Histogram;

TEST_CASE("histogram buckets tile the range without gaps", "[unit]") {
    for (std::size_t i = 0; i + 1 < Histogram::bucket_count; ++i) {
        REQUIRE(Histogram::bucket_high(i) + 1 == Histogram::bucket_low(i + 1));
        REQUIRE(Histogram::bucket_of(Histogram::bucket_low(i)) == i);
        REQUIRE(Histogram::bucket_of(Histogram::bucket_high(i)) == i);
    }
    CHECK(Histogram::bucket_of(0) == 0);
    CHECK(Histogram::bucket_of(127) == 127);
    CHECK(Histogram::bucket_of(UINT64_MAX) == Histogram::bucket_count - 1);
}

TEST_CASE("percentiles are within 1% of the exact values", "[unit]") {
    std::mt19937_64 rng(42);
    std::lognormal_distribution<double> dist(10.0, 2.0);  // ns-scale values over many decades
    std::vector<std::uint64_t> values;
    Histogram h;
    for (int i = 0; i < 200'000; ++i) {
        const auto v = static_cast<std::uint64_t>(dist(rng));
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))));
        const double exact = static_cast<double>(values[rank - 1]);
        const double got = static_cast<double>(h.percentile(q));
        INFO("q=" << q << " exact=" << exact << " got=" << got);
        CHECK(std::abs(got - exact) <= 0.01 * exact + 0.5);
    }
    CHECK(h.count() == values.size());
    CHECK(h.min() == values.front());
    CHECK(h.max() == values.back());
    double sum = 0;
    for (auto v : values) sum += static_cast<double>(v);
    CHECK(h.mean() == Approx(sum / static_cast<double>(values.size())).epsilon(1e-9));
}

TEST_CASE("merging equals recording everything into one", "[unit]") {
    Histogram a, b, all;
    for (std::uint64_t v = 1; v < 100'000; v += 7) {
        (v % 2 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    CHECK(a.count() == all.count());
    for (double q : {0.1, 0.5, 0.99}) CHECK(a.percentile(q) == all.percentile(q));
    CHECK(a.max() == all.max());
    CHECK(a.min() == all.min());
    Histogram empty;
    CHECK(empty.percentile(0.5) == 0);
    CHECK(empty.mean() == 0.0);
    a.clear();
    CHECK(a.count() == 0);
}

TEST_CASE("atomic histogram loses no records under concurrency", "[unit]") {
    poolbench::internal::AtomicHistogram ah;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < 50'000; ++i) ah.record(i * 13 + static_cast<std::uint64_t>(t));
        });
    for (auto& t : ts) t.join();
    Histogram h;
    ah.snapshot_into(h);
    CHECK(h.count() == 200'000);
    CHECK(h.max() == 49'999 * 13 + 3);
    CHECK(h.min() == 0);
}

TEST_CASE("atomic histogram recorded by one thread at a time, read while it records", "[unit]") {
    poolbench::internal::AtomicHistogram ah;
    std::atomic<bool> done{false};
    std::uint64_t last_seen = 0;
    bool grew_only = true;
    std::thread reader([&] {
        // A reader's view of a bucket never goes back (the sampler diffs these views).
        while (!done.load()) {
            const std::uint64_t n = ah.bucket(Histogram::bucket_of(1000));
            grew_only = grew_only && n >= last_seen;
            last_seen = n;
        }
    });
    std::mutex mu;  // two writers serialising their records, as workers sharing a shard do
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < 50'000; ++i) {
                std::lock_guard lock(mu);
                ah.record_exclusive(i % 2 == 0 ? 1000 : i * 7 + static_cast<std::uint64_t>(t));
            }
        });
    for (auto& t : ts) t.join();
    done = true;
    reader.join();
    CHECK(grew_only);
    Histogram h;
    ah.snapshot_into(h);
    CHECK(h.count() == 100'000);
    CHECK(ah.bucket(Histogram::bucket_of(1000)) >= 50'000);
    CHECK(h.max() == 49'999 * 7 + 1);
    CHECK(h.min() == 7);
}
