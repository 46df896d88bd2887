// Transactions, savepoints, lock modes and the WriterGate against real SQLite files.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/poolbench.hpp>

#include <unistd.h>

#include <atomic>
#include <optional>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::QueryError;
using poolbench::SqliteMode;
using poolbench::Transaction;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
class TxTempDir {
public:
    TxTempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("poolbench-tx-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(rd()) + "-" + std::to_string(counter_++));
        fs::create_directories(path_);
    }
    TxTempDir(const TxTempDir&) = delete;
    TxTempDir& operator=(const TxTempDir&) = delete;
    ~TxTempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    [[nodiscard]] std::string url(const std::string& options = "") const {
        return "sqlite://" + (path_ / "tx.db").string() + (options.empty() ? "" : "?" + options);
    }

private:
    static inline std::atomic<int> counter_{0};
    fs::path path_;
};

poolbench::PoolConfig config(std::size_t max_size) {
    poolbench::PoolConfig c;
    c.name = "sqlite-tx";
    c.max_size = max_size;
    c.acquire_timeout = 30'000ms;
    return c;
}

std::int64_t count_rows(Pool& pool, const std::string& table = "t") {
    Lease l = pool.acquire();
    return l->query("SELECT count(*) FROM " + table).int_at(0);
}

std::vector<std::int64_t> values(Pool& pool) {
    Lease l = pool.acquire();
    const auto rows = l->query("SELECT v FROM t ORDER BY v");
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < rows.size(); ++i) out.push_back(rows.int_at(i));
    return out;
}

void create_table(Pool& pool) {
    Lease l = pool.acquire();
    l->execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
}

}  // namespace

TEST_CASE("SQLite: rolling back a savepoint keeps the outer transaction's work", "[sqlite][tx]") {
    TxTempDir dir;
    Pool pool(poolbench::make_driver(dir.url()), config(2));
    create_table(pool);
    {
        Lease lease = pool.acquire();
        Transaction outer(lease, pool, {.sqlite_mode = SqliteMode::immediate});
        outer.execute("INSERT INTO t(v) VALUES (1)");
        {
            Transaction inner(outer);
            inner.execute("INSERT INTO t(v) VALUES (2)");
            {
                Transaction deepest(inner);
                deepest.execute("INSERT INTO t(v) VALUES (3)");
                deepest.commit();  // merged into `inner`...
            }
            inner.rollback();  // ...and undone with it
        }
        {
            Transaction inner(outer);
            inner.execute("INSERT INTO t(v) VALUES (4)");
            inner.commit();
        }
        CHECK(outer.query("SELECT count(*) FROM t").int_at(0) == 2);
        outer.commit();
    }
    CHECK(values(pool) == std::vector<std::int64_t>{1, 4});
}

TEST_CASE("SQLite: an exception inside a transaction rolls it back", "[sqlite][tx]") {
    TxTempDir dir;
    Pool pool(poolbench::make_driver(dir.url()), config(2));
    create_table(pool);
    SECTION("Transaction on a lease") {
        Lease lease = pool.acquire();
        CHECK_THROWS_WITH(([&] {
                              Transaction tx(lease, pool);
                              tx.execute("INSERT INTO t(v) VALUES (1)");
                              throw std::runtime_error("boom");
                          }()),
                          "boom");
        CHECK_FALSE(lease->in_transaction());
    }
    SECTION("run_in_transaction: a non-retryable error propagates after rollback") {
        CHECK_THROWS_AS(poolbench::run_in_transaction(pool, {}, [](Transaction& tx) {
                            tx.execute("INSERT INTO t(v) VALUES (1)");
                            tx.execute("INSERT INTO t(v) VALUES (NULL)");  // NOT NULL constraint
                        }),
                        QueryError);
        CHECK(pool.stats().transaction_retries == 0);
    }
    CHECK(count_rows(pool) == 0);
}

TEST_CASE("SQLite: a lease returned with an open transaction comes back clean", "[sqlite][tx]") {
    TxTempDir dir;
    Pool pool(poolbench::make_driver(dir.url()), config(1));
    create_table(pool);
    Lease lease = pool.acquire();
    auto stale =
        std::make_unique<Transaction>(lease, pool, poolbench::TxOptions{.sqlite_mode = SqliteMode::immediate});
    stale->execute("INSERT INTO t(v) VALUES (1)");
    lease.release();  // the transaction is still open: the pool rolls it back

    Lease again = pool.acquire();  // max_size 1: the same connection
    CHECK_FALSE(again->in_transaction());
    CHECK(again->query("SELECT count(*) FROM t").int_at(0) == 0);
    CHECK_THROWS_AS(stale->execute("INSERT INTO t(v) VALUES (2)"), poolbench::UsageError);
    stale.reset();  // harmless: touches nothing
    CHECK_FALSE(again->in_transaction());
    {
        Transaction tx(again, pool, {.sqlite_mode = SqliteMode::immediate});  // the write lock is free
        tx.execute("INSERT INTO t(v) VALUES (3)");
        tx.commit();
    }
    again.release();
    CHECK(values(pool) == std::vector<std::int64_t>{3});
}

