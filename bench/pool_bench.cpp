// Pool micro-benchmark: acquire+release cycles per second against null://, measured the
// way ../shared/peers/hikaricp/HikariBench.java measures HikariCP (same pool size, same
// thread counts, fixed-time runs after a warm-up, median of N), so the two print
// comparable tables. Statistics are always on (they cannot be turned off).
//   pool_bench [runs=3] [seconds=5] [warmup=3] [threads=1,2,8,100] [pool=10] [leak=off|on|N]
// leak: leak tracking off (default), on with a stack trace on every acquire, or on with a
// trace on one acquire in N (the threshold is long enough that nothing is reported).
#include <poolbench/poolbench.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct alignas(64) Counter {
    std::uint64_t n = 0;
};

double measure(poolbench::Pool& pool, int threads, double secs) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};
    std::vector<Counter> counts(static_cast<std::size_t>(threads));
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            std::uint64_t c = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                poolbench::Lease l = pool.acquire();
                ++c;
            }
            counts[static_cast<std::size_t>(t)].n = c;
        });
    }
    while (ready.load() < threads) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    stop.store(true);
    const auto t1 = std::chrono::steady_clock::now();
    for (auto& th : ts) th.join();
    std::uint64_t total = 0;
    for (const auto& c : counts) total += c.n;
    return static_cast<double>(total) / std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 3;
    const double secs = argc > 2 ? std::atof(argv[2]) : 5;
    const double warm = argc > 3 ? std::atof(argv[3]) : 3;
    std::vector<int> thread_counts{1, 2, 8, 100};
    if (argc > 4) {
        thread_counts.clear();
        std::stringstream ss(argv[4]);
        for (std::string item; std::getline(ss, item, ',');) thread_counts.push_back(std::stoi(item));
    }
    const std::size_t pool_size = argc > 5 ? static_cast<std::size_t>(std::atoi(argv[5])) : 10;
    const std::string leak = argc > 6 ? argv[6] : "off";
    if (runs < 1 || secs <= 0 || warm < 0 || pool_size < 1) {
        std::fprintf(stderr, "usage: pool_bench [runs>=1] [seconds>0] [warmup>=0] [threads,...] [pool>=1]\n");
        return 2;
    }
    std::printf("# poolbench %s, null://, runs=%d, %.1fs/run, warmup %.1fs, hardware threads %u\n", "pool",
                runs, secs, warm, std::thread::hardware_concurrency());
    std::printf("case\tthreads\tpool_size\tops_per_s_median\tmin\tmax\tavg_latency_us(threads/ops)\n");
    poolbench::PoolConfig cfg;
    cfg.name = "bench";
    cfg.max_size = pool_size;
    cfg.min_idle = pool_size;
    if (const char* st = std::getenv("POOLBENCH_STARVATION_US")) cfg.starvation_threshold = std::chrono::microseconds(std::atoll(st));
    std::string label = "poolbench_null_acquire_release";
    if (leak != "off") {
        cfg.leak_threshold = std::chrono::minutes(10);
        cfg.leak_trace_every = leak == "on" ? 1U : static_cast<std::uint32_t>(std::stoul(leak));
        label += leak == "on" ? "_leak_traced" : "_leak_sampled_1_in_" + leak;
    }
    poolbench::Pool pool(poolbench::make_driver("null://"), cfg);
    for (int i = 0; i < 2000 && pool.stats().idle < pool_size; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (int threads : thread_counts) {
        measure(pool, threads, warm);
        std::vector<double> v;
        for (int r = 0; r < runs; ++r) v.push_back(measure(pool, threads, secs));
        std::sort(v.begin(), v.end());
        const double med = v[v.size() / 2];
        std::printf("%s\t%d\t%zu\t%.0f\t%.0f\t%.0f\t%.3f\n", label.c_str(), threads, pool_size, med,
                    v.front(), v.back(), 1e6 * threads / med);
        std::fflush(stdout);
    }
    const auto s = pool.stats();
    std::printf("# pool stats: acquires %llu, hits %llu, waits %llu, peak_total %zu, acquire p99 %llu ns, "
                "acquire max %llu ns, usage p50 %llu ns\n",
                static_cast<unsigned long long>(s.acquires), static_cast<unsigned long long>(s.hits),
                static_cast<unsigned long long>(s.waits), s.peak_total,
                static_cast<unsigned long long>(s.acquire_wait.percentile(0.99)),
                static_cast<unsigned long long>(s.acquire_wait.max()),
                static_cast<unsigned long long>(s.usage.percentile(0.5)));
    return 0;
}
