// SQLite write benchmark: N threads committing one-row transactions into one database file
// (WAL), through run_in_transaction, with and without a WriterGate.
//   write_bench [seconds=3] [threads=1,8,100] [workload=insert|rmw] [pool=16] [busy_timeout_ms=5000]
//               [order=ungated-first|gated-first] [gate_threshold_us=default]
// order: which side of each thread count runs first (scripts/bench_writes.sh alternates it
// between rounds); gate_threshold_us: the gate's starvation_threshold (WriterGateOptions).
// WRITE_BENCH_GATE_STATS=1 prints the gate's turns, waits, barges, hand-offs and checkpoints to
// stderr; WRITE_BENCH_SQLITE_OPTIONS=K=V[&K=V] adds SQLite URL options (e.g. synchronous=off);
// WRITE_BENCH_ONLY=gated|ungated runs one side only (to measure its CPU time on its own).
// workload insert: BEGIN IMMEDIATE; INSERT; COMMIT.
// workload rmw:    BEGIN DEFERRED; SELECT max(id); INSERT it+1; COMMIT — a read-then-write
//                  whose lock upgrade fails with SQLITE_BUSY(_SNAPSHOT) under contention.
// Each point runs for a fixed time on a fresh file, then counts the rows: lost writes are
// commits that returned without error but are not in the file. One TSV line per point:
//   workload threads gate ops ops_s busy_errors other_errors retries lost p50_us p99_us max_us
// busy_errors are SQLITE_BUSY/LOCKED errors that reached the caller after the retry policy
// (10 attempts, full-jitter backoff 1..100 ms) gave up.
#include <poolbench/poolbench.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Point {
    std::uint64_t ops = 0;
    std::uint64_t busy = 0;
    std::uint64_t other = 0;
    std::uint64_t retries = 0;
    std::int64_t lost = 0;
    double secs = 0;
    poolbench::Histogram latency;  // ns per committed transaction, retries included
};

struct alignas(64) Worker {
    std::uint64_t ops = 0;
    std::uint64_t busy = 0;
    std::uint64_t other = 0;
    poolbench::Histogram latency;
};

std::string extra_options() {
    const char* const e = std::getenv("WRITE_BENCH_SQLITE_OPTIONS");
    return e != nullptr && *e != '\0' ? std::string("&") + e : std::string();
}

