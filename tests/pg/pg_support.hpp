// pg_support.hpp — helpers for the PostgreSQL tier: the server URL, drivers, sockets.
//
// The tests need a real server: POOLBENCH_PG_URL names it. scripts/pg_sandbox.sh starts a
// throwaway one; a missing variable FAILS every test (never a silent skip).
#pragma once

#include <catch2/catch.hpp>

#include "../../lib/src/drivers_internal.hpp"
#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"
#include "poolbench/url.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace pgtest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// The test server's URL. FAILs the test when POOLBENCH_PG_URL is not set.
inline std::string server_url() {
    const char* url = std::getenv("POOLBENCH_PG_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PG_URL is not set: the [pg] tests need a PostgreSQL server. Start a throwaway one with "
             "eval \"$(scripts/pg_sandbox.sh start)\" (stop it with scripts/pg_sandbox.sh stop), or run "
             "scripts/pg_sandbox.sh run <test command>");
    }
    return url;
}

/// PgBouncer's URL (transaction pooling in front of the test server: scripts/pgbouncer_sandbox.sh,
/// default_pool_size 10). FAILs the test when POOLBENCH_PGBOUNCER_URL is not set.
inline std::string pgbouncer_url() {
    const char* url = std::getenv("POOLBENCH_PGBOUNCER_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PGBOUNCER_URL is not set: the [pgbouncer] tests need PgBouncer in front of the test server. "
             "Start one with eval \"$(scripts/pgbouncer_sandbox.sh start)\" (after pg_sandbox.sh; stop it with "
             "scripts/pgbouncer_sandbox.sh stop), or run scripts/pgbouncer_sandbox.sh run <test command>");
    }
    return url;
}

/// The server URL with extra query parameters ("a=b&c=d") appended.
inline std::string url_with(const std::string& params) {
    std::string url = server_url();
    if (params.empty()) return url;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += params;
    return url;
}

/// The password in the server URL ("" when it has none).
inline std::string server_password() {
    const std::string url = server_url();
    const std::size_t start = url.find("://");
    const std::size_t at = url.find('@', start);
    const std::size_t colon = url.find(':', start + 3);
    if (start == std::string::npos || at == std::string::npos || colon == std::string::npos || colon > at) return {};
    return url.substr(colon + 1, at - colon - 1);
}

/// The server URL with its host:port replaced by `hostport` (credentials and path kept).
inline std::string url_at(const std::string& hostport) {
    const std::string url = server_url();
    const std::size_t at = url.find('@');
    const std::size_t slash = url.find('/', at);
    REQUIRE(at != std::string::npos);
    REQUIRE(slash != std::string::npos);
    return url.substr(0, at + 1) + hostport + url.substr(slash);
}

/// The server URL with its database name replaced.
inline std::string url_with_db(const std::string& db) {
    std::string url = server_url();
    const std::size_t at = url.find('@');
    const std::size_t slash = url.find('/', at);
    const std::size_t query = url.find('?', slash);
    return url.substr(0, slash + 1) + db + (query == std::string::npos ? "" : url.substr(query));
}

/// The server URL with its password replaced.
inline std::string url_with_password(const std::string& password) {
    std::string url = server_url();
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    const std::size_t colon = url.find(':', start);
    REQUIRE(colon < at);
    return url.substr(0, colon + 1) + password + url.substr(at);
}

inline std::shared_ptr<poolbench::Driver> driver_for(const std::string& url) {
    return poolbench::internal::make_postgres_driver(poolbench::parse_db_url(url));
}

inline std::shared_ptr<poolbench::Driver> driver(const std::string& params = "") {
    return driver_for(url_with(params));
}

inline std::unique_ptr<poolbench::Connection> connect(const std::string& params = "") {
    return driver(params)->connect(Clock::now() + 10s);
}

/// A name no other test run uses at the same time (application names, table names).
inline std::string unique_name(const std::string& prefix) {
    static std::atomic<int> counter{0};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

inline poolbench::Value I(std::int64_t v) { return poolbench::Value{v}; }

inline bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

inline std::string text(const poolbench::Value& v) {
    const auto* s = std::get_if<std::string>(&v);
    REQUIRE(s != nullptr);
    return *s;
}

inline std::string text_at(const poolbench::Rows& rows, std::size_t r = 0, std::size_t c = 0) {
    REQUIRE(r < rows.size());
    REQUIRE(c < rows.rows[r].size());
    return text(rows.rows[r][c]);
}

/// Waits for `condition` up to `limit`, polling; true when it held.
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5000ms) {
    const auto end = Clock::now() + limit;
    while (true) {
        if (condition()) return true;
        if (Clock::now() >= end) return false;
        // The polling cadence of a condition wait (conditions here query the server), not a
        // fixed delay standing in for synchronisation.
        std::this_thread::sleep_for(10ms);
    }
}

/// The server process id behind a connection.
inline std::int64_t backend_pid(poolbench::Connection& c) { return c.query("SELECT pg_backend_pid()").int_at(0); }

/// Runs `fn`, which must throw T; returns the exception.
template <typename T, typename Fn>
T thrown(Fn&& fn) {
    try {
        fn();
    } catch (const T& e) {
        return e;
    } catch (const std::exception& e) {
        FAIL("expected another exception type, got: " << e.what());
    }
    FAIL("expected an exception, nothing was thrown");
    throw std::logic_error("unreachable");
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picked; optionally listening.
class LoopbackSocket {
public:
    explicit LoopbackSocket(bool listening) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        if (listening) REQUIRE(::listen(fd_, 16) == 0);
    }
    LoopbackSocket(const LoopbackSocket&) = delete;
    LoopbackSocket& operator=(const LoopbackSocket&) = delete;
    ~LoopbackSocket() { close(); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    [[nodiscard]] int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace pgtest
