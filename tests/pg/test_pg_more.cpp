// PostgreSQL driver and pool paths the main pg suite does not reach: duration units,
// result conversion of numbers too large for a double, the parameter limit, a full
// statement cache, COPY, a backend that stops answering, a connection the network drops,
// connect failures over a Unix socket and without a password, a failing reset_query, and
// keepalive finding a dead connection.
#include "pg_support.hpp"

#include "poolbench/pool.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <vector>

using namespace poolbench;
using namespace pgtest;

namespace {

Value I(std::int64_t v) { return Value{v}; }

using pgtest::backend_pid;

using pgtest::thrown;

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

/// Stops a server backend (SIGSTOP) so it answers nothing, and lets it go on destruction.
class StoppedBackend {
public:
    explicit StoppedBackend(std::int64_t pid) : pid_(static_cast<pid_t>(pid)) {
        stopped_ = ::kill(pid_, SIGSTOP) == 0;
        error_ = errno;
    }
    StoppedBackend(const StoppedBackend&) = delete;
    StoppedBackend& operator=(const StoppedBackend&) = delete;
    ~StoppedBackend() {
        if (stopped_) ::kill(pid_, SIGCONT);
    }
    [[nodiscard]] bool stopped() const { return stopped_; }
    [[nodiscard]] std::string why_not() const { return std::strerror(error_); }

private:
    pid_t pid_;
    bool stopped_ = false;
    int error_ = 0;
};

/// The descriptor of this process's TCP socket whose local port is `port`, or -1.
int socket_with_local_port(int port) {
    int found = -1;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
        int local = -1;
        if (addr.ss_family == AF_INET) local = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        if (addr.ss_family == AF_INET6) local = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        if (local == port) {
            found = static_cast<int>(fd);
            break;
        }
    }
    ::closedir(dir);
    return found;
}

/// The server URL without its password.
std::string url_without_password() {
    std::string url = server_url();
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    const std::size_t colon = url.find(':', start);
    REQUIRE(colon < at);
    return url.substr(0, colon) + url.substr(at);
}

std::uint64_t destroyed(const PoolStats& s, DestroyReason r) { return s.destroyed_by_reason[static_cast<std::size_t>(r)]; }

}  // namespace

TEST_CASE("pg more: statement_timeout takes ms, s, m, min and h, and nothing else", "[pg]") {
    // The CLI's grammar (poolbench/internal/duration.hpp) with a bare number as milliseconds:
    // fractions too, at most 30 days.
    for (const char* ok : {"250", "250ms", "5s", "2m", "2min", "1h", "1H", "0", "1.5s", "720h"}) {
        INFO(ok);
        auto d = driver(std::string("statement_timeout=") + ok);
        CHECK(d->backend() == poolbench::Backend::postgresql);
    }
    for (const char* bad : {"5x", "ms", "1d", "-1s", "99999999999999h", "721h", "1.s"}) {
        INFO(bad);
        CHECK_THROWS_WITH(driver(std::string("statement_timeout=") + bad),
                          Catch::Contains(std::string("invalid statement_timeout '") + bad + "'"));
    }
    // A long timeout does not cut a short statement; "1h" is an hour, not a millisecond.
    auto c = connect("statement_timeout=1h");
    CHECK(c->query("SELECT pg_sleep(0.05), 3").int_at(0, 1) == 3);
}

TEST_CASE("pg more: a number too large for a double comes back as its text", "[pg]") {
    auto c = connect();
    const auto rows = c->query("SELECT 1e400::numeric, 1.5::numeric, 'NaN'::float8");
    REQUIRE(rows.size() == 1);
    const auto& row = rows.rows[0];
    const auto* big = std::get_if<std::string>(&row[0]);
    REQUIRE(big != nullptr);
    CHECK(big->size() == 401);
    CHECK(big->front() == '1');
    CHECK(big->find_first_not_of('0', 1) == std::string::npos);
    const auto* small = std::get_if<double>(&row[1]);
    REQUIRE(small != nullptr);
    CHECK(*small == 1.5);
    const auto* nan = std::get_if<double>(&row[2]);
    REQUIRE(nan != nullptr);
    CHECK(std::isnan(*nan));
}

