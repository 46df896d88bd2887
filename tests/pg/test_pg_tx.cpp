// Transactions on PostgreSQL: isolation levels, READ ONLY, savepoints, and the retry helper
// turning a lost update (READ COMMITTED) into an exact count (SERIALIZABLE + retries).
#include "pg_support.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Isolation;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::QueryError;
using poolbench::Transaction;
using poolbench::TxOptions;

namespace {

poolbench::PoolConfig pg_config(std::size_t max_size) {
    poolbench::PoolConfig c;
    c.name = "pg-tx";
    c.max_size = max_size;
    c.acquire_timeout = 30'000ms;
    return c;
}

/// A table that exists for one test and is dropped afterwards.
class Table {
public:
    Table(Pool& pool, const std::string& prefix, const std::string& columns)
        : pool_(pool), name_(pgtest::unique_name(prefix)) {
        Lease l = pool_.acquire();
        l->execute("CREATE TABLE " + name_ + " (" + columns + ")");
    }
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;
    ~Table() {
        try {
            Lease l = pool_.acquire();
            l->execute("DROP TABLE IF EXISTS " + name_);
        } catch (...) {
        }
    }
    [[nodiscard]] const std::string& name() const { return name_; }

private:
    Pool& pool_;
    std::string name_;
};

std::int64_t scalar(Pool& pool, const std::string& sql) {
    Lease l = pool.acquire();
    return l->query(sql).int_at(0);
}

/// Read, pause 1 ms on the server, write back +1: the classic read-modify-write race.
void increment(Transaction& tx, const std::string& table) {
    const std::int64_t n = tx.query("SELECT n FROM " + table + " WHERE id = 1").int_at(0);
    (void)tx.query("SELECT pg_sleep(0.001)");
    (void)tx.query("UPDATE " + table + " SET n = $1 WHERE id = 1", {poolbench::Value{n + 1}});
}

}  // namespace

TEST_CASE("PostgreSQL: isolation level, READ ONLY and DEFERRABLE are visible in the session", "[pg][tx]") {
    Pool pool(pgtest::driver(), pg_config(2));
    Lease lease = pool.acquire();
    const auto show = [&](Transaction& tx, const std::string& what) {
        return pgtest::text_at(tx.query("SHOW " + what));
    };
    struct Case {
        Isolation level;
        const char* shown;
    };
    for (const Case c : {Case{Isolation::read_committed, "read committed"},
                         Case{Isolation::repeatable_read, "repeatable read"},
                         Case{Isolation::serializable, "serializable"}}) {
        Transaction tx(lease, pool, {.isolation = c.level});
        CHECK(show(tx, "transaction_isolation") == c.shown);
        CHECK(show(tx, "transaction_read_only") == "off");
        tx.commit();
    }
    {
        Transaction tx(lease, pool, {});  // server default
        CHECK(show(tx, "transaction_isolation") == pgtest::text_at(lease->query("SHOW default_transaction_isolation")));
    }
    {
        Transaction tx(lease, pool, {.isolation = Isolation::serializable, .read_only = true, .deferrable = true});
        CHECK(show(tx, "transaction_isolation") == "serializable");
        CHECK(show(tx, "transaction_read_only") == "on");
        CHECK(show(tx, "transaction_deferrable") == "on");
        tx.commit();
    }
    CHECK_FALSE(lease->in_transaction());
}

TEST_CASE("PostgreSQL: a READ ONLY transaction rejects a write with 25006", "[pg][tx]") {
    Pool pool(pgtest::driver(), pg_config(2));
    Table t(pool, "pb_tx_ro", "id int primary key");
    Lease lease = pool.acquire();
    {
        Transaction tx(lease, pool, {.read_only = true});
        try {
            tx.execute("INSERT INTO " + t.name() + " VALUES (1)");
            FAIL("a write in a READ ONLY transaction should fail");
        } catch (const QueryError& e) {
            CHECK(e.code() == "25006");
            CHECK_FALSE(poolbench::is_retryable(e));
        }
    }  // rolled back (the transaction was aborted by the error)
    // 25006 is in the default broken rule (a writing pool left on a read-only standby after
    // a failover must reconnect), so this connection is closed and replaced on return.
    CHECK(lease->is_broken());
    lease.release();
    Lease fresh = pool.acquire();
    CHECK_FALSE(fresh->in_transaction());
    CHECK(fresh->query("SELECT count(*) FROM " + t.name()).int_at(0) == 0);
}