TEST_CASE("SQLite: a DEFERRED read-then-write fails busy at once, and IMMEDIATE waits and succeeds", "[sqlite][tx]") {
    TxTempDir dir;
    SECTION("DEFERRED: the upgrade fails with SQLITE_BUSY without waiting out busy_timeout") {
        // A long busy timeout: if SQLite waited for the lock, the failure would take 5 s.
        Pool pool(poolbench::make_driver(dir.url("busy_timeout=5000")), config(3));
        create_table(pool);
        Lease a = pool.acquire();
        Lease b = pool.acquire();
        Transaction ta(a, pool, {.sqlite_mode = SqliteMode::deferred});
        Transaction tb(b, pool, {.sqlite_mode = SqliteMode::deferred});
        CHECK(ta.query("SELECT count(*) FROM t").int_at(0) == 0);
        CHECK(tb.query("SELECT count(*) FROM t").int_at(0) == 0);
        ta.execute("INSERT INTO t(v) VALUES (1)");  // A takes the write lock
        const auto start = std::chrono::steady_clock::now();
        try {
            tb.execute("INSERT INTO t(v) VALUES (2)");
            FAIL("B's write should have failed with SQLITE_BUSY");
        } catch (const QueryError& e) {
            const auto took = std::chrono::steady_clock::now() - start;
            INFO("code " << e.code() << " after "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
            CHECK(e.is_busy());
            CHECK(poolbench::is_retryable(e));
            CHECK(took < 2500ms);  // did not wait in the busy handler
        }
        ta.commit();
        // B's snapshot is now stale: even with the lock free its write cannot succeed.
        try {
            tb.execute("INSERT INTO t(v) VALUES (2)");
            FAIL("B's write on a stale snapshot should fail");
        } catch (const QueryError& e) {
            INFO("code " << e.code());
            CHECK(e.code() == "SQLITE_BUSY_SNAPSHOT");
        }
        tb.rollback();
        CHECK(count_rows(pool) == 1);
    }
    SECTION("IMMEDIATE: the second writer waits in BEGIN, then succeeds") {
        Pool pool(poolbench::make_driver(dir.url("busy_timeout=10000")), config(3));
        create_table(pool);
        Lease a = pool.acquire();
        Transaction ta(a, pool, {.sqlite_mode = SqliteMode::immediate});
        CHECK(ta.query("SELECT count(*) FROM t").int_at(0) == 0);
        ta.execute("INSERT INTO t(v) VALUES (1)");

        std::atomic<bool> starting{false};
        std::atomic<bool> began{false};
        std::string error;
        std::chrono::steady_clock::duration waited{};
        std::thread writer_b([&] {
            try {
                Lease b = pool.acquire();
                starting = true;
                const auto start = std::chrono::steady_clock::now();
                Transaction tb(b, pool, {.sqlite_mode = SqliteMode::immediate});
                waited = std::chrono::steady_clock::now() - start;
                began = true;
                CHECK(tb.query("SELECT count(*) FROM t").int_at(0) == 1);  // sees A's commit
                tb.execute("INSERT INTO t(v) VALUES (2)");
                tb.commit();
            } catch (const std::exception& e) {
                error = e.what();
            }
        });
        REQUIRE(pbtest::eventually([&] { return starting.load(); }));
        pbtest::hold_for(100ms);  // the scenario: A holds the write lock for a while
        CHECK_FALSE(began.load());
        ta.commit();
        writer_b.join();
        INFO("B waited " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms");
        CHECK(error.empty());
        CHECK(began.load());
        CHECK(count_rows(pool) == 2);
    }
}

TEST_CASE("SQLite: EXCLUSIVE keeps readers out in rollback-journal mode", "[sqlite][tx]") {
    TxTempDir dir;
    Pool pool(poolbench::make_driver(dir.url("journal_mode=DELETE&busy_timeout=50")), config(2));
    create_table(pool);
    Lease a = pool.acquire();
    Lease b = pool.acquire();
    REQUIRE(a->query("PRAGMA journal_mode").rows.at(0).at(0) == poolbench::Value{std::string("delete")});
    {
        Transaction ta(a, pool, {.sqlite_mode = SqliteMode::exclusive});
        ta.execute("INSERT INTO t(v) VALUES (1)");
        try {
            (void)b->query("SELECT count(*) FROM t");
            FAIL("B's read should have failed while A holds EXCLUSIVE");
        } catch (const QueryError& e) {
            INFO("code " << e.code());
            CHECK(e.is_busy());
        }
        ta.commit();
    }
    CHECK(b->query("SELECT count(*) FROM t").int_at(0) == 1);

    SECTION("while DEFERRED after a write lets readers in until commit") {
        Transaction ta(a, pool, {.sqlite_mode = SqliteMode::deferred});
        ta.execute("INSERT INTO t(v) VALUES (2)");  // RESERVED: readers still read the old state
        CHECK(b->query("SELECT count(*) FROM t").int_at(0) == 1);
        ta.commit();
    }
}

TEST_CASE("SQLite: 100 writers through a WriterGate: no busy errors, no retries, no lost writes",
          "[sqlite][tx][gate][stress]") {
    constexpr int threads = 100;
    constexpr int per_thread = 50;
    TxTempDir dir;
    Pool pool(poolbench::make_driver(dir.url("busy_timeout=5000")), config(16));
    create_table(pool);
    std::optional<poolbench::WriterGate> gate_holder(std::in_place, "tx.db");
    poolbench::WriterGate& gate = *gate_holder;

    std::atomic<int> errors{0};
    std::atomic<int> busy{0};
    std::atomic<int> acknowledged{0};
    std::atomic<bool> done{false};
    std::atomic<int> reads{0};
    std::atomic<int> read_errors{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
        readers.emplace_back([&] {
            std::int64_t last = 0;
            while (!done.load()) {
                try {
                    Lease l = pool.acquire();  // readers do not use the gate
                    const auto n = l->query("SELECT count(*) FROM t").int_at(0);
                    if (n < last) read_errors.fetch_add(1);  // committed rows never disappear
                    last = n;
                    reads.fetch_add(1);
                } catch (const std::exception&) {
                    read_errors.fetch_add(1);
                }
            }
        });
    }
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                try {
                    poolbench::run_in_transaction(
                        pool, {.sqlite_mode = SqliteMode::immediate},
                        [&](Transaction& tx) {
                            tx.query("INSERT INTO t(v) VALUES (?1)", {poolbench::Value{std::int64_t{t * 1000 + i}}});
                        },
                        {}, &gate);
                    acknowledged.fetch_add(1);
                } catch (const QueryError& e) {
                    errors.fetch_add(1);
                    if (e.is_busy()) busy.fetch_add(1);
                } catch (const std::exception&) {
                    errors.fetch_add(1);
                }
            }
        });
    }
    for (auto& w : writers) w.join();
    done = true;
    for (auto& r : readers) r.join();

    const std::uint64_t turns = gate.turns();
    INFO("gate turns " << turns << ", queued " << gate.waits() << "; reads " << reads.load());
    // The gate's thread may still hold a lease for a WAL checkpoint: its destructor waits.
    gate_holder.reset();
    const auto stats = pool.stats();
    CHECK(errors.load() == 0);
    CHECK(busy.load() == 0);
    CHECK(stats.transaction_retries == 0);
    CHECK(acknowledged.load() == threads * per_thread);
    CHECK(count_rows(pool) == threads * per_thread);  // zero lost writes
    CHECK(turns == static_cast<std::uint64_t>(threads * per_thread));
    CHECK(read_errors.load() == 0);
    CHECK(stats.active == 0);
}

