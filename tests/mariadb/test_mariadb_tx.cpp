// Transactions on MariaDB (poolbench/transaction.hpp): isolation levels, READ ONLY,
// savepoints, and run_in_transaction: a forced deadlock and a lock wait timeout retried
// (and counted) up to max_attempts.
#include "mariadb_support.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::ErrorKind;
using poolbench::Isolation;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::QueryError;
using poolbench::Transaction;
using poolbench::TxOptions;
using namespace mtest;

namespace {

poolbench::PoolConfig tx_config(std::size_t max_size) {
    poolbench::PoolConfig c;
    c.name = "mariadb-tx";
    c.max_size = max_size;
    c.acquire_timeout = 30'000ms;
    return c;
}

std::int64_t scalar(Pool& pool, const std::string& sql) {
    Lease l = pool.acquire();
    return l->query(sql).int_at(0);
}

}  // namespace

TEST_CASE("mariadb tx: the isolation level is set for the one transaction, not the session", "[mariadb][tx]") {
    // MariaDB 10.11 has no variable that shows the level of the transaction under way
    // (@@tx_isolation is the session's even after SET TRANSACTION, and @@transaction_isolation
    // does not exist): the next test checks what each level does instead.
    CHECK(poolbench::begin_statement(poolbench::Backend::mariadb, {}) == "START TRANSACTION");
    CHECK(poolbench::begin_statement(poolbench::Backend::mariadb, {.isolation = Isolation::read_committed}) ==
          "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION");
    CHECK(poolbench::begin_statement(poolbench::Backend::mariadb,
                                     {.isolation = Isolation::serializable, .read_only = true}) ==
          "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION READ ONLY");
    Pool pool(driver(), tx_config(2));
    Lease lease = pool.acquire();
    const std::string session_level = text_at(lease->query("SELECT @@tx_isolation"));
    CHECK(session_level == "REPEATABLE-READ");  // the server's default
    for (const Isolation level : {Isolation::read_committed, Isolation::repeatable_read, Isolation::serializable}) {
        INFO(poolbench::to_string(level));
        {
            Transaction tx(lease, pool, {.isolation = level});
            CHECK(lease->in_transaction());
            CHECK(tx.query("SELECT 1").int_at(0) == 1);
            tx.commit();
        }
        CHECK_FALSE(lease->in_transaction());
        CHECK(text_at(lease->query("SELECT @@tx_isolation")) == session_level);
        CHECK(lease->query("SELECT @@tx_read_only").int_at(0) == 0);
    }
}

TEST_CASE("mariadb tx: the isolation levels behave as their names say", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(3));
    Table t("pb_mt_iso", "id INT PRIMARY KEY, n INT NOT NULL");
    {
        Lease l = pool.acquire();
        l->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    }
    const std::string read = "SELECT n FROM " + t.name() + " WHERE id = 1";
    Lease reader = pool.acquire();
    Lease writer = pool.acquire();
    SECTION("server_default takes the session's level: READ UNCOMMITTED sees an uncommitted write") {
        reader->execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED");
        Transaction tx(reader, pool, {});
        writer->execute("START TRANSACTION");
        writer->execute("UPDATE " + t.name() + " SET n = 5 WHERE id = 1");
        CHECK(tx.query(read).int_at(0) == 5);
        writer->execute("ROLLBACK");
        tx.commit();
    }
    SECTION("READ COMMITTED sees a commit made during the transaction") {
        Transaction tx(reader, pool, {.isolation = Isolation::read_committed});
        CHECK(tx.query(read).int_at(0) == 0);
        writer->execute("UPDATE " + t.name() + " SET n = 6 WHERE id = 1");
        CHECK(tx.query(read).int_at(0) == 6);
        tx.commit();
    }
    SECTION("REPEATABLE READ keeps its snapshot") {
        Transaction tx(reader, pool, {.isolation = Isolation::repeatable_read});
        CHECK(tx.query(read).int_at(0) == 0);
        writer->execute("UPDATE " + t.name() + " SET n = 7 WHERE id = 1");
        CHECK(tx.query(read).int_at(0) == 0);
        tx.commit();
        CHECK(reader->query(read).int_at(0) == 7);
    }
    SECTION("SERIALIZABLE makes a plain read lock the row") {
        Transaction tx(reader, pool, {.isolation = Isolation::serializable});
        CHECK(tx.query(read).int_at(0) == 0);
        writer->execute("SET SESSION innodb_lock_wait_timeout = 1");
        const auto e = thrown<QueryError>([&] { writer->execute("UPDATE " + t.name() + " SET n = 8 WHERE id = 1"); });
        CHECK(e.kind() == ErrorKind::lock_timeout);
        tx.commit();
    }
}