TEST_CASE("PostgreSQL: savepoints roll back inner work and recover from errors", "[pg][tx]") {
    Pool pool(pgtest::driver(), pg_config(2));
    Table t(pool, "pb_tx_sp", "v int not null");
    {
        Lease lease = pool.acquire();
        Transaction outer(lease, pool, {.isolation = Isolation::repeatable_read});
        outer.execute("INSERT INTO " + t.name() + " VALUES (1)");
        {
            Transaction inner(outer);
            inner.execute("INSERT INTO " + t.name() + " VALUES (2)");
            inner.rollback();
        }
        {
            // An error inside a savepoint aborts only the savepoint: without it, PostgreSQL
            // would refuse every further statement of the transaction (25P02).
            Transaction inner(outer);
            CHECK_THROWS_AS(inner.execute("INSERT INTO " + t.name() + " VALUES (NULL)"), QueryError);
        }  // ROLLBACK TO SAVEPOINT: the outer transaction is usable again
        {
            Transaction inner = outer.nested();
            CHECK(inner.savepoint() == "pb_sp_3");
            inner.execute("INSERT INTO " + t.name() + " VALUES (3)");
            inner.commit();
        }
        outer.commit();
    }
    Lease check = pool.acquire();
    const auto rows = check->query("SELECT v FROM " + t.name() + " ORDER BY v");
    REQUIRE(rows.size() == 2);
    CHECK(rows.int_at(0) == 1);
    CHECK(rows.int_at(1) == 3);
}

TEST_CASE("PostgreSQL: read-modify-write loses updates under READ COMMITTED, and SERIALIZABLE with retries does not",
          "[pg][tx]") {
    constexpr int threads = 8;
    constexpr int per_thread = 50;
    Pool pool(pgtest::driver(), pg_config(threads + 1));
    Table t(pool, "pb_tx_counter", "id int primary key, n bigint not null");
    {
        Lease l = pool.acquire();
        l->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    }

    SECTION("READ COMMITTED: lost updates") {
        std::atomic<int> errors{0};
        std::vector<std::thread> workers;
        for (int w = 0; w < threads; ++w) {
            workers.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) {
                    try {
                        Lease lease = pool.acquire();
                        Transaction tx(lease, pool, {.isolation = Isolation::read_committed});
                        increment(tx, t.name());
                        tx.commit();
                    } catch (const std::exception&) {
                        errors.fetch_add(1);
                    }
                }
            });
        }
        for (auto& w : workers) w.join();
        const auto final_value = scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 1");
        INFO("READ COMMITTED: final " << final_value << " of " << threads * per_thread);
        CHECK(errors.load() == 0);
        CHECK(final_value < threads * per_thread);
        CHECK(pool.stats().transaction_retries == 0);
    }
    SECTION("SERIALIZABLE + run_in_transaction: exact") {
        const poolbench::RetryPolicy policy{.max_attempts = 1000, .base = 1ms, .max = 20ms};
        std::atomic<int> errors{0};
        std::vector<std::thread> workers;
        for (int w = 0; w < threads; ++w) {
            workers.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) {
                    try {
                        poolbench::run_in_transaction(
                            pool, {.isolation = Isolation::serializable},
                            [&](Transaction& tx) { increment(tx, t.name()); }, policy);
                    } catch (const std::exception&) {
                        errors.fetch_add(1);
                    }
                }
            });
        }
        for (auto& w : workers) w.join();
        const auto final_value = scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 1");
        const auto retries = pool.stats().transaction_retries;
        INFO("SERIALIZABLE: final " << final_value << ", " << retries << " retries");
        CHECK(errors.load() == 0);
        CHECK(final_value == threads * per_thread);
        CHECK(retries > 0);
    }
}

TEST_CASE("PostgreSQL: a deadlock (40P01) is retried by run_in_transaction", "[pg][tx]") {
    Pool pool(pgtest::driver(), pg_config(3));
    Table t(pool, "pb_tx_dl", "id int primary key, n int not null");
    {
        Lease l = pool.acquire();
        l->execute("INSERT INTO " + t.name() + " VALUES (1, 0), (2, 0)");
    }
    // A locks row 1 and then wants row 2; B (run_in_transaction) locks row 2 and then wants
    // row 1. The server kills one of them with 40P01 after deadlock_timeout (1 s default).
    Lease a = pool.acquire();
    Transaction ta(a, pool);
    ta.execute("UPDATE " + t.name() + " SET n = n + 1 WHERE id = 1");
    std::atomic<int> b_runs{0};
    std::atomic<bool> b_holds_row2{false};
    std::string b_error;
    std::thread b([&] {
        try {
            poolbench::run_in_transaction(
                pool, {},
                [&](Transaction& tx) {
                    ++b_runs;
                    tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 2");
                    b_holds_row2 = true;
                    tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 1");
                },
                {.max_attempts = 5, .base = 1ms, .max = 10ms});
        } catch (const std::exception& e) {
            b_error = e.what();
        }
    });
    REQUIRE(pgtest::eventually([&] { return b_holds_row2.load(); }));
    // B now waits for row 1 (or is about to): A asks for row 2 and closes the cycle.
    bool a_failed = false;
    try {
        ta.execute("UPDATE " + t.name() + " SET n = n + 1 WHERE id = 2");
        ta.commit();
    } catch (const QueryError& e) {
        CHECK(e.code() == "40P01");
        a_failed = true;
    }
    // Otherwise the server chose B as the victim: it is retried once A has committed.
    if (a_failed) ta.rollback();
    b.join();
    INFO("A was the victim: " << a_failed << "; B ran " << b_runs.load() << " times; error: " << b_error);
    CHECK(b_error.empty());
    if (!a_failed) {
        CHECK(b_runs.load() >= 2);
        CHECK(pool.stats().transaction_retries >= 1);
    }
    CHECK(scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 1") == (a_failed ? 10 : 11));
}
