// Transaction, savepoints, run_in_transaction and WriterGate against fake drivers: the
// statements issued, the misuse rules, and the retry loop's counting.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"
#include "../../lib/src/backoff.hpp"

#include <poolbench/poolbench.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Backend;
using poolbench::Isolation;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::QueryError;
using poolbench::SqliteMode;
using poolbench::Transaction;
using poolbench::TxOptions;
using poolbench::UsageError;

namespace {

/// What the recording connections saw and what they should fail.
struct Script {
    std::mutex m;
    std::vector<std::string> log;  // every execute/query text, plus "<reset>"
    struct Failure {
        std::string code;
        int times = 0;
    };
    std::map<std::string, Failure> fail;  // statement prefix -> error to throw, how often
    std::atomic<int> resets{0};

    void record(std::string_view sql) {
        std::lock_guard lock(m);
        log.emplace_back(sql);
    }
    std::vector<std::string> take() {
        std::lock_guard lock(m);
        auto out = std::move(log);
        log.clear();
        return out;
    }
    void fail_next(const std::string& prefix, const std::string& code, int times) {
        std::lock_guard lock(m);
        fail[prefix] = Failure{code, times};
    }
    /// Throws the scripted error for `sql`, if any is left.
    void maybe_fail(std::string_view sql) {
        std::lock_guard lock(m);
        for (auto& [prefix, f] : fail) {
            if (f.times > 0 && sql.substr(0, prefix.size()) == prefix) {
                --f.times;
                const bool sqlite = f.code.rfind("SQLITE", 0) == 0;
                throw QueryError("scripted failure " + f.code + " in: " + std::string(sql), f.code, sqlite ? 5 : 0,
                                 false);
            }
        }
    }
};

class RecordingConnection final : public poolbench::Connection {
public:
    explicit RecordingConnection(std::shared_ptr<Script> s) : s_(std::move(s)) {}
    void execute(std::string_view sql) override {
        s_->record(sql);
        s_->maybe_fail(sql);
        if (sql.rfind("BEGIN", 0) == 0) in_tx_ = true;
        else if (sql == "COMMIT" || sql == "ROLLBACK") in_tx_ = false;
    }
    poolbench::Rows query(std::string_view sql, std::span<const poolbench::Value>) override {
        s_->record(sql);
        s_->maybe_fail(sql);
        poolbench::Rows r;
        r.rows.push_back({poolbench::Value{std::int64_t{7}}});
        return r;
    }
    bool ping() noexcept override { return true; }
    void reset() override {
        s_->resets.fetch_add(1);
        s_->record("<reset>");
        in_tx_ = false;
    }
    void interrupt() noexcept override {}
    [[nodiscard]] bool is_broken() const noexcept override { return false; }
    [[nodiscard]] bool in_transaction() const noexcept override { return in_tx_; }

private:
    std::shared_ptr<Script> s_;
    bool in_tx_ = false;
};

class RecordingDriver final : public poolbench::Driver {
public:
    explicit RecordingDriver(Backend backend) : backend_(backend), s_(std::make_shared<Script>()) {}
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        return std::make_unique<RecordingConnection>(s_);
    }
    [[nodiscard]] Backend backend() const noexcept override { return backend_; }
    [[nodiscard]] std::string describe() const override { return "recording://" + std::string(to_string(backend_)); }
    Script& script() { return *s_; }

private:
    Backend backend_;
    std::shared_ptr<Script> s_;
};

poolbench::PoolConfig config(const std::string& name, std::size_t max_size) {
    poolbench::PoolConfig c;
    c.name = name;
    c.max_size = max_size;
    c.acquire_timeout = 5000ms;
    return c;
}

struct Fixture {
    explicit Fixture(Backend backend = Backend::sqlite, std::size_t max_size = 2)
        : driver(std::make_shared<RecordingDriver>(backend)),
          pool(driver, config("tx-unit", max_size)) {}
    Script& script() { return driver->script(); }
    std::shared_ptr<RecordingDriver> driver;
    Pool pool;
};

using Log = std::vector<std::string>;


}  // namespace

