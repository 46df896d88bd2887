// FaultDriver, the fault-injecting driver, around a real SQLite driver: refused connects
// and outage windows, broken connections, failed pings and resets, connect and query
// latency against deadlines and interrupts, dropped connections and lost replies.
#include "support/sqlite_support.hpp"
#include "support/test_driver.hpp"

using namespace poolbench;
using namespace sqltest;
using namespace std::chrono_literals;

TEST_CASE("FaultDriver injects refused connects, broken connections, failed pings and resets", "[sqlite][fault]") {
    auto settings = std::make_shared<FaultSettings>();
    auto inner = make_driver("sqlite::memory:");
    FaultDriver driver(inner, settings);
    CHECK(driver.backend() == poolbench::Backend::sqlite);
    CHECK(driver.describe() == "sqlite::memory:");

    SECTION("refuse_connect") {
        settings->refuse_connect = true;
        CHECK(connect_error(driver) == "injected: connection refused (FaultDriver)");
        CHECK(connect_error(driver) == "injected: connection refused (FaultDriver)");
        CHECK(driver.connects() == 2);
        settings->refuse_connect = false;
        auto conn = driver.connect(deadline());
        CHECK(conn->ping());
        CHECK(driver.connects() == 3);
    }
    SECTION("break_on_query breaks only the next statement's connection") {
        auto a = driver.connect(deadline());
        auto b = driver.connect(deadline());
        a->execute("CREATE TABLE t(x)");
        settings->break_on_query = true;
        const auto e = query_error(*a, "INSERT INTO t VALUES (1)");
        CHECK(e.broken());
        CHECK(contains(e.what(), "injected"));
        CHECK(a->is_broken());
        CHECK_FALSE(a->ping());
        CHECK_FALSE(settings->break_on_query.load());  // consumed
        CHECK(query_error(*a, "SELECT 1").broken());   // stays broken
        CHECK_FALSE(b->is_broken());
        CHECK(scalar(*b, "SELECT count(*) FROM t") == 0);  // the broken statement never ran
    }
    SECTION("fail_ping and fail_reset") {
        auto conn = driver.connect(deadline());
        settings->fail_ping = true;
        CHECK_FALSE(conn->ping());
        settings->fail_ping = false;
        CHECK(conn->ping());
        conn->execute("BEGIN");
        settings->fail_reset = true;
        CHECK_THROWS_AS(conn->reset(), QueryError);
        CHECK(conn->in_transaction());
        settings->fail_reset = false;
        conn->reset();
        CHECK_FALSE(conn->in_transaction());
    }
    SECTION("connect latency gives up at the deadline") {
        settings->connect_latency_us = 30'000'000;  // 30 s
        const auto start = std::chrono::steady_clock::now();
        try {
            (void)driver.connect(start + 20ms);
            FAIL("expected a ConnectError");
        } catch (const ConnectError& e) {
            CHECK(contains(e.what(), "injected: connect timed out"));
        }
        CHECK(std::chrono::steady_clock::now() - start < 10s);
    }
    SECTION("query latency is cut short by interrupt()") {
        auto conn = driver.connect(deadline());
        settings->query_latency_us = 60'000'000;  // 60 s
        const auto e = interrupt_running(*conn, "SELECT 1");
        CHECK(e.code() == "SQLITE_INTERRUPT");
        settings->query_latency_us = 0;
        CHECK(scalar(*conn, "SELECT 3") == 3);
    }
    SECTION("a statement waiting out its latency goes on when the latency is switched off") {
        auto conn = driver.connect(deadline());
        settings->query_latency_us = 60'000'000;  // 60 s
        settings->query_jitter_us = 1'000;
        std::atomic<bool> done{false};
        const auto start = std::chrono::steady_clock::now();
        std::thread t([&] {
            CHECK(scalar(*conn, "SELECT 4") == 4);
            done = true;
        });
        settings->query_latency_us = 0;  // the fault is reverted
        settings->query_jitter_us = 0;
        t.join();
        CHECK(done);
        // Whether the statement began before or after the switch, it did not wait 60 s.
        CHECK(std::chrono::steady_clock::now() - start < 30s);
    }
}

