// A server made read-only (SET GLOBAL read_only = 1, as after a failover demotes it): a
// write by an account without READ ONLY ADMIN fails with 1290, kind read_only, and the
// default broken_errors rule breaks the connection so a writing pool reconnects. The global
// affects every session, so this runs in the serial tier; read_only is set back to 0 on
// every path out of a test.
#include "../mariadb/mariadb_support.hpp"

#include <poolbench/poolbench.hpp>

#include "support/pool_stats.hpp"

using namespace std::chrono_literals;
using poolbench::DestroyReason;
using poolbench::ErrorKind;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::QueryError;
using namespace mtest;

namespace {

/// SET GLOBAL read_only = 1 for its lifetime (as poolbench_admin), 0 again on destruction.
class ReadOnlyServer {
public:
    ReadOnlyServer() : admin_(admin_connect()) {
        REQUIRE(admin_->query("SELECT @@GLOBAL.read_only").int_at(0) == 0);
        admin_->execute("SET GLOBAL read_only = 1");
    }
    ReadOnlyServer(const ReadOnlyServer&) = delete;
    ReadOnlyServer& operator=(const ReadOnlyServer&) = delete;
    ~ReadOnlyServer() { lift(); }
    void lift() {
        if (lifted_) return;
        try {
            admin_->execute("SET GLOBAL read_only = 0");
        } catch (...) {  // the connection may be gone: try on a new one
            try {
                admin_connect()->execute("SET GLOBAL read_only = 0");
            } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to do in a destructor
            }
        }
        lifted_ = true;
    }

private:
    std::unique_ptr<poolbench::Connection> admin_;
    bool lifted_ = false;
};

}  // namespace

TEST_CASE("mariadb read-only: a write is 1290, kind read_only, and broken by default", "[mariadb][fault]") {
    Table t("pb_mro", "x INT");
    auto by_default = connect();
    auto kept = connect("broken_errors=1927");  // only "connection killed": 1290 keeps the connection
    {
        ReadOnlyServer read_only;
        // The account has SUPER but not READ ONLY ADMIN: read_only applies to it.
        const auto e = thrown<QueryError>([&] { by_default->execute("INSERT INTO " + t.name() + " VALUES (1)"); });
        INFO(e.what());
        CHECK(e.code() == "1290");
        CHECK(e.native_code() == 1290);
        CHECK(e.kind() == ErrorKind::read_only);
        CHECK(e.broken());
        CHECK(contains(e.what(), "--read-only"));
        CHECK(by_default->is_broken());
        const auto next = thrown<QueryError>([&] { (void)by_default->query("SELECT 1"); });
        CHECK(next.kind() == ErrorKind::connection_lost);

        const auto q = thrown<QueryError>(
            [&] { (void)kept->query("INSERT INTO " + t.name() + " VALUES (?)", {I(1)}); });
        CHECK(q.code() == "1290");
        CHECK(q.kind() == ErrorKind::read_only);
        CHECK_FALSE(q.broken());
        CHECK_FALSE(kept->is_broken());
        CHECK(kept->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);  // reads go on
    }
    // Writable again.
    kept->execute("INSERT INTO " + t.name() + " VALUES (2)");
    CHECK(kept->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
    CHECK(admin_connect()->query("SELECT @@GLOBAL.read_only").int_at(0) == 0);
}

TEST_CASE("mariadb read-only: a writing pool drops the connection and writes again once the server is writable",
          "[mariadb][fault]") {
    Table t("pb_mro_pool", "x INT");
    poolbench::PoolConfig c;
    c.name = "mariadb-read-only";
    c.max_size = 2;
    c.acquire_timeout = 10s;
    Pool pool(driver(), c);
    std::int64_t first = 0;
    {
        ReadOnlyServer read_only;
        Lease l = pool.acquire();
        first = thread_id(*l);
        const auto e = thrown<QueryError>([&] { l->execute("INSERT INTO " + t.name() + " VALUES (1)"); });
        CHECK(e.kind() == ErrorKind::read_only);
        CHECK(l->is_broken());
    }
    CHECK(pbtest::destroyed(pool.stats(), DestroyReason::broken) == 1);
    Lease l = pool.acquire();
    CHECK(thread_id(*l) != first);
    l->execute("INSERT INTO " + t.name() + " VALUES (1)");
    CHECK(l->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 1);
}