TEST_CASE("BEGIN statement per backend and options", "[unit][tx]") {
    using poolbench::begin_statement;
    CHECK(begin_statement(Backend::sqlite, {}) == "BEGIN DEFERRED");
    CHECK(begin_statement(Backend::sqlite, {.sqlite_mode = SqliteMode::immediate}) == "BEGIN IMMEDIATE");
    CHECK(begin_statement(Backend::sqlite, {.sqlite_mode = SqliteMode::exclusive}) == "BEGIN EXCLUSIVE");
    // SQLite is serializable whatever is asked: the isolation level is not sent.
    CHECK(begin_statement(Backend::sqlite, {.isolation = Isolation::serializable}) == "BEGIN DEFERRED");
    CHECK_THROWS_AS(begin_statement(Backend::sqlite, {.read_only = true}), UsageError);
    CHECK_THROWS_AS(begin_statement(Backend::sqlite, {.deferrable = true}), UsageError);
    CHECK(begin_statement(Backend::postgresql, {}) == "BEGIN");
    CHECK(begin_statement(Backend::postgresql, {.sqlite_mode = SqliteMode::immediate}) == "BEGIN");
    CHECK(begin_statement(Backend::postgresql, {.isolation = Isolation::read_committed}) ==
          "BEGIN ISOLATION LEVEL READ COMMITTED");
    CHECK(begin_statement(Backend::postgresql, {.isolation = Isolation::repeatable_read}) ==
          "BEGIN ISOLATION LEVEL REPEATABLE READ");
    CHECK(begin_statement(Backend::postgresql,
                          {.isolation = Isolation::serializable, .read_only = true, .deferrable = true}) ==
          "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE");
    CHECK(begin_statement(Backend::null, {.sqlite_mode = SqliteMode::exclusive}) == "BEGIN");
}

TEST_CASE("Transaction commits explicitly and rolls back otherwise", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    Lease lease = f.pool.acquire();

    SECTION("commit") {
        {
            Transaction tx(lease, f.pool, {.sqlite_mode = SqliteMode::immediate});
            CHECK(tx.is_open());
            CHECK(tx.depth() == 0);
            CHECK(tx.backend() == Backend::sqlite);
            CHECK(lease->in_transaction());
            tx.execute("INSERT 1");
            CHECK(tx.query("SELECT 1").int_at(0) == 7);
            tx.commit();
            CHECK_FALSE(tx.is_open());
        }
        CHECK(f.script().take() == Log{"BEGIN IMMEDIATE", "INSERT 1", "SELECT 1", "COMMIT"});
        CHECK_FALSE(lease->in_transaction());
    }
    SECTION("destructor rolls back") {
        { Transaction tx(lease, Backend::sqlite); tx.execute("INSERT 1"); }
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "INSERT 1", "ROLLBACK"});
    }
    SECTION("an exception rolls back") {
        CHECK_THROWS_WITH(([&] {
                              Transaction tx(lease, f.pool);
                              tx.execute("INSERT 1");
                              throw std::runtime_error("body failed");
                          }()),
                          "body failed");
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "INSERT 1", "ROLLBACK"});
        CHECK_FALSE(lease->in_transaction());
    }
    SECTION("explicit rollback, and the destructor then does nothing") {
        {
            Transaction tx(lease, f.pool);
            tx.rollback();
            CHECK_FALSE(tx.is_open());
        }
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "ROLLBACK"});
    }
    SECTION("a failed BEGIN leaves nothing open") {
        f.script().fail_next("BEGIN", "SQLITE_BUSY", 1);
        CHECK_THROWS_AS(Transaction(lease, f.pool, {.sqlite_mode = SqliteMode::immediate}), QueryError);
        CHECK(f.script().take() == Log{"BEGIN IMMEDIATE"});
    }
    SECTION("a failed COMMIT ends the transaction; the destructor rolls back what is left open") {
        {
            Transaction tx(lease, f.pool);
            f.script().fail_next("COMMIT", "SQLITE_BUSY", 1);
            CHECK_THROWS_AS(tx.commit(), QueryError);
            CHECK_FALSE(tx.is_open());
            CHECK_THROWS_AS(tx.commit(), UsageError);
        }
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "COMMIT", "ROLLBACK"});
    }
}

