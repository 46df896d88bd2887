// test_pg_pgbouncer.cpp — the PostgreSQL driver through PgBouncer in transaction pooling
// (POOLBENCH_PGBOUNCER_URL: scripts/pgbouncer_sandbox.sh, default_pool_size 10, in front of
// the test server; FAILS without it), and prepare= against the server itself.
//
// PgBouncer hands each transaction whichever server connection is free and, by default,
// the one released last (LIFO). A client whose server connection another client holds in
// a transaction therefore runs its next statement on another server process: the tests
// make that happen on purpose instead of hoping for it (hold_server).
#include "pg_support.hpp"

#include <set>
#include <vector>

using namespace poolbench;
using namespace pgtest;

namespace {

Value S(std::string v) { return Value{std::move(v)}; }

Clock::time_point soon() { return Clock::now() + 10s; }

/// Runs one parameterised statement and checks its answer; returns the server pid that ran it.
std::int64_t checked_query(Connection& c, std::int64_t n, const std::string& word) {
    const Rows r = c.query("SELECT pg_catalog.pg_backend_pid(), $1::int8 * 2, $2::text || '!', $3::text IS NULL",
                           {I(n), S(word), Value{}});
    REQUIRE(r.size() == 1);
    CHECK(r.int_at(0, 1) == n * 2);
    CHECK(text_at(r, 0, 2) == word + "!");
    CHECK(r.int_at(0, 3) == 1);
    return r.int_at(0, 0);
}

/// Three clients of `d`, the last of them holding server process `pid` in a transaction
/// (the others hold theirs too). PgBouncer hands out the server connection released last
/// first, so the first client usually gets it; under other tests' load it may be taken for
/// a moment: round after round until it comes up, for at most 10 s. Never more than three:
/// other tests that hold PgBouncer's other server connections must not wait on these.
/// Empty when `pid` never came up.
std::vector<std::unique_ptr<Connection>> hold_server(Driver& d, std::int64_t pid) {
    std::vector<std::unique_ptr<Connection>> holders;
    for (int i = 0; i < 3; ++i) holders.push_back(d.connect(soon()));
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
        for (std::size_t i = 0; i < holders.size(); ++i) {
            holders[i]->execute("BEGIN");
            if (backend_pid(*holders[i]) == pid) {
                holders.resize(i + 1);
                return holders;
            }
        }
        for (auto& h : holders) h->execute("COMMIT");
    }
    return {};
}

}  // namespace

TEST_CASE("pgbouncer: prepare=auto finds PgBouncer and runs query() unnamed on whichever server process",
          "[pg][pgbouncer]") {
    const auto d = driver_for(pgbouncer_url());
    CHECK(d->prepared_statements().empty());  // not decided before the first connection
    auto a = d->connect(soon());
    CHECK(d->prepared_statements() == "unnamed");

    const std::int64_t first = checked_query(*a, 1, "one");
    // Another client holds `first`'s server process in a transaction ...
    auto holders = hold_server(*d, first);
    REQUIRE_FALSE(holders.empty());
    // ... so the same client connection runs on another one, with parameters.
    const std::int64_t second = checked_query(*a, 2, "two");
    CHECK(second != first);
    for (auto& h : holders) h->execute("COMMIT");
    holders.clear();

    // Many transactions from more clients than PgBouncer has server connections.
    constexpr int clients = 16, transactions = 60;
    std::vector<std::unique_ptr<Connection>> conns;
    for (int i = 0; i < clients; ++i) conns.push_back(d->connect(soon()));
    std::vector<std::thread> threads;
    std::vector<std::string> errors(clients);
    std::vector<std::set<std::int64_t>> seen(clients);
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&, t] {
            Connection& c = *conns[static_cast<std::size_t>(t)];
            try {
                for (int i = 0; i < transactions; ++i) {
                    c.execute("BEGIN");
                    const std::string word = "w" + std::to_string(t) + "_" + std::to_string(i);
                    const Rows r = c.query("SELECT pg_catalog.pg_backend_pid(), $1::int8 + $2::int8, $3::text",
                                           {I(i), I(t), S(word)});
                    const Rows again = c.query("SELECT pg_catalog.pg_backend_pid(), upper($1::text)", {S(word)});
                    c.execute("COMMIT");
                    if (r.int_at(0, 1) != i + t || std::get<std::string>(r.rows[0][2]) != word ||
                        std::get<std::string>(again.rows[0][1]) != "W" + word.substr(1)) {
                        errors[static_cast<std::size_t>(t)] = "wrong answer in transaction " + std::to_string(i);
                        return;
                    }
                    // One transaction, one server process.
                    if (r.int_at(0, 0) != again.int_at(0, 0)) {
                        errors[static_cast<std::size_t>(t)] = "a transaction moved between server processes";
                        return;
                    }
                    seen[static_cast<std::size_t>(t)].insert(r.int_at(0, 0));
                }
            } catch (const std::exception& e) {
                errors[static_cast<std::size_t>(t)] = e.what();
            }
        });
    }
    for (auto& th : threads) th.join();
    std::set<std::int64_t> servers;
    for (int t = 0; t < clients; ++t) {
        INFO("client " << t);
        CHECK(errors[static_cast<std::size_t>(t)].empty());
        servers.insert(seen[static_cast<std::size_t>(t)].begin(), seen[static_cast<std::size_t>(t)].end());
    }
    CHECK(servers.size() <= 10);  // PgBouncer's default_pool_size: the server side of the pool
    CHECK(servers.size() >= 2);
}