TEST_CASE("SQLite: 100 writers without a gate (comparison: retries recorded, nothing lost)",
          "[sqlite][tx][stress]") {
    constexpr int threads = 100;
    constexpr int per_thread = 50;
    TxTempDir dir;
    // A short busy timeout so contention shows up as retries rather than long waits.
    Pool pool(poolbench::make_driver(dir.url("busy_timeout=50")), config(16));
    create_table(pool);
    const poolbench::RetryPolicy policy{.max_attempts = 100, .base = 1ms, .max = 50ms};

    std::atomic<int> acknowledged{0};
    std::atomic<int> busy_surfaced{0};
    std::atomic<int> other_errors{0};
    std::vector<std::thread> writers;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                try {
                    poolbench::run_in_transaction(
                        pool, {.sqlite_mode = SqliteMode::immediate},
                        [&](Transaction& tx) {
                            tx.query("INSERT INTO t(v) VALUES (?1)", {poolbench::Value{std::int64_t{t * 1000 + i}}});
                        },
                        policy);
                    acknowledged.fetch_add(1);
                } catch (const QueryError& e) {
                    (e.is_busy() ? busy_surfaced : other_errors).fetch_add(1);
                } catch (const std::exception&) {
                    other_errors.fetch_add(1);
                }
            }
        });
    }
    for (auto& w : writers) w.join();
    const auto took = std::chrono::steady_clock::now() - start;
    const auto stats = pool.stats();
    INFO("no gate: " << acknowledged.load() << " committed, " << stats.transaction_retries << " retries, "
                     << busy_surfaced.load() << " busy errors surfaced, in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(other_errors.load() == 0);
    CHECK(count_rows(pool) == acknowledged.load());  // whatever was acknowledged is there
}