TEST_CASE("pg more: more than 65535 parameters is refused before sending", "[pg]") {
    auto c = connect();
    std::vector<Value> params(65536, Value{std::int64_t{1}});
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT $1", params); });
    CHECK(e.code() == "54023");
    CHECK_FALSE(e.broken());
    CHECK(contains(e.what(), "at most 65535 parameters, 65536 were given"));
    CHECK_FALSE(c->is_broken());
    CHECK(c->query("SELECT $1::int + 1", {I(41)}).int_at(0) == 42);
}

TEST_CASE("pg more: past 256 cached statements, new ones run unprepared", "[pg]") {
    auto c = connect();
    for (int i = 0; i < 256; ++i) {
        CHECK(c->query("SELECT " + std::to_string(i) + " + $1::int", {I(1)}).int_at(0) == i + 1);
    }
    const auto prepared = [&] { return c->query("SELECT count(*) FROM pg_prepared_statements").int_at(0); };
    // The count query is itself statement 257: it runs unprepared, like every new one now.
    CHECK(prepared() == 256);
    CHECK(c->query("SELECT 1000 + $1::int", {I(1)}).int_at(0) == 1001);
    CHECK(prepared() == 256);
    // A cached statement still runs prepared.
    CHECK(c->query("SELECT 7 + $1::int", {I(1)}).int_at(0) == 8);
}

TEST_CASE("pg more: COPY TO STDOUT is drained, COPY FROM STDIN is refused, the connection stays usable", "[pg]") {
    auto c = connect();
    c->execute("CREATE TEMP TABLE copy_more(x int)");
    c->execute("INSERT INTO copy_more SELECT generate_series(1, 1000)");
    c->execute("COPY copy_more TO STDOUT");
    CHECK(c->query("COPY (SELECT 1) TO STDOUT").empty());
    const auto e = thrown<QueryError>([&] { c->execute("COPY copy_more FROM STDIN"); });
    CHECK(e.code() == "57014");
    CHECK_FALSE(e.broken());
    CHECK(contains(e.what(), "COPY FROM STDIN is not supported by poolbench"));
    CHECK_FALSE(c->is_broken());
    CHECK_FALSE(c->in_transaction());
    CHECK(c->query("SELECT count(*) FROM copy_more").int_at(0) == 1000);
}

TEST_CASE("pg more: a backend that stops answering fails ping within statement_timeout", "[pg]") {
    auto c = connect("statement_timeout=150ms");
    const auto pid = backend_pid(*c);
    REQUIRE(c->ping());
    {
        StoppedBackend stop(pid);
        if (!stop.stopped()) {
            WARN("cannot stop backend " << pid << ": " << stop.why_not());
            return;
        }
        const auto t0 = Clock::now();
        CHECK_FALSE(c->ping());  // gives up at statement_timeout, not the 5 s ping timeout
        const auto took = Clock::now() - t0;
        CHECK(took >= 140ms);
        CHECK(took < 2000ms);
        CHECK(c->is_broken());  // its state is unknown: never reused
        const auto e = thrown<QueryError>([&] { c->execute("SELECT 1"); });
        CHECK(e.code() == "08003");
        CHECK(e.broken());
    }
    auto admin = connect();
    (void)admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)});
}

TEST_CASE("pg more: a connection the network drops is broken, with no server message", "[pg]") {
    auto c = connect();
    const auto port = c->query("SELECT inet_client_port()").int_at(0);
    const int fd = socket_with_local_port(static_cast<int>(port));
    REQUIRE(fd >= 0);
    REQUIRE(::shutdown(fd, SHUT_RDWR) == 0);
    const auto e = thrown<QueryError>([&] { (void)c->query("SELECT 1"); });
    INFO(e.what());
    CHECK(e.broken());
    CHECK(e.code().substr(0, 2) == "08");
    CHECK(c->is_broken());
    CHECK_FALSE(c->ping());
}

