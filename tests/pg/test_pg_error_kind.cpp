// ErrorKind on real PostgreSQL failures: each is classified once by the driver, from
// its SQLSTATE and the broken rule.
#include "pg_support.hpp"

#include <poolbench/poolbench.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using poolbench::ErrorKind;
using poolbench::QueryError;

namespace {

/// A table made for one test on its own connection and dropped afterwards.
class KindTable {
public:
    explicit KindTable(const std::string& prefix) : name_(pgtest::unique_name(prefix)) {
        pgtest::connect()->execute("CREATE TABLE " + name_ + " (id int PRIMARY KEY, v int NOT NULL)");
        pgtest::connect()->execute("INSERT INTO " + name_ + " VALUES (1, 0), (2, 0)");
    }
    KindTable(const KindTable&) = delete;
    KindTable& operator=(const KindTable&) = delete;
    ~KindTable() {
        try {
            pgtest::connect()->execute("DROP TABLE IF EXISTS " + name_);
        } catch (...) {
        }
    }
    [[nodiscard]] const std::string& name() const { return name_; }

private:
    std::string name_;
};

}  // namespace

TEST_CASE("pg: a unique violation is kind constraint_violation", "[pg][error_kind]") {
    KindTable t("pb_kind_unique");
    auto c = pgtest::connect();
    const auto e = pgtest::thrown<QueryError>([&] { c->execute("INSERT INTO " + t.name() + " VALUES (1, 5)"); });
    CHECK(e.code() == "23505");
    CHECK(e.kind() == ErrorKind::constraint_violation);
    CHECK(poolbench::error_kind(e) == ErrorKind::constraint_violation);
    CHECK_FALSE(e.broken());
    CHECK(c->query("SELECT 1").int_at(0) == 1);
}

TEST_CASE("pg: lock_timeout on a table another connection holds locked is kind lock_timeout", "[pg][error_kind]") {
    KindTable t("pb_kind_lock");
    auto holder = pgtest::connect();
    auto waiter = pgtest::connect();
    holder->execute("BEGIN");
    holder->execute("LOCK TABLE " + t.name() + " IN ACCESS EXCLUSIVE MODE");
    waiter->execute("SET lock_timeout = '10ms'");
    const auto e = pgtest::thrown<QueryError>([&] { (void)waiter->query("SELECT count(*) FROM " + t.name()); });
    CHECK(e.code() == "55P03");
    CHECK(e.kind() == ErrorKind::lock_timeout);
    CHECK_FALSE(e.broken());
    CHECK_FALSE(poolbench::is_retryable(e));
    holder->execute("ROLLBACK");
}

TEST_CASE("pg: a server-side statement_timeout is kind statement_timeout", "[pg][error_kind]") {
    auto c = pgtest::connect();
    c->execute("SET statement_timeout = '10ms'");
    const auto e = pgtest::thrown<QueryError>([&] { (void)c->query("SELECT pg_sleep(5)"); });
    CHECK(e.code() == "57014");
    CHECK(e.kind() == ErrorKind::statement_timeout);
    CHECK_FALSE(e.broken());
}

TEST_CASE("pg: the driver's own statement_timeout= is kind statement_timeout and says so", "[pg][error_kind]") {
    // The driver cancels the statement itself (PQcancel) and names its setting in the message.
    auto c = pgtest::connect("statement_timeout=0.05s");
    const auto e = pgtest::thrown<QueryError>([&] { (void)c->query("SELECT pg_sleep(5)"); });
    CHECK(e.code() == "57014");
    CHECK(e.kind() == ErrorKind::statement_timeout);
    CHECK_FALSE(e.broken());
    CHECK_THAT(e.what(), Catch::StartsWith("statement cancelled after ") &&
                             Catch::Contains(" ms (statement_timeout=0.05s) (57014) in: SELECT pg_sleep(5)"));
    CHECK(c->query("SELECT 7").int_at(0) == 7);  // the connection stays usable
}