TEST_CASE("Transaction on PostgreSQL and null backends sends their BEGIN", "[unit][tx]") {
    SECTION("postgresql") {
        Fixture f(Backend::postgresql);
        Lease lease = f.pool.acquire();
        {
            Transaction tx(lease, f.pool, {.isolation = Isolation::serializable, .read_only = true});
            tx.commit();
        }
        CHECK(f.script().take() == Log{"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", "COMMIT"});
    }
    SECTION("null (and unknown drivers): plain BEGIN") {
        auto driver = std::make_shared<pbtest::TestDriver>();
        Pool pool(driver, config("tx-null", 1));
        Lease lease = pool.acquire();
        Transaction tx(lease, pool, {.sqlite_mode = SqliteMode::exclusive});
        CHECK(tx.backend() == Backend::null);
        CHECK(lease->in_transaction());  // TestConnection saw exactly "BEGIN"
        tx.commit();
        CHECK_FALSE(lease->in_transaction());
    }
}

TEST_CASE("Transaction misuse throws UsageError", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    Lease lease = f.pool.acquire();

    SECTION("commit twice, rollback after commit, statements after the end") {
        Transaction tx(lease, f.pool);
        tx.commit();
        CHECK_THROWS_AS(tx.commit(), UsageError);
        CHECK_THROWS_AS(tx.rollback(), UsageError);
        CHECK_THROWS_AS(tx.execute("INSERT 1"), UsageError);
        CHECK_THROWS_AS(tx.query("SELECT 1"), UsageError);
        CHECK_THROWS_WITH(tx.commit(), Catch::Contains("already been committed"));
    }
    SECTION("an empty lease") {
        Lease empty;
        CHECK_THROWS_AS(Transaction(empty, Backend::sqlite), UsageError);
    }
    SECTION("a second outermost transaction on the same connection") {
        Transaction tx(lease, f.pool);
        CHECK_THROWS_WITH(Transaction(lease, f.pool), Catch::Contains("already in a transaction"));
        tx.commit();
    }
    SECTION("read_only on SQLite") {
        CHECK_THROWS_AS(Transaction(lease, f.pool, {.read_only = true}), UsageError);
        CHECK(f.script().take().empty());
    }
}

TEST_CASE("Nested transactions are uniquely named savepoints", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    Lease lease = f.pool.acquire();
    {
        Transaction outer(lease, f.pool);
        outer.execute("A");
        {
            Transaction inner(outer);
            CHECK(inner.depth() == 1);
            CHECK(inner.savepoint() == "pb_sp_1");
            inner.execute("B");
            {
                Transaction inner2 = inner.nested();
                CHECK(inner2.depth() == 2);
                CHECK(inner2.savepoint() == "pb_sp_2");
                inner2.execute("C");
            }  // rolled back: C undone, B kept
            inner.commit();
        }
        {
            Transaction again(outer);
            CHECK(again.savepoint() == "pb_sp_3");  // never reused within one outermost transaction
            again.rollback();
        }
        outer.execute("D");
        outer.commit();
    }
    CHECK(f.script().take() == Log{"BEGIN DEFERRED",
                                   "A",
                                   "SAVEPOINT pb_sp_1",
                                   "B",
                                   "SAVEPOINT pb_sp_2",
                                   "C",
                                   "ROLLBACK TO SAVEPOINT pb_sp_2",
                                   "RELEASE SAVEPOINT pb_sp_2",
                                   "RELEASE SAVEPOINT pb_sp_1",
                                   "SAVEPOINT pb_sp_3",
                                   "ROLLBACK TO SAVEPOINT pb_sp_3",
                                   "RELEASE SAVEPOINT pb_sp_3",
                                   "D",
                                   "COMMIT"});

    SECTION("a new outermost transaction counts from 1 again") {
        Transaction outer(lease, f.pool);
        Transaction inner(outer);
        CHECK(inner.savepoint() == "pb_sp_1");
    }
}

TEST_CASE("Only the innermost open transaction may be used", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    Lease lease = f.pool.acquire();
    Transaction outer(lease, f.pool);
    {
        Transaction inner(outer);
        CHECK_THROWS_WITH(outer.execute("X"), Catch::Contains("savepoint pb_sp_1"));
        CHECK_THROWS_AS(outer.query("SELECT 1"), UsageError);
        CHECK_THROWS_AS(outer.commit(), UsageError);
        CHECK_THROWS_AS(outer.rollback(), UsageError);
        CHECK_THROWS_AS(outer.connection(), UsageError);
        CHECK_THROWS_AS(Transaction(outer), UsageError);  // nest in the innermost instead
        CHECK(outer.is_open());
        inner.execute("OK");
        inner.commit();
    }
    outer.execute("OK again");  // usable once the inner one has ended
    outer.commit();
    const Log log = f.script().take();
    CHECK(std::count(log.begin(), log.end(), "X") == 0);
    CHECK(log.back() == "COMMIT");
}