TEST_CASE("pg more: refused on a Unix socket names the socket directory and port", "[pg]") {
    std::random_device rd;
    const auto dir = std::filesystem::temp_directory_path() / ("pb-sock-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / ".s.PGSQL.5999").string();
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // bound, never listening
    const std::string url = "postgresql://pb@/pb?host=" + dir.string() + "&port=5999";
    const auto e = thrown<ConnectError>([&] { (void)driver_for(url)->connect(Clock::now() + 5s); });
    ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    INFO(e.what());
    CHECK(contains(e.what(), "connection refused: is PostgreSQL running on " + dir.string() + ":5999?"));
}

TEST_CASE("pg more: a server that wants a password the URL does not give says so", "[pg]") {
    const auto e = thrown<ConnectError>([&] { (void)driver_for(url_without_password())->connect(Clock::now() + 10s); });
    const std::string message = e.what();
    INFO(message);
    CHECK(contains(message, "the server wants a password for user \"poolbench\" and the URL gives none"));
}

TEST_CASE("pg more: a failing reset_query destroys the connection on return", "[pg]") {
    PoolConfig config;
    config.name = "pg-reset";
    config.max_size = 2;
    config.acquire_timeout = 10s;
    Pool pool(driver("reset_query=SELECT%201/0"), config);
    std::int64_t first_pid = 0;
    {
        Lease l = pool.acquire();
        first_pid = backend_pid(*l);
        CHECK(l->needs_reset());
    }
    auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::reset) == 1);
    CHECK(s.total == 0);
    Lease again = pool.acquire();
    CHECK(backend_pid(*again) != first_pid);
}

TEST_CASE("pg more: keepalive finds a terminated idle connection and replaces it", "[pg]") {
    PoolConfig config;
    config.name = "pg-keepalive";
    config.max_size = 2;
    config.min_idle = 1;
    config.keepalive_interval = 50ms;
    config.housekeeping_interval = 10ms;
    config.validation_interval = 60'000ms;  // only keepalive pings
    config.acquire_timeout = 10s;
    Pool pool(driver(), config);
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    std::int64_t pid = 0;
    {
        Lease l = pool.acquire();
        pid = backend_pid(*l);
    }
    auto admin = connect();
    REQUIRE(admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)}).int_at(0) == 1);
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::validation) == 1; }));
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    CHECK(pool.stats().reconnects == 1);
    CHECK(pool.stats().keepalives >= 1);
    Lease l = pool.acquire();
    CHECK(backend_pid(*l) != pid);
    CHECK(pool.stats().validation_failures == 0);  // no caller ever met the dead one
}

TEST_CASE("pg more: URLs libpq cannot read are ConfigErrors that never show the password", "[pg]") {
    CHECK_THROWS_WITH(driver_for("sqlite::memory:"),
                      "'sqlite::memory:' is not a PostgreSQL URL (postgresql://user@host:port/db)");
    CHECK_THROWS_WITH(driver_for("postgresql://u@h/d%zzb"),
                      Catch::Contains("invalid PostgreSQL URL 'postgresql://u@h/d%zzb': ") &&
                          Catch::Contains("invalid percent-encoded token: \"d%zzb\""));
    try {
        (void)driver_for("postgresql://u:s3cr%zzet@h/db");
        FAIL("expected a ConfigError");
    } catch (const ConfigError& e) {
        const std::string message = e.what();
        INFO(message);
        CHECK(message.find("s3cr") == std::string::npos);
        CHECK(contains(message, "invalid PostgreSQL URL 'postgresql://u:***@h/db'"));
        CHECK(contains(message, "invalid percent-encoded token: \"***\""));
    }
}
