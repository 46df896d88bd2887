// ErrorKind on real MariaDB failures: each is classified once by the driver, from its
// error number and the broken rule. (The server-wide read-only case sets a global and runs
// in the serial tier: tests/mariadb_fault/test_mariadb_read_only.cpp.)
#include "mariadb_support.hpp"

#include <poolbench/poolbench.hpp>

#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using poolbench::ErrorKind;
using poolbench::QueryError;
using namespace mtest;

TEST_CASE("mariadb: a duplicate key is 1062, kind constraint_violation", "[mariadb][error_kind]") {
    Table t("pb_mk_dup", "id INT PRIMARY KEY, v INT NOT NULL");
    auto c = connect();
    c->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    SECTION("execute") {
        const auto e = thrown<QueryError>([&] { c->execute("INSERT INTO " + t.name() + " VALUES (1, 5)"); });
        CHECK(e.code() == "1062");
        CHECK(e.kind() == ErrorKind::constraint_violation);
        CHECK(poolbench::error_kind(e) == ErrorKind::constraint_violation);
        CHECK_FALSE(e.broken());
        CHECK_FALSE(poolbench::is_retryable(e));
    }
    SECTION("query, and NOT NULL (1048)") {
        const auto e =
            thrown<QueryError>([&] { (void)c->query("INSERT INTO " + t.name() + " VALUES (?, ?)", {I(1), I(5)}); });
        CHECK(e.code() == "1062");
        CHECK(e.kind() == ErrorKind::constraint_violation);
        const auto n =
            thrown<QueryError>([&] { (void)c->query("INSERT INTO " + t.name() + " VALUES (?, ?)", {I(2), poolbench::Value{}}); });
        CHECK(n.code() == "1048");
        CHECK(n.kind() == ErrorKind::constraint_violation);
    }
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
}

TEST_CASE("mariadb: two transactions locking rows in crossed order, one gets 1213, kind deadlock",
          "[mariadb][error_kind]") {
    Table t("pb_mk_dl", "id INT PRIMARY KEY, v INT NOT NULL");
    auto setup = connect();
    setup->execute("INSERT INTO " + t.name() + " VALUES (1, 0), (2, 0)");
    auto a = connect();
    auto b = connect();
    auto observer = connect();
    const auto a_id = thread_id(*a);
    a->execute("START TRANSACTION");
    b->execute("START TRANSACTION");
    a->execute("UPDATE " + t.name() + " SET v = 1 WHERE id = 1");
    b->execute("UPDATE " + t.name() + " SET v = 2 WHERE id = 2");
    std::optional<QueryError> a_error;
    std::thread blocked([&] {
        try {
            a->execute("UPDATE " + t.name() + " SET v = 1 WHERE id = 2");  // waits for b
        } catch (const QueryError& e) {
            a_error = e;
        }
    });
    // Close the cycle only once a runs its second update: it holds row 1 and cannot finish
    // while b holds row 2. (information_schema.INNODB_TRX would say "LOCK WAIT", but InnoDB
    // refreshes it only after 100 ms without a read: polled, it can stay stale.)
    const bool waiting =
        eventually([&] { return session_running(*observer, a_id, "UPDATE " + t.name() + " SET v = 1 WHERE id = 2"); }, 10s);
    std::optional<QueryError> b_error;
    try {
        b->execute("UPDATE " + t.name() + " SET v = 2 WHERE id = 1");  // waits for a: a cycle
    } catch (const QueryError& e) {
        b_error = e;
    }
    // InnoDB rolls one of the two back at once; the other then gets its lock and ends.
    if (!b_error) b->execute("ROLLBACK");
    blocked.join();
    CHECK(waiting);
    REQUIRE(a_error.has_value() != b_error.has_value());
    const QueryError& e = a_error ? *a_error : *b_error;
    auto& victim = a_error ? *a : *b;
    auto& survivor = a_error ? *b : *a;
    INFO(e.what());
    CHECK(e.code() == "1213");
    CHECK(e.native_code() == 1213);
    CHECK(e.kind() == ErrorKind::deadlock);
    CHECK_FALSE(e.broken());
    CHECK(poolbench::is_retryable(e));
    // The server rolled the victim's whole transaction back: it is no longer in one.
    CHECK_FALSE(victim.in_transaction());
    if (a_error) {
        CHECK_FALSE(survivor.in_transaction());  // b was rolled back above
    } else {
        CHECK(survivor.in_transaction());
        survivor.execute("ROLLBACK");
    }
    CHECK(victim.query("SELECT 1").int_at(0) == 1);
}