TEST_CASE("An outer transaction destroyed before its inner one rolls back everything", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    Lease lease = f.pool.acquire();
    auto outer = std::make_unique<Transaction>(lease, f.pool);
    auto inner = std::make_unique<Transaction>(*outer);
    outer.reset();
    CHECK_FALSE(inner->is_open());
    CHECK_THROWS_AS(inner->execute("X"), UsageError);
    inner.reset();  // does nothing
    CHECK(f.script().take() == Log{"BEGIN DEFERRED", "SAVEPOINT pb_sp_1", "ROLLBACK"});
}

TEST_CASE("A transaction that outlives its lease's connection refuses to run", "[unit][tx]") {
    Fixture f(Backend::sqlite, 1);
    Lease lease = f.pool.acquire();

    SECTION("lease released") {
        {
            Transaction tx(lease, f.pool);
            tx.execute("A");
            lease.release();  // the pool's reset rolls back
            CHECK_THROWS_WITH(tx.execute("B"), Catch::Contains("no longer holds its connection"));
            CHECK_THROWS_AS(tx.commit(), UsageError);
        }  // destructor: nothing
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "A", "<reset>"});
    }
    SECTION("lease moved from") {
        Lease other;
        {
            Transaction tx(lease, f.pool);
            other = std::move(lease);
            CHECK_THROWS_AS(tx.execute("B"), UsageError);
        }
        // The moved-to lease still has the open transaction; the destructor left it alone.
        CHECK(f.script().take() == Log{"BEGIN DEFERRED"});
        CHECK(other->in_transaction());
    }
    SECTION("lease released and the same connection acquired again into it") {
        {
            Transaction tx(lease, f.pool);
            lease.release();
            lease = f.pool.acquire();  // max_size 1: the very same connection, reset
            CHECK_THROWS_WITH(tx.execute("B"), Catch::Contains("no longer in a transaction"));
        }
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "<reset>"});
    }
    SECTION("transaction ended behind its back") {
        Transaction tx(lease, f.pool);
        lease->execute("COMMIT");
        CHECK_THROWS_AS(tx.execute("B"), UsageError);
    }
}

TEST_CASE("A failing savepoint rollback closes the connection and stops the outer commit", "[unit][tx]") {
    Fixture f(Backend::sqlite, 1);
    {
        Lease lease = f.pool.acquire();
        Transaction outer(lease, f.pool);
        {
            Transaction inner(outer);
            inner.execute("B");
            f.script().fail_next("ROLLBACK TO", "SQLITE_IOERR", 1);
        }  // destructor: rollback fails, swallowed
        CHECK_THROWS_AS(outer.commit(), QueryError);  // the failed rollback's error
        CHECK_FALSE(outer.is_open());
    }
    const Log log = f.script().take();
    CHECK(std::find(log.begin(), log.end(), "COMMIT") == log.end());
    // The invalidated lease's connection was destroyed, not reused.
    const auto stats = f.pool.stats();
    CHECK(stats.destroyed == 1);
    CHECK(stats.destroyed_by_reason[static_cast<std::size_t>(poolbench::DestroyReason::broken)] == 1);
}

TEST_CASE("is_retryable: busy, locked, serialization failure and deadlock", "[unit][tx]") {
    using poolbench::is_retryable;
    CHECK(is_retryable(QueryError("", "SQLITE_BUSY", 5, false)));
    CHECK(is_retryable(QueryError("", "SQLITE_BUSY_SNAPSHOT", 517, false)));
    CHECK(is_retryable(QueryError("", "SQLITE_LOCKED", 6, false)));
    CHECK(is_retryable(QueryError("", "40001", 0, false)));
    CHECK(is_retryable(QueryError("", "40P01", 0, false)));
    CHECK_FALSE(is_retryable(QueryError("", "23505", 0, false)));
    CHECK_FALSE(is_retryable(QueryError("", "SQLITE_CONSTRAINT", 19, false)));
    CHECK_FALSE(is_retryable(std::runtime_error("x")));
    CHECK_FALSE(is_retryable(poolbench::PoolTimeout("t", 1ms, 1, 1, 0)));
}