TEST_CASE("FaultDriver: connect latency past the deadline times out there, needs_reset follows the inner connection",
          "[sqlite][fault]") {
    auto settings = std::make_shared<FaultSettings>();
    auto driver = std::make_shared<FaultDriver>(make_driver("sqlite::memory:"), settings);
    settings->connect_latency_us = 2'000'000;  // 2 s, far past the deadline below
    const auto t0 = std::chrono::steady_clock::now();
    try {
        (void)driver->connect(t0 + 30ms);
        FAIL("expected a ConnectError");
    } catch (const ConnectError& e) {
        CHECK(std::string(e.what()) ==
              "injected: connect timed out at its deadline (FaultDriver connect_latency_us=2000000)");
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 30ms);
    CHECK(took < 1500ms);  // gave up at the deadline, not after the full latency

    settings->connect_latency_us = 40'000;  // within the deadline: connect waits it out
    const auto t1 = std::chrono::steady_clock::now();
    auto slow = driver->connect(deadline());
    CHECK(std::chrono::steady_clock::now() - t1 >= 40ms);
    CHECK(slow->ping());
    CHECK(driver->connects() == 2);  // the timed-out attempt counts too

    settings->connect_latency_us = 0;
    auto conn = driver->connect(deadline());
    CHECK_FALSE(conn->needs_reset());
    conn->execute("BEGIN");
    CHECK(conn->needs_reset());
    CHECK(conn->in_transaction());
    conn->reset();
    CHECK_FALSE(conn->needs_reset());
}

TEST_CASE("FaultDriver: refuse_for is an outage window that ends by itself, and drop_probability drops connections",
          "[sqlite][fault]") {
    auto settings = std::make_shared<poolbench::FaultSettings>();
    auto driver = std::make_shared<poolbench::FaultDriver>(poolbench::make_driver("sqlite::memory:"), settings);
    settings->refuse_for(std::chrono::milliseconds(100));
    CHECK_THROWS_WITH(driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1)),
                      Catch::Contains("refuse_for window"));
    CHECK(pbtest::eventually([&] {
        try {
            return driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1)) != nullptr;
        } catch (const poolbench::ConnectError&) {
            return false;
        }
    }));
    settings->drop_probability = 0.25;
    int dropped = 0;
    for (int i = 0; i < 400; ++i) {
        auto c = driver->connect(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        try {
            (void)c->query("SELECT 1");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.broken());
            CHECK(c->is_broken());
            ++dropped;
        }
    }
    INFO("dropped " << dropped << " of 400");
    CHECK(dropped > 50);   // 25% of 400 = 100, far from both bounds
    CHECK(dropped < 160);
}

TEST_CASE("FaultDriver: lose_reply_probability runs the statement, then breaks the connection before its reply",
          "[sqlite][fault]") {
    TempDir dir;
    auto settings = std::make_shared<FaultSettings>();
    auto driver = std::make_shared<FaultDriver>(make_driver("sqlite://" + dir.file("replies.db")), settings);
    auto setup = driver->connect(deadline());
    setup->execute("CREATE TABLE t (v INTEGER)");

    // A COMMIT whose reply is lost: the caller sees connection_lost, yet the row is there.
    auto conn = driver->connect(deadline());
    conn->execute("BEGIN");
    conn->execute("INSERT INTO t VALUES (1)");
    settings->lose_reply_probability = 1.0;
    try {
        conn->execute("COMMIT");
        FAIL("the COMMIT's reply was not lost");
    } catch (const poolbench::QueryError& e) {
        CHECK(e.broken());
        CHECK(e.kind() == poolbench::ErrorKind::connection_lost);
        CHECK(std::string(e.what()).find("after the statement ran") != std::string::npos);
    }
    CHECK(conn->is_broken());
    settings->lose_reply_probability = 0.0;
    // The connection stays broken: the next statement does not run.
    CHECK_THROWS_AS(conn->execute("INSERT INTO t VALUES (2)"), poolbench::QueryError);
    CHECK(setup->query("SELECT count(*) FROM t").int_at(0) == 1);

    // A fraction: about that share of statements lose their reply.
    settings->lose_reply_probability = 0.25;
    int lost = 0;
    for (int i = 0; i < 400; ++i) {
        auto c = driver->connect(deadline());
        try {
            c->execute("INSERT INTO t VALUES (3)");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.broken());
            ++lost;
        }
    }
    settings->lose_reply_probability = 0.0;
    INFO("lost " << lost << " of 400");
    CHECK(lost > 50);  // 25% of 400 = 100, far from both bounds
    CHECK(lost < 160);
    // Every statement ran, its reply lost or not.
    CHECK(setup->query("SELECT count(*) FROM t WHERE v = 3").int_at(0) == 400);
}
