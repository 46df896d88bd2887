// mariadb_support.hpp — helpers for the MariaDB tiers: the server URLs, drivers, sockets,
// accounts of a test's own.
//
// The tests need a real server: POOLBENCH_MARIADB_URL names it (user poolbench: ALL on
// poolbench.*, KILL and SET GLOBAL, CREATE USER), POOLBENCH_MARIADB_ADMIN_URL an account
// with every privilege (SET GLOBAL read_only). scripts/mariadb_sandbox.sh starts a
// throwaway server and prints both; a missing variable FAILS every test (never a silent skip).
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
#include <vector>

namespace mtest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// The value of environment variable `name`; FAILs the test when it is not set.
inline std::string required_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        FAIL(name << " is not set: the [mariadb] tests need a MariaDB server. Start a throwaway one with "
                     "eval \"$(scripts/mariadb_sandbox.sh start)\" (stop it with scripts/mariadb_sandbox.sh stop), "
                     "or run scripts/mariadb_sandbox.sh run <test command>");
    }
    return value;
}

/// The test server's URL (user poolbench). FAILs the test when POOLBENCH_MARIADB_URL is not set.
inline std::string server_url() { return required_env("POOLBENCH_MARIADB_URL"); }

/// The URL of the account with every privilege (poolbench_admin).
inline std::string admin_url() { return required_env("POOLBENCH_MARIADB_ADMIN_URL"); }

/// `url` with extra query parameters ("a=b&c=d") appended.
inline std::string with_params(std::string url, const std::string& params) {
    if (params.empty()) return url;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += params;
    return url;
}

/// The server URL with extra query parameters appended.
inline std::string url_with(const std::string& params) { return with_params(server_url(), params); }

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

/// The server URL with its user and password replaced.
inline std::string url_as(const std::string& user, const std::string& password) {
    const std::string url = server_url();
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    REQUIRE(at != std::string::npos);
    return url.substr(0, start) + user + ":" + password + url.substr(at);
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
    return poolbench::internal::make_mariadb_driver(poolbench::parse_db_url(url));
}

inline std::shared_ptr<poolbench::Driver> driver(const std::string& params = "") {
    return driver_for(url_with(params));
}

inline std::unique_ptr<poolbench::Connection> connect(const std::string& params = "") {
    return driver(params)->connect(Clock::now() + 10s);
}

/// A connection as poolbench_admin (every privilege).
inline std::unique_ptr<poolbench::Connection> admin_connect() {
    return driver_for(admin_url())->connect(Clock::now() + 10s);
}

/// A name no other test run uses at the same time (table names, account names; at most
/// 32 characters for an account: keep prefixes short).
inline std::string unique_name(const std::string& prefix) {
    static std::atomic<int> counter{0};
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

inline poolbench::Value I(std::int64_t v) { return poolbench::Value{v}; }
inline poolbench::Value S(std::string v) { return poolbench::Value{std::move(v)}; }

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

/// The server's id of the session behind a connection (what KILL takes).
inline std::int64_t thread_id(poolbench::Connection& c) { return c.query("SELECT CONNECTION_ID()").int_at(0); }

/// Whether session `id` still exists on the server (asked on `observer`).
inline bool session_exists(poolbench::Connection& observer, std::int64_t id) {
    return observer.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", {I(id)}).int_at(0) > 0;
}

/// Whether session `id` is running a statement that starts with `prefix` (asked on `observer`).
inline bool session_running(poolbench::Connection& observer, std::int64_t id, const std::string& prefix) {
    return observer
               .query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND IN ('Query', "
                      "'Execute') AND INFO LIKE CONCAT(?, '%')",
                      {I(id), S(prefix)})
               .int_at(0) > 0;
}

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

/// A table in the poolbench database that exists for one test (made and dropped on a
/// connection of its own).
class Table {
public:
    Table(const std::string& prefix, const std::string& columns) : name_(unique_name(prefix)) {
        connect()->execute("CREATE TABLE " + name_ + " (" + columns + ") ENGINE=InnoDB");
    }
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;
    ~Table() {
        try {
            connect()->execute("DROP TABLE IF EXISTS " + name_);
        } catch (...) {  // NOLINT(bugprone-empty-catch): best effort in a destructor
        }
    }
    [[nodiscard]] const std::string& name() const { return name_; }

private:
    std::string name_;
};

/// An account of the test's own (SELECT, INSERT, UPDATE, DELETE on poolbench.*, no
/// server-wide privilege), dropped afterwards; its sessions are told apart by user name.
class TestUser {
public:
    explicit TestUser(const std::string& prefix) : name_(unique_name(prefix)), password_("pw_" + name_) {
        REQUIRE(name_.size() <= 32);
        auto c = connect();
        c->execute("CREATE USER '" + name_ + "'@'%' IDENTIFIED BY '" + password_ + "'");
        c->execute("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON poolbench.* TO '" + name_ + "'@'%'");
    }
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;
    ~TestUser() {
        try {
            connect()->execute("DROP USER IF EXISTS '" + name_ + "'@'%'");
        } catch (...) {  // NOLINT(bugprone-empty-catch): best effort in a destructor
        }
    }
    [[nodiscard]] const std::string& name() const { return name_; }
    /// The server URL as this account, with extra query parameters.
    [[nodiscard]] std::string url(const std::string& params = "") const {
        return with_params(url_as(name_, password_), params);
    }
    /// How many sessions this account has on the server (asked on `observer`).
    [[nodiscard]] std::int64_t sessions(poolbench::Connection& observer) const {
        return observer.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", {S(name_)})
            .int_at(0);
    }
    /// The ids of this account's sessions.
    [[nodiscard]] std::vector<std::int64_t> session_ids(poolbench::Connection& observer) const {
        std::vector<std::int64_t> ids;
        const auto rows =
            observer.query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? ORDER BY ID", {S(name_)});
        for (std::size_t i = 0; i < rows.size(); ++i) ids.push_back(rows.int_at(i));
        return ids;
    }

private:
    std::string name_;
    std::string password_;
};

/// A TCP socket bound to 127.0.0.1 on a port the kernel picked; optionally listening
/// (then the kernel accepts connections into the backlog and nothing is ever sent).
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

}  // namespace mtest