TEST_CASE("retry backoff is full jitter under an exponential ceiling", "[unit][tx]") {
    // The one backoff (lib/src/backoff.hpp): run_in_transaction's and the connector's.
    const poolbench::RetryPolicy policy{.max_attempts = 10, .base = 2ms, .max = 20ms};
    for (int retry = 1; retry <= 8; ++retry) {
        const long long ceiling = std::min(2000LL << (retry - 1), 20000LL);
        long long top = 0;
        for (int i = 0; i < 200; ++i) {
            const auto d = std::chrono::duration_cast<std::chrono::microseconds>(
                               poolbench::internal::backoff(policy, retry)).count();
            CHECK(d >= 0);
            CHECK(d <= ceiling);
            top = std::max<long long>(top, d);
        }
        CHECK(top > ceiling / 2);  // jitter spans the range, not a fixed pause
    }
    CHECK(poolbench::internal::backoff({.base = 0ms}, 3).count() == 0);
    // The connector's defaults: 10 ms doubling to at most 1 s, whatever the retry number.
    const poolbench::RetryPolicy connect = poolbench::PoolConfig{}.connect_retry;
    CHECK(connect.max_attempts == 3);
    for (const int retry : {1, 7, 8, 40, 1000}) {
        const std::chrono::milliseconds ceiling{std::min(10LL << std::min(retry - 1, 20), 1000LL)};
        for (int i = 0; i < 50; ++i) CHECK(poolbench::internal::backoff(connect, retry) <= ceiling);
    }
}

TEST_CASE("RetryPolicy is validated in one place, for the connector and run_in_transaction alike", "[unit][tx]") {
    CHECK(poolbench::RetryPolicy{}.why_invalid().empty());
    CHECK(poolbench::PoolConfig{}.connect_retry.why_invalid().empty());
    CHECK(poolbench::RetryPolicy{.max_attempts = 1, .base = 0ms, .max = 0ms}.why_invalid().empty());
    CHECK(poolbench::RetryPolicy{.max_attempts = 0}.why_invalid() ==
          "max_attempts is 0; it must be at least 1 (1 = no retries)");
    CHECK(poolbench::RetryPolicy{.max_attempts = 2, .base = -1ms, .max = 5ms}.why_invalid() ==
          "base is negative (-1 ms); use 0 for no pause");
    CHECK(poolbench::RetryPolicy{.max_attempts = 2, .base = 5ms, .max = 1ms}.why_invalid() ==
          "max (1 ms) is below base (5 ms); raise max or lower base");

    Fixture f(Backend::sqlite);
    int runs = 0;
    auto body = [&runs](Transaction&) { ++runs; };
    // max below base used to be accepted here (capped at max) while PoolConfig refused it:
    // one rule now, checked before anything runs.
    CHECK_THROWS_WITH(poolbench::run_in_transaction(f.pool, {}, body, {.max_attempts = 3, .base = 5ms, .max = 1ms}),
                      "RetryPolicy::max (1 ms) is below base (5 ms); raise max or lower base");
    CHECK_THROWS_WITH(poolbench::run_in_transaction(f.pool, {}, body, {.max_attempts = 0}),
                      "RetryPolicy::max_attempts is 0; it must be at least 1 (1 = no retries)");
    CHECK(runs == 0);
    CHECK(f.script().take().empty());
}

TEST_CASE("run_in_transaction commits and returns the body's result", "[unit][tx]") {
    Fixture f(Backend::sqlite);
    const auto n = poolbench::run_in_transaction(f.pool, {.sqlite_mode = SqliteMode::immediate},
                                                 [](Transaction& tx) {
                                                     tx.execute("INSERT 1");
                                                     return tx.query("SELECT n").int_at(0) + 1;
                                                 });
    CHECK(n == 8);
    CHECK(f.script().take() == Log{"BEGIN IMMEDIATE", "INSERT 1", "SELECT n", "COMMIT"});
    CHECK(f.pool.stats().transaction_retries == 0);
    CHECK(f.pool.stats().active == 0);

    SECTION("void body; a body that ends the transaction itself is respected") {
        poolbench::run_in_transaction(f.pool, {}, [](Transaction& tx) { tx.rollback(); });
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "ROLLBACK"});
    }
}