TEST_CASE("mariadb tx: a READ ONLY transaction rejects a write, kind read_only", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(2));
    Table t("pb_mt_ro", "id INT PRIMARY KEY");
    Lease lease = pool.acquire();
    {
        Transaction tx(lease, pool, {.read_only = true});
        try {
            tx.execute("INSERT INTO " + t.name() + " VALUES (1)");
            FAIL("a write in a READ ONLY transaction should fail");
        } catch (const QueryError& e) {
            CHECK(e.code() == "1792");
            CHECK(e.kind() == ErrorKind::read_only);
            CHECK_FALSE(poolbench::is_retryable(e));
        }
        CHECK(tx.query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);  // reads still work
    }  // rolled back
    CHECK_FALSE(lease->in_transaction());
    CHECK_FALSE(lease->is_broken());
    CHECK(lease->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
}

TEST_CASE("mariadb tx: deferrable is a UsageError, before anything runs", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(1));
    Lease lease = pool.acquire();
    CHECK_THROWS_AS(Transaction(lease, pool, {.deferrable = true}), poolbench::UsageError);
    CHECK_THROWS_WITH(poolbench::begin_statement(poolbench::Backend::mariadb,
                                                 {.isolation = Isolation::serializable, .read_only = true, .deferrable = true}),
                      Catch::Contains("deferrable is PostgreSQL's"));
    CHECK_FALSE(lease->in_transaction());
    lease.release();  // run_in_transaction needs the pool's one connection
    std::atomic<int> runs{0};
    CHECK_THROWS_AS(poolbench::run_in_transaction(pool, {.deferrable = true}, [&](Transaction&) { ++runs; }),
                    poolbench::UsageError);
    CHECK(runs == 0);
}

TEST_CASE("mariadb tx: savepoints roll back inner work only", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(2));
    Table t("pb_mt_sp", "v INT NOT NULL");
    {
        Lease lease = pool.acquire();
        Transaction outer(lease, pool, {.isolation = Isolation::repeatable_read});
        outer.execute("INSERT INTO " + t.name() + " VALUES (1)");
        {
            Transaction inner(outer);
            CHECK(inner.savepoint() == "pb_sp_1");
            inner.execute("INSERT INTO " + t.name() + " VALUES (2)");
            {
                Transaction innermost(inner);
                innermost.execute("INSERT INTO " + t.name() + " VALUES (20)");
                innermost.commit();
            }
            inner.rollback();  // takes 2 and 20 with it
        }
        {
            Transaction inner(outer);
            CHECK_THROWS_AS(inner.execute("INSERT INTO " + t.name() + " VALUES (NULL)"), QueryError);
        }  // ROLLBACK TO SAVEPOINT: the outer transaction goes on
        {
            Transaction inner = outer.nested();
            CHECK(inner.savepoint() == "pb_sp_4");
            inner.execute("INSERT INTO " + t.name() + " VALUES (3)");
            inner.commit();
        }
        CHECK(outer.query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 2);
        outer.commit();
    }
    Lease check = pool.acquire();
    const auto rows = check->query("SELECT v FROM " + t.name() + " ORDER BY v");
    REQUIRE(rows.size() == 2);
    CHECK(rows.int_at(0) == 1);
    CHECK(rows.int_at(1) == 3);
}

/// The other side of a forced deadlock: a connection whose transaction holds row 1 of
/// `table` and has written `weight` rows to `ballast` (InnoDB rolls back the lighter of two
/// deadlocked transactions, so this one is never the victim).
class HeavyHolder {
public:
    HeavyHolder(const std::string& table, const std::string& ballast, int weight)
        : table_(table), ballast_(ballast), weight_(weight), conn_(connect()) {}
    /// START TRANSACTION, the ballast, and row 1 locked.
    void take_row_1() {
        conn_->execute("START TRANSACTION");
        conn_->execute("INSERT INTO " + ballast_ + " SELECT seq FROM seq_1_to_" + std::to_string(weight_));
        conn_->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 1");
    }
    /// Asks for row 2 (waits while another transaction holds it).
    void take_row_2() { conn_->execute("UPDATE " + table_ + " SET n = n + 1 WHERE id = 2"); }
    void commit() { conn_->execute("COMMIT"); }
    void rollback() { conn_->execute("ROLLBACK"); }
    [[nodiscard]] std::int64_t id() { return thread_id(*conn_); }

private:
    std::string table_, ballast_;
    int weight_;
    std::unique_ptr<poolbench::Connection> conn_;
};