Point run_point(const std::string& workload, int threads, bool gated, double secs, std::size_t pool_size,
                int busy_timeout_ms, const poolbench::WriterGateOptions& gate_options) {
    const fs::path dir = fs::temp_directory_path() /
                         ("poolbench-write-bench-" + std::to_string(::getpid()) + "-" + std::to_string(threads) +
                          (gated ? "-gate" : "-nogate"));
    fs::remove_all(dir);
    fs::create_directories(dir);
    Point out;
    {
        poolbench::PoolConfig cfg;
        cfg.name = "write-bench";
        cfg.max_size = pool_size;
        cfg.acquire_timeout = std::chrono::milliseconds{60'000};
        poolbench::Pool pool(poolbench::make_driver("sqlite://" + (dir / "w.db").string() +
                                                    "?busy_timeout=" + std::to_string(busy_timeout_ms) + extra_options()),
                             cfg);
        {
            poolbench::Lease l = pool.acquire();
            l->execute("CREATE TABLE w (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
        }
        poolbench::WriterGate gate("w.db", gate_options);
        const bool rmw = workload == "rmw";
        const poolbench::TxOptions options{.sqlite_mode = rmw ? poolbench::SqliteMode::deferred
                                                              : poolbench::SqliteMode::immediate};
        const poolbench::RetryPolicy policy{.max_attempts = 10, .base = std::chrono::milliseconds{1},
                                            .max = std::chrono::milliseconds{100}};
        std::vector<Worker> workers(static_cast<std::size_t>(threads));
        std::atomic<bool> stop{false};
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) {
            ts.emplace_back([&, t] {
                Worker& w = workers[static_cast<std::size_t>(t)];
                ready.fetch_add(1);
                while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
                std::int64_t seq = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    const auto start = Clock::now();
                    try {
                        poolbench::run_in_transaction(
                            pool, options,
                            [&](poolbench::Transaction& tx) {
                                if (rmw) {
                                    const auto rows = tx.query("SELECT coalesce(max(id), 0) FROM w");
                                    tx.query("INSERT INTO w(v) VALUES (?1)", {poolbench::Value{rows.int_at(0) + 1}});
                                } else {
                                    tx.query("INSERT INTO w(v) VALUES (?1)",
                                             {poolbench::Value{std::int64_t{t} * 1'000'000'000 + seq}});
                                }
                            },
                            policy, gated ? &gate : nullptr);
                        ++w.ops;
                        ++seq;
                        w.latency.record(static_cast<std::uint64_t>(
                            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
                    } catch (const poolbench::QueryError& e) {
                        ++(e.is_busy() ? w.busy : w.other);
                    } catch (const std::exception&) {
                        ++w.other;
                    }
                }
            });
        }
        while (ready.load() < threads) std::this_thread::yield();
        const auto begin = Clock::now();
        go.store(true, std::memory_order_release);
        std::this_thread::sleep_for(std::chrono::duration<double>(secs));
        stop = true;
        for (auto& th : ts) th.join();
        out.secs = std::chrono::duration<double>(Clock::now() - begin).count();
        for (const auto& w : workers) {
            out.ops += w.ops;
            out.busy += w.busy;
            out.other += w.other;
            out.latency.merge(w.latency);
        }
        out.retries = pool.stats().transaction_retries;
        if (gated && std::getenv("WRITE_BENCH_GATE_STATS") != nullptr)
            std::fprintf(stderr, "gate: turns %llu waits %llu barges %llu handoffs %llu checkpoints %llu (skipped %llu)\n",
                         static_cast<unsigned long long>(gate.turns()), static_cast<unsigned long long>(gate.waits()),
                         static_cast<unsigned long long>(gate.barges()),
                         static_cast<unsigned long long>(gate.handoffs()),
                         static_cast<unsigned long long>(gate.checkpoints_run()),
                         static_cast<unsigned long long>(gate.checkpoints_skipped()));
        if (std::getenv("WRITE_BENCH_GATE_STATS") != nullptr) {
            std::error_code ec;
            const auto wal = fs::file_size(dir / "w.db-wal", ec);
            std::fprintf(stderr, "%s: WAL file %.1f MB\n", gated ? "gated" : "ungated",
                         ec ? -1.0 : static_cast<double>(wal) / 1e6);
        }
        poolbench::Lease l = pool.acquire();
        const auto rows = l->query("SELECT count(*) FROM w").int_at(0);
        out.lost = static_cast<std::int64_t>(out.ops) - rows;
    }
    fs::remove_all(dir);
    return out;
}

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const double secs = argc > 1 ? std::atof(argv[1]) : 3.0;
    const std::vector<int> threads = parse_list(argc > 2 ? argv[2] : "1,8,100");
    const std::string workload = argc > 3 ? argv[3] : "insert";
    const auto pool_size = static_cast<std::size_t>(argc > 4 ? std::atoi(argv[4]) : 16);
    const int busy_timeout_ms = argc > 5 ? std::atoi(argv[5]) : 5000;
    const std::string order = argc > 6 ? argv[6] : "ungated-first";
    poolbench::WriterGateOptions gate_options;
    bool threshold_ok = true;
    if (argc > 7) {
        // Whole decimal microseconds, nothing else; the range is checked by why_invalid().
        const char* const text = argv[7];
        char* end = nullptr;
        errno = 0;
        const long long us = std::strtoll(text, &end, 10);
        threshold_ok = end != text && *end == '\0' && errno == 0;
        if (threshold_ok) gate_options.starvation_threshold = std::chrono::microseconds{us};
    }
    if (secs <= 0 || threads.empty() || (workload != "insert" && workload != "rmw") || pool_size == 0 ||
        busy_timeout_ms < 0 || (order != "ungated-first" && order != "gated-first") ||
        !threshold_ok || !gate_options.why_invalid().empty()) {
        std::fprintf(stderr,
                     "usage: write_bench [seconds>0] [threads=1,8,100] [insert|rmw] [pool>0] [busy_timeout_ms>=0] "
                     "[ungated-first|gated-first] [gate_threshold_us=0..3600000000]\n");
        return 2;
    }
    const bool gated_first = order == "gated-first";
    std::printf("workload\tthreads\tgate\tops\tops_s\tbusy_errors\tother_errors\tretries\tlost\tp50_us\tp99_us\tmax_us\n");
    int status = 0;
    for (const int t : threads) {
        for (const bool gated : {gated_first, !gated_first}) {
            if (const char* only = std::getenv("WRITE_BENCH_ONLY"); only != nullptr && (only == std::string("gated")) != gated)
                continue;
            const Point p = run_point(workload, t, gated, secs, pool_size, busy_timeout_ms, gate_options);
            std::printf("%s\t%d\t%s\t%llu\t%.0f\t%llu\t%llu\t%llu\t%lld\t%.1f\t%.1f\t%.1f\n", workload.c_str(), t,
                        gated ? "yes" : "no", static_cast<unsigned long long>(p.ops),
                        static_cast<double>(p.ops) / p.secs, static_cast<unsigned long long>(p.busy),
                        static_cast<unsigned long long>(p.other), static_cast<unsigned long long>(p.retries),
                        static_cast<long long>(p.lost), static_cast<double>(p.latency.percentile(0.50)) / 1e3,
                        static_cast<double>(p.latency.percentile(0.99)) / 1e3,
                        static_cast<double>(p.latency.max()) / 1e3);
            std::fflush(stdout);
            if (p.lost != 0) status = 1;
        }
    }
    return status;
}
