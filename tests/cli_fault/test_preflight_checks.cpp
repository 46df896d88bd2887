// test_preflight_checks.cpp — preflight_checks.hpp against the real servers: a session
// that may not write (PostgreSQL default_transaction_read_only from the URL; MariaDB's
// read_only set globally, and a read-only session) is named before any load, one that
// may is not. SET GLOBAL read_only changes the whole MariaDB server: this tier runs
// alone (RUN_SERIAL), and the guard sets it back on every path.
#include "../cli/cli_support.hpp"
#include "../cli/mariadb_session.hpp"
#include "../../src/preflight_checks.hpp"

#include <poolbench/drivers.hpp>

#include <vector>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using poolbench::Backend;
using poolbench::cli::check_writable;
using poolbench::cli::read_only_refusal;
using poolbench::cli::ServerReadOnly;

namespace {

std::unique_ptr<poolbench::Connection> open(const std::string& url) {
    return poolbench::make_driver(url)->connect(std::chrono::steady_clock::now() + std::chrono::seconds(15));
}

/// What check_writable reads of a workload.
struct FakeWorkload {
    bool write = false;
    [[nodiscard]] bool writes() const { return write; }
};

const std::vector<FakeWorkload> reads_only{{false}, {false}};
const std::vector<FakeWorkload> then_writes{{false}, {true}};

}  // namespace

TEST_CASE("preflight: a PostgreSQL session with default_transaction_read_only refuses a writing workload",
          "[preflight][pg]") {
    auto writable = open(pg_url());
    CHECK_FALSE(read_only_refusal(*writable, Backend::postgresql).has_value());
    check_writable(*writable, Backend::postgresql, then_writes);  // nothing thrown: the next line says so too
    CHECK(writable->query("SELECT current_setting('transaction_read_only')").rows.at(0).at(0) ==
          poolbench::Value{std::string("off")});

    auto read_only = open(pg_url() + "?options=-cdefault_transaction_read_only%3Don");
    const auto why = read_only_refusal(*read_only, Backend::postgresql);
    REQUIRE(why.has_value());
    CHECK(*why ==
          "the server is read-only for this session (transaction_read_only is on: default_transaction_read_only) and "
          "the workload writes: point --db at a server that takes writes (the primary), or run a workload that only "
          "reads (select1, read)");
    CHECK_THROWS_MATCHES(check_writable(*read_only, Backend::postgresql, then_writes), ServerReadOnly,
                         Catch::Message(*why));
    check_writable(*read_only, Backend::postgresql, reads_only);  // a read workload may run
}

TEST_CASE("preflight: MariaDB with read_only on, or a read-only session, refuses a writing workload",
          "[preflight][mariadb]") {
    // A fresh session for each refusal: 1290 is one of broken_errors, so the refused
    // session is broken afterwards (a preflight throws then anyway).
    CHECK_FALSE(read_only_refusal(*open(mariadb_url()), Backend::mariadb).has_value());
    {
        DiagSession admin(mariadb_admin_url());
        GlobalSetting read_only(admin, "read_only", "1");
        const auto why = read_only_refusal(*open(mariadb_url()), Backend::mariadb);
        REQUIRE(why.has_value());
        CHECK(why->find("the server is read-only (read_only is on, and this account has no READ ONLY ADMIN) and the "
                        "workload writes: point --db at a server that takes writes") == 0);
        CHECK_THROWS_AS(check_writable(*open(mariadb_url()), Backend::mariadb, then_writes), ServerReadOnly);
        check_writable(*open(mariadb_url()), Backend::mariadb, reads_only);  // asks nothing: a read workload may run
        // An account READ ONLY ADMIN exempts (poolbench_admin) may still write.
        CHECK_FALSE(read_only_refusal(*open(mariadb_admin_url()), Backend::mariadb).has_value());
    }
    CHECK_FALSE(read_only_refusal(*open(mariadb_url()), Backend::mariadb).has_value());  // read_only is off again

    auto session = open(mariadb_url());
    session->execute("SET SESSION TRANSACTION READ ONLY");
    const auto why = read_only_refusal(*session, Backend::mariadb);
    REQUIRE(why.has_value());
    CHECK(why->find("the session is read-only") == 0);
}

TEST_CASE("preflight: backends that do not say are never called read-only", "[preflight]") {
    auto null = open("null://");
    CHECK_FALSE(read_only_refusal(*null, Backend::null).has_value());
    check_writable(*null, Backend::null, then_writes);
    CHECK_FALSE(read_only_refusal(*null, Backend::sqlite).has_value());
}