TEST_CASE("run_in_transaction re-runs the body on busy and serialization errors", "[unit][tx]") {
    const poolbench::RetryPolicy fast{.max_attempts = 5, .base = 0ms, .max = 0ms};
    int runs = 0;
    auto body = [&runs](Transaction& tx) {
        ++runs;
        tx.execute("INSERT 1");
        return runs;
    };

    SECTION("SQLITE_BUSY on a statement, twice") {
        Fixture f(Backend::sqlite);
        f.script().fail_next("INSERT", "SQLITE_BUSY", 2);
        CHECK(poolbench::run_in_transaction(f.pool, {}, body, fast) == 3);
        CHECK(f.pool.stats().transaction_retries == 2);
        CHECK(f.script().take() == Log{"BEGIN DEFERRED", "INSERT 1", "ROLLBACK", "BEGIN DEFERRED", "INSERT 1",
                                       "ROLLBACK", "BEGIN DEFERRED", "INSERT 1", "COMMIT"});
    }
    SECTION("SQLITE_BUSY_SNAPSHOT and SQLITE_LOCKED") {
        Fixture f(Backend::sqlite);
        f.script().fail_next("INSERT", "SQLITE_BUSY_SNAPSHOT", 1);
        f.script().fail_next("BEGIN", "SQLITE_LOCKED", 1);
        CHECK(poolbench::run_in_transaction(f.pool, {}, body, fast) == 2);  // BEGIN failures run no body
        CHECK(f.pool.stats().transaction_retries == 2);
    }
    SECTION("busy on COMMIT") {
        Fixture f(Backend::sqlite);
        f.script().fail_next("COMMIT", "SQLITE_BUSY", 3);
        CHECK(poolbench::run_in_transaction(f.pool, {}, body, fast) == 4);
        CHECK(f.pool.stats().transaction_retries == 3);
    }
    SECTION("PostgreSQL 40001 and 40P01") {
        Fixture f(Backend::postgresql);
        f.script().fail_next("INSERT", "40001", 1);
        f.script().fail_next("COMMIT", "40P01", 1);
        CHECK(poolbench::run_in_transaction(f.pool, {.isolation = Isolation::serializable}, body, fast) == 3);
        CHECK(f.pool.stats().transaction_retries == 2);
    }
    SECTION("other errors propagate at once") {
        Fixture f(Backend::postgresql);
        f.script().fail_next("INSERT", "23505", 1);
        CHECK_THROWS_AS(poolbench::run_in_transaction(f.pool, {}, body, fast), QueryError);
        CHECK(runs == 1);
        CHECK(f.pool.stats().transaction_retries == 0);
        CHECK_THROWS_AS(poolbench::run_in_transaction(f.pool, {}, [](Transaction&) { throw std::logic_error("x"); },
                                                      fast),
                        std::logic_error);
        CHECK(f.pool.stats().transaction_retries == 0);
        CHECK(f.pool.stats().active == 0);
    }
    SECTION("attempts used up: the last error is rethrown") {
        Fixture f(Backend::sqlite);
        f.script().fail_next("INSERT", "SQLITE_BUSY", 100);
        try {
            (void)poolbench::run_in_transaction(f.pool, {}, body, fast);
            FAIL("expected SQLITE_BUSY");
        } catch (const QueryError& e) {
            CHECK(e.code() == "SQLITE_BUSY");
        }
        CHECK(runs == 5);
        CHECK(f.pool.stats().transaction_retries == 4);
        CHECK(f.pool.stats().active == 0);
    }
    SECTION("max_attempts 1 means no retries; 0 is a usage error") {
        Fixture f(Backend::sqlite);
        f.script().fail_next("INSERT", "SQLITE_BUSY", 1);
        CHECK_THROWS_AS(poolbench::run_in_transaction(f.pool, {}, body, {.max_attempts = 1}), QueryError);
        CHECK(f.pool.stats().transaction_retries == 0);
        CHECK_THROWS_AS(poolbench::run_in_transaction(f.pool, {}, body, {.max_attempts = 0}), UsageError);
    }
}