TEST_CASE("mariadb: a lock wait past innodb_lock_wait_timeout is 1205, kind lock_timeout", "[mariadb][error_kind]") {
    Table t("pb_mk_lw", "id INT PRIMARY KEY, v INT NOT NULL");
    auto holder = connect();
    auto waiter = connect();
    holder->execute("INSERT INTO " + t.name() + " VALUES (1, 0)");
    holder->execute("START TRANSACTION");
    holder->execute("UPDATE " + t.name() + " SET v = 1 WHERE id = 1");
    waiter->execute("SET SESSION innodb_lock_wait_timeout = 1");
    waiter->execute("START TRANSACTION");
    waiter->execute("INSERT INTO " + t.name() + " VALUES (2, 0)");
    const auto start = Clock::now();
    const auto e = thrown<QueryError>(
        [&] { (void)waiter->query("UPDATE " + t.name() + " SET v = 2 WHERE id = ?", {I(1)}); });
    const auto took = Clock::now() - start;
    INFO(e.what());
    CHECK(e.code() == "1205");
    CHECK(e.kind() == ErrorKind::lock_timeout);
    CHECK_FALSE(e.broken());
    CHECK(poolbench::is_retryable(e));  // run_in_transaction runs the whole body again
    CHECK(took >= 900ms);
    CHECK(took < 5s);
    // Only the statement was rolled back (innodb_rollback_on_timeout is off): the
    // transaction and its earlier insert are still there.
    CHECK(waiter->in_transaction());
    CHECK(waiter->query("SELECT COUNT(*) FROM " + t.name() + " WHERE id = 2").int_at(0) == 1);
    waiter->reset();
    holder->execute("ROLLBACK");
    CHECK(holder->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
}

TEST_CASE("mariadb: a connection KILLed from another session is connection_lost and broken",
          "[mariadb][error_kind]") {
    auto admin = connect();
    SECTION("killed while idle") {
        auto c = connect();
        const auto id = thread_id(*c);
        admin->execute("KILL CONNECTION " + std::to_string(id));
        REQUIRE(eventually([&] { return !session_exists(*admin, id); }));
        const auto e = thrown<QueryError>([&] { c->execute("SELECT 1"); });
        INFO(e.what());
        CHECK(e.kind() == ErrorKind::connection_lost);
        CHECK(e.broken());
        CHECK(c->is_broken());
    }
    SECTION("killed while running a statement") {
        auto c = connect();
        const auto id = thread_id(*c);
        std::optional<QueryError> error;
        std::thread runner([&] {
            try {
                (void)c->query("SELECT SLEEP(30)");
            } catch (const QueryError& e) {
                error = e;
            }
        });
        const bool running = eventually([&] { return session_running(*admin, id, "SELECT SLEEP"); }, 10s);
        admin->execute("KILL CONNECTION " + std::to_string(id));
        runner.join();
        CHECK(running);
        REQUIRE(error.has_value());
        INFO(error->what());
        CHECK(error->kind() == ErrorKind::connection_lost);
        CHECK(error->broken());
        CHECK(c->is_broken());
        const auto next = thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
        CHECK(next.kind() == ErrorKind::connection_lost);
    }
}

TEST_CASE("mariadb: an error number added to broken_errors breaks the connection, kind kept or connection_lost",
          "[mariadb][error_kind]") {
    SECTION("1146 has no kind of its own: connection_lost") {
        auto c = connect("broken_errors=1146");
        const auto e = thrown<QueryError>([&] { (void)c->query("SELECT * FROM pb_no_such_table"); });
        CHECK(e.code() == "1146");
        CHECK(e.broken());
        CHECK(e.kind() == ErrorKind::connection_lost);
        CHECK(c->is_broken());
    }
    SECTION("1062 keeps its own kind") {
        auto c = connect("broken_errors=1062");
        c->execute("CREATE TEMPORARY TABLE t_rule (x INT PRIMARY KEY)");
        c->execute("INSERT INTO t_rule VALUES (1)");
        const auto e = thrown<QueryError>([&] { c->execute("INSERT INTO t_rule VALUES (1)"); });
        CHECK(e.broken());
        CHECK(e.kind() == ErrorKind::constraint_violation);
        CHECK(c->is_broken());
    }
    SECTION("without the rule the same error is other and not broken") {
        auto c = connect();
        const auto e = thrown<QueryError>([&] { (void)c->query("SELECT * FROM pb_no_such_table"); });
        CHECK(e.kind() == ErrorKind::other);
        CHECK_FALSE(e.broken());
        CHECK_FALSE(c->is_broken());
    }
}

TEST_CASE("mariadb: a write in a READ ONLY transaction is 1792, kind read_only", "[mariadb][error_kind]") {
    Table t("pb_mk_ro", "id INT PRIMARY KEY");
    auto c = connect();
    c->execute("START TRANSACTION READ ONLY");
    const auto e = thrown<QueryError>([&] { c->execute("INSERT INTO " + t.name() + " VALUES (1)"); });
    CHECK(e.code() == "1792");
    CHECK(e.kind() == ErrorKind::read_only);
    // 1792 is not in the default broken_errors (1290, 1836): the transaction's own rule.
    CHECK_FALSE(e.broken());
    c->reset();
    CHECK(c->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
}

TEST_CASE("mariadb: a privilege the account lacks is an error of kind other, not broken", "[mariadb][error_kind]") {
    const std::string limited = required_env("POOLBENCH_MARIADB_LIMITED_URL");
    auto c = driver_for(limited)->connect(Clock::now() + 10s);
    const auto e = thrown<QueryError>([&] { c->execute("CREATE TABLE pb_mk_denied (x INT)"); });
    INFO(e.what());
    CHECK(e.code() == "1142");
    CHECK(e.kind() == ErrorKind::other);
    CHECK_FALSE(e.broken());
}

TEST_CASE("mariadb: FaultDriver's injected lost connections carry MariaDB's code 2013, not SQLite's",
          "[mariadb][error_kind][fault]") {
    auto settings = std::make_shared<poolbench::FaultSettings>();
    poolbench::FaultDriver driver(poolbench::make_driver(server_url()), settings);
    auto c = driver.connect(std::chrono::steady_clock::now() + 10s);
    settings->lose_reply_probability = 1.0;
    const auto lost = thrown<QueryError>([&] { c->execute("SELECT 1"); });
    settings->lose_reply_probability = 0.0;
    CHECK(lost.code() == "2013");
    CHECK(lost.native_code() == 2013);
    CHECK(lost.kind() == ErrorKind::connection_lost);
    CHECK(lost.broken());

    // A broken connection stays so, with the same code.
    const auto again = thrown<QueryError>([&] { c->execute("SELECT 1"); });
    CHECK(again.code() == "2013");
}