TEST_CASE("pgbouncer: connect_read_only through PgBouncer leaves the shared server connection writable",
          "[pg][pgbouncer]") {
    const auto d = driver_for(pgbouncer_url());
    auto ro = d->connect_read_only(soon());
    const std::int64_t pid = backend_pid(*ro);
    ro.reset();
    // The server process it used, held by a plain client: not made read-only for it.
    auto holders = hold_server(*d, pid);
    REQUIRE_FALSE(holders.empty());
    CHECK(text_at(holders.back()->query("SELECT current_setting('transaction_read_only')")) == "off");
    for (auto& h : holders) h->execute("COMMIT");
}

TEST_CASE("pgbouncer: prepare= on PostgreSQL itself: auto and on prepare named statements, off does not",
          "[pg][pgbouncer]") {
    auto count_named = [](Connection& c) {
        return c.query("SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE name LIKE 'pb\\_%'").int_at(0);
    };
    SECTION("auto: no pooler, named") {
        const auto d = driver("prepare=auto");
        CHECK(d->prepared_statements().empty());
        auto c = d->connect(soon());
        CHECK(d->prepared_statements() == "named");
        CHECK(checked_query(*c, 3, "three") == backend_pid(*c));
        CHECK(count_named(*c) >= 1);
    }
    SECTION("on") {
        const auto d = driver("prepare=on");
        CHECK(d->prepared_statements() == "named");
        auto c = d->connect(soon());
        (void)checked_query(*c, 4, "four");
        CHECK(count_named(*c) >= 1);
    }
    SECTION("off") {
        const auto d = driver("prepare=off");
        CHECK(d->prepared_statements() == "unnamed");
        auto c = d->connect(soon());
        for (int i = 0; i < 3; ++i) (void)checked_query(*c, i, "off");
        CHECK(count_named(*c) == 0);
    }
}

TEST_CASE("pgbouncer: prepare= takes on, off or auto", "[pg][pgbouncer]") {
    const auto e = thrown<ConfigError>([] { (void)driver("prepare=maybe"); });
    const std::string what = e.what();
    CHECK(contains(what, "invalid prepare 'maybe'"));
    CHECK(contains(what, "on (named"));
    CHECK(contains(what, "off (unnamed"));
    CHECK(contains(what, "auto"));
    CHECK_FALSE(contains(what, server_password()));
}

// prepare=on through transaction pooling: a statement named on one server process is
// missing on the next. Made to happen: the client's statements are prepared inside one
// transaction (one server process, cleared first with DEALLOCATE ALL: other prepare=on runs
// leave pb_N behind on PgBouncer's server connections), then another client holds that
// server process, and the same statement runs on another, also cleared first. DEALLOCATE
// ALL at the end leaves nothing of this test.
TEST_CASE("pgbouncer: prepare=on, a named statement missing on the next server process says why",
          "[pg][pgbouncer]") {
    const auto on = driver_for(pgbouncer_url() + "?prepare=on");
    const auto plain = driver_for(pgbouncer_url());
    CHECK(on->prepared_statements() == "named");
    auto a = on->connect(soon());
    a->execute("BEGIN");
    a->execute("DEALLOCATE ALL");
    const std::string sql = "SELECT pg_catalog.pg_backend_pid(), $1::int8";
    const std::int64_t first = a->query(sql, {I(1)}).int_at(0);
    a->execute("COMMIT");

    auto holders = hold_server(*plain, first);
    REQUIRE_FALSE(holders.empty());
    a->execute("BEGIN");
    a->execute("DEALLOCATE ALL");  // whatever other runs left on this server process (the driver's cache keeps pb_1)
    const auto e = thrown<QueryError>([&] { (void)a->query(sql, {I(2)}); });
    CHECK(e.code() == "26000");
    const std::string what = e.what();
    CHECK(contains(what, "prepared statement \"pb_1\" does not exist (26000: prepare=on: behind a pooler in "
                         "transaction mode (PgBouncer) each transaction may run on another server connection"));
    CHECK(contains(what, "use prepare=auto or prepare=off) in: SELECT pg_catalog.pg_backend_pid(), $1::int8"));
    CHECK(what.find('\n') == std::string::npos);
    a->execute("ROLLBACK");
    holders.back()->execute("DEALLOCATE ALL");  // on `first`'s server process: what `a` prepared there
    for (auto& h : holders) h->execute("COMMIT");
}