TEST_CASE("WriterGate hands out one write lease at a time, and writers queued while nobody barges are served in arrival order", "[unit][gate]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, config("gate-pool", 4));
    poolbench::WriterGate gate("orders.db");

    poolbench::WriteLease first = gate.acquire(pool, 5s);
    REQUIRE(first);
    CHECK(first->query("SELECT id").size() == 1);
    CHECK(gate.waiting() == 0);

    std::mutex m;
    std::vector<int> order;
    std::vector<std::thread> writers;
    for (int i = 0; i < 4; ++i) {
        writers.emplace_back([&, i] {
            poolbench::WriteLease w = gate.acquire(pool, 10s);
            std::lock_guard lock(m);
            order.push_back(i);
        });
        // Queue them in a known order: wait until writer i is queued before starting i+1.
        REQUIRE(pbtest::eventually([&] { return gate.waiting() == static_cast<std::size_t>(i + 1); }));
    }
    // Readers are unaffected: the pool still hands out plain leases.
    {
        Lease reader = pool.acquire(1s);
        CHECK(reader);
    }
    CHECK(order.empty());
    first.release();
    CHECK_FALSE(first);
    first.release();  // idempotent
    for (auto& t : writers) t.join();
    CHECK(order == std::vector<int>{0, 1, 2, 3});
    CHECK(gate.turns() == 5);
    CHECK(gate.waits() == 4);
    CHECK(gate.waiting() == 0);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate timeout names the gate and does not block the queue", "[unit][gate]") {
    auto driver = std::make_shared<pbtest::TestDriver>();
    Pool pool(driver, config("gate-pool", 4));
    poolbench::WriterGate gate("orders.db");
    poolbench::WriteLease holder = gate.acquire(pool);

    try {
        (void)gate.acquire(pool, 20ms);
        FAIL("expected PoolTimeout");
    } catch (const poolbench::PoolTimeout& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("writer gate 'orders.db'") && Catch::Contains("gate-pool"));
        CHECK(e.waited() >= 20ms);
    }
    CHECK(gate.waiting() == 0);

    // A queued writer behind one that timed out still gets the turn.
    std::atomic<bool> got{false};
    std::thread later([&] {
        poolbench::WriteLease w = gate.acquire(pool, 10s);
        got = true;
    });
    REQUIRE(pbtest::eventually([&] { return gate.waiting() == 1; }));
    holder = poolbench::WriteLease{};  // move-assign releases
    later.join();
    CHECK(got);

    SECTION("an empty WriteLease throws UsageError") {
        poolbench::WriteLease empty;
        CHECK_FALSE(empty);
        CHECK_THROWS_AS(empty.lease(), UsageError);
        CHECK_THROWS_AS(empty.connection(), UsageError);
    }
    SECTION("a pool timeout gives the turn back") {
        std::vector<Lease> all;
        for (int i = 0; i < 4; ++i) all.push_back(pool.acquire());
        CHECK_THROWS_AS(gate.acquire(pool, 20ms), poolbench::PoolTimeout);
        all.clear();
        poolbench::WriteLease w = gate.acquire(pool, 1s);  // the turn is free again
        CHECK(w);
    }
    SECTION("a moved WriteLease keeps the turn") {
        poolbench::WriteLease a = gate.acquire(pool, 1s);
        poolbench::WriteLease b = std::move(a);
        CHECK_FALSE(a);
        CHECK(b);
        CHECK_THROWS_AS(gate.acquire(pool, 10ms), poolbench::PoolTimeout);
    }
}

TEST_CASE("run_in_transaction through a WriterGate returns the lease, then the turn", "[unit][gate]") {
    Fixture f(Backend::sqlite, 1);
    poolbench::WriterGate gate("g");
    const poolbench::RetryPolicy fast{.max_attempts = 3, .base = 0ms, .max = 0ms};
    f.script().fail_next("INSERT", "SQLITE_BUSY", 1);
    const int runs = poolbench::run_in_transaction(
        f.pool, {.sqlite_mode = SqliteMode::immediate},
        [n = 0](Transaction& tx) mutable {
            ++n;
            tx.execute("INSERT 1");
            return n;
        },
        fast, &gate);
    CHECK(runs == 2);
    CHECK(gate.turns() == 2);  // one turn per attempt
    CHECK(f.pool.stats().transaction_retries == 1);
    CHECK(f.pool.stats().active == 0);
    poolbench::WriteLease w = gate.acquire(f.pool, 1s);  // both free again
    CHECK(w);
}