/// Runs `fn` on a thread of its own and joins it on destruction (also while unwinding).
class Joined {
public:
    template <class Fn>
    explicit Joined(Fn fn) : thread_(std::move(fn)) {}
    Joined(const Joined&) = delete;
    Joined& operator=(const Joined&) = delete;
    ~Joined() { thread_.join(); }

private:
    std::thread thread_;
};

TEST_CASE("mariadb tx: run_in_transaction retries a forced deadlock and counts the retry", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(3));
    Table t("pb_mt_dl", "id INT PRIMARY KEY, n INT NOT NULL");
    Table ballast("pb_mt_dlb", "id INT PRIMARY KEY");
    {
        Lease l = pool.acquire();
        l->execute("INSERT INTO " + t.name() + " VALUES (1, 0), (2, 0)");
    }
    // A (heavy) holds row 1. The body's first run locks row 2 and waits for row 1; A then
    // asks for row 2 and closes the cycle: InnoDB rolls back the lighter body's transaction,
    // run_in_transaction runs it again, and the second run waits until A commits.
    HeavyHolder a(t.name(), ballast.name(), 200);
    auto observer = connect();
    a.take_row_1();
    std::atomic<int> runs{0};
    std::atomic<std::int64_t> body_session{0};
    std::string error;
    std::thread b([&] {
        try {
            poolbench::run_in_transaction(
                pool, {},
                [&](Transaction& tx) {
                    ++runs;
                    body_session = thread_id(tx.connection());
                    tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 2");
                    tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 1");
                },
                {.max_attempts = 5, .base = 1ms, .max = 10ms});
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    // Running its update of row 1 means it holds row 2 and cannot finish while A holds row 1.
    const std::string body_waits_for = "UPDATE " + t.name() + " SET n = n + 10 WHERE id = 1";
    const bool body_waits =
        eventually([&] { return body_session != 0 && session_running(*observer, body_session, body_waits_for); }, 10s);
    std::string a_error;
    try {
        a.take_row_2();  // closes the cycle; goes through once the body is rolled back
        a.commit();
    } catch (const QueryError& e) {
        a_error = e.what();
        a.rollback();
    }
    b.join();
    CHECK(body_waits);
    CHECK(a_error.empty());  // the heavy transaction is never the victim
    const auto s = pool.stats();
    INFO("the body ran " << runs << " times; error: " << error);
    CHECK(error.empty());
    CHECK(runs == 2);
    CHECK(s.transaction_retries == 1);
    CHECK(scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 1") == 11);
    CHECK(scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 2") == 11);
    CHECK(s.active == 0);
}

TEST_CASE("mariadb tx: run_in_transaction gives up on a deadlock after max_attempts and rethrows it",
          "[mariadb][tx]") {
    Pool pool(driver(), tx_config(2));
    Table t("pb_mt_dlmax", "id INT PRIMARY KEY, n INT NOT NULL");
    Table ballast("pb_mt_dlmb", "id INT PRIMARY KEY");
    {
        Lease l = pool.acquire();
        l->execute("INSERT INTO " + t.name() + " VALUES (1, 0), (2, 0)");
    }
    // Every run deadlocks: the body locks row 2; a heavy helper takes row 1 and asks for
    // row 2; once it waits, the body asks for row 1 and is rolled back as the lighter one.
    HeavyHolder helper(t.name(), ballast.name(), 200);
    const auto helper_id = helper.id();
    const std::string helper_waits_for = "UPDATE " + t.name() + " SET n = n + 1 WHERE id = 2";
    auto observer = connect();
    std::atomic<int> runs{0};
    std::atomic<int> helper_waited{0};
    std::atomic<int> helper_failed{0};
    std::optional<QueryError> last;
    try {
        poolbench::run_in_transaction(
            pool, {},
            [&](Transaction& tx) {
                ++runs;
                tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 2");
                helper.take_row_1();
                Joined h([&] {
                    try {
                        helper.take_row_2();  // waits for the body, then goes through
                    } catch (const QueryError&) {
                        ++helper_failed;  // the helper was the victim: the body then commits
                    }
                    helper.rollback();
                });
                if (eventually([&] { return session_running(*observer, helper_id, helper_waits_for); }, 10s)) {
                    ++helper_waited;
                }
                tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 1");
            },
            {.max_attempts = 3, .base = 1ms, .max = 5ms});
        FAIL("every run deadlocked, yet run_in_transaction returned");
    } catch (const QueryError& e) {
        last = e;
    }
    REQUIRE(last.has_value());
    INFO(last->what());
    CHECK(last->code() == "1213");
    CHECK(last->kind() == ErrorKind::deadlock);
    CHECK(runs == 3);
    CHECK(helper_waited == 3);
    CHECK(helper_failed == 0);
    CHECK(pool.stats().transaction_retries == 2);
    CHECK(pool.stats().active == 0);
    CHECK(scalar(pool, "SELECT CAST(SUM(n) AS SIGNED) FROM " + t.name()) == 0);  // nothing of any run was kept
}

TEST_CASE("mariadb tx: run_in_transaction retries a lock wait timeout (1205) and counts the retries",
          "[mariadb][tx]") {
    Pool pool(driver(), tx_config(2));
    Table t("pb_mt_lw", "id INT PRIMARY KEY, n INT NOT NULL");
    auto holder = connect();
    holder->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    holder->execute("START TRANSACTION");
    holder->execute("UPDATE " + t.name() + " SET n = 1 WHERE id = 1");
    std::atomic<int> runs{0};
    std::string error;
    std::thread body([&] {
        try {
            poolbench::run_in_transaction(
                pool, {},
                [&](Transaction& tx) {
                    ++runs;
                    tx.execute("SET SESSION innodb_lock_wait_timeout = 1");
                    tx.execute("UPDATE " + t.name() + " SET n = n + 10 WHERE id = 1");
                },
                {.max_attempts = 5, .base = 1ms, .max = 5ms});
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    // The first run waits 1 s for the row and gives up; once the second run has begun, the
    // holder lets the row go and that run goes through.
    const bool retried = eventually([&] { return runs.load() >= 2; }, 10s);
    holder->execute("ROLLBACK");
    body.join();
    const auto s = pool.stats();
    INFO("the body ran " << runs << " times; error: " << error);
    CHECK(retried);
    CHECK(error.empty());
    CHECK(runs >= 2);
    CHECK(s.transaction_retries == static_cast<std::uint64_t>(runs.load() - 1));
    CHECK(scalar(pool, "SELECT n FROM " + t.name() + " WHERE id = 1") == 10);  // one run committed
    CHECK(s.active == 0);
}

TEST_CASE("mariadb tx: run_in_transaction gives up on lock wait timeouts after max_attempts", "[mariadb][tx]") {
    Pool pool(driver(), tx_config(2));
    Table t("pb_mt_lwmax", "id INT PRIMARY KEY, n INT NOT NULL");
    auto holder = connect();
    holder->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    holder->execute("START TRANSACTION");
    holder->execute("UPDATE " + t.name() + " SET n = 1 WHERE id = 1");
    std::atomic<int> runs{0};
    const auto start = Clock::now();
    const auto e = thrown<QueryError>([&] {
        poolbench::run_in_transaction(
            pool, {},
            [&](Transaction& tx) {
                ++runs;
                tx.execute("SET SESSION innodb_lock_wait_timeout = 1");
                tx.execute("UPDATE " + t.name() + " SET n = 2 WHERE id = 1");
            },
            {.max_attempts = 2, .base = 1ms, .max = 5ms});
    });
    const auto took = Clock::now() - start;
    holder->execute("ROLLBACK");
    CHECK(e.code() == "1205");
    CHECK(e.kind() == ErrorKind::lock_timeout);
    CHECK(runs == 2);
    CHECK(took >= 1900ms);  // two waits of innodb_lock_wait_timeout
    CHECK(took < 10s);
    CHECK(pool.stats().transaction_retries == 1);
    CHECK(pool.stats().active == 0);
}