TEST_CASE("pg: a concurrent update under REPEATABLE READ is kind serialization_failure", "[pg][error_kind]") {
    KindTable t("pb_kind_serial");
    auto a = pgtest::connect();
    auto b = pgtest::connect();
    a->execute("BEGIN ISOLATION LEVEL REPEATABLE READ");
    (void)a->query("SELECT v FROM " + t.name() + " WHERE id = 1");  // takes the snapshot
    b->execute("UPDATE " + t.name() + " SET v = v + 1 WHERE id = 1");
    const auto e =
        pgtest::thrown<QueryError>([&] { a->execute("UPDATE " + t.name() + " SET v = v + 1 WHERE id = 1"); });
    CHECK(e.code() == "40001");
    CHECK(e.kind() == ErrorKind::serialization_failure);
    CHECK(poolbench::is_retryable(e));
    a->execute("ROLLBACK");
}

TEST_CASE("pg: two transactions locking rows in opposite order, one gets kind deadlock", "[pg][error_kind]") {
    KindTable t("pb_kind_deadlock");
    auto a = pgtest::connect();
    auto b = pgtest::connect();
    a->execute("BEGIN");
    b->execute("BEGIN");
    a->execute("UPDATE " + t.name() + " SET v = 1 WHERE id = 1");
    b->execute("UPDATE " + t.name() + " SET v = 2 WHERE id = 2");
    const std::int64_t a_pid = pgtest::backend_pid(*a);
    std::optional<QueryError> a_error;
    std::thread blocked([&] {
        try {
            a->execute("UPDATE " + t.name() + " SET v = 1 WHERE id = 2");  // waits for b
        } catch (const QueryError& e) {
            a_error = e;
        }
    });
    // Close the cycle only once a really waits for b's row.
    auto observer = pgtest::connect();
    const bool waiting = pgtest::eventually([&] {
        return observer->query("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = " + std::to_string(a_pid))
                   .int_at(0) > 0;
    });
    std::optional<QueryError> b_error;
    try {
        b->execute("UPDATE " + t.name() + " SET v = 2 WHERE id = 1");  // waits for a: a cycle
    } catch (const QueryError& e) {
        b_error = e;
    }
    // The deadlock detector aborts one of the two; the other then gets its lock and ends.
    b->execute("ROLLBACK");
    blocked.join();
    a->execute("ROLLBACK");
    CHECK(waiting);
    REQUIRE(a_error.has_value() != b_error.has_value());
    const QueryError& e = a_error ? *a_error : *b_error;
    INFO(e.what());
    CHECK(e.code() == "40P01");
    CHECK(e.kind() == ErrorKind::deadlock);
    CHECK(poolbench::is_retryable(e));
}

TEST_CASE("pg: 25006 is kind read_only though the default broken rule breaks the connection", "[pg][error_kind]") {
    auto c = pgtest::connect();
    c->execute("SET default_transaction_read_only = on");
    const auto e = pgtest::thrown<QueryError>([&] { c->execute("CREATE TEMP TABLE pb_kind_ro (x int)"); });
    CHECK(e.code() == "25006");
    CHECK(e.kind() == ErrorKind::read_only);
    CHECK(e.broken());
    // The broken connection refuses the next statement: connection_lost.
    const auto next = pgtest::thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
    CHECK(next.code() == "08003");
    CHECK(next.kind() == ErrorKind::connection_lost);
    CHECK(next.broken());
}

TEST_CASE("pg: an SQLSTATE added to broken_sqlstates is kind connection_lost", "[pg][error_kind]") {
    auto c = pgtest::connect("broken_sqlstates=22012");
    const auto e = pgtest::thrown<QueryError>([&] { (void)c->query("SELECT 1/0"); });
    CHECK(e.code() == "22012");
    CHECK(e.broken());
    CHECK(e.kind() == ErrorKind::connection_lost);
    // Without the rule the same error is other.
    auto plain = pgtest::connect();
    const auto p = pgtest::thrown<QueryError>([&] { (void)plain->query("SELECT 1/0"); });
    CHECK(p.kind() == ErrorKind::other);
    CHECK_FALSE(p.broken());
}
