// mariadb_cli_support.hpp — the MariaDB server the [mariadb] CLI tests use, and SQL run
// beside poolbench through the library's own driver (no second client library).
//
// scripts/mariadb_sandbox.sh starts a throwaway server and exports POOLBENCH_MARIADB_URL
// (user poolbench: ALL on poolbench.*, KILL, SET GLOBAL), POOLBENCH_MARIADB_LIMITED_URL
// (may only connect), POOLBENCH_MARIADB_ADMIN_URL (every privilege) and
// POOLBENCH_MARIADB_DIR. A missing variable FAILS the test (never a silent skip).
#pragma once

#include "cli_support.hpp"

#include <poolbench/connection.hpp>
#include <poolbench/drivers.hpp>
#include <poolbench/url.hpp>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>

namespace clitest {

inline std::string mariadb_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        FAIL(std::string(name) + " is not set: the [mariadb] CLI tests need a MariaDB server. Start a throwaway one "
                                 "with eval \"$(scripts/mariadb_sandbox.sh start)\" (stop it with "
                                 "scripts/mariadb_sandbox.sh stop), or run scripts/mariadb_sandbox.sh run <test command>");
    }
    return value;
}

inline std::string mariadb_url() { return mariadb_env("POOLBENCH_MARIADB_URL"); }
inline std::string mariadb_limited_url() { return mariadb_env("POOLBENCH_MARIADB_LIMITED_URL"); }
inline std::string mariadb_admin_url() { return mariadb_env("POOLBENCH_MARIADB_ADMIN_URL"); }
inline std::string mariadb_dir() { return mariadb_env("POOLBENCH_MARIADB_DIR"); }

/// One session on the server, through poolbench's MariaDB driver.
class MariaSession {
public:
    explicit MariaSession(const std::string& url) {
        driver_ = poolbench::make_driver(url);
        conn_ = driver_->connect(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    }
    /// Runs `sql`; FAILs the test, naming it, when the server refuses it.
    void exec(const std::string& sql) {
        std::string error;
        if (!try_exec(sql, error)) FAIL(sql << ": " << error);
    }
    /// Runs `sql`; false (and why) when the server refuses it. Never FAILs: for destructors.
    bool try_exec(const std::string& sql, std::string& error) noexcept {
        try {
            conn_->execute(sql);
            return true;
        } catch (const std::exception& e) {
            error = e.what();
            return false;
        }
    }
    /// The first column of the first row of `sql`'s result.
    std::int64_t number(const std::string& sql, std::initializer_list<poolbench::Value> params = {}) {
        try {
            return conn_->query(sql, params).int_at(0);
        } catch (const std::exception& e) {
            FAIL(sql << ": " << e.what());
        }
        return 0;
    }
    [[nodiscard]] bool alive() {
        try {
            return conn_->query("SELECT 1").int_at(0) == 1;
        } catch (const std::exception&) {
            return false;
        }
    }

private:
    std::shared_ptr<poolbench::Driver> driver_;
    std::unique_ptr<poolbench::Connection> conn_;
};

/// A database of the test's own (made by the admin account, dropped at the end with every
/// grant on it), so what a test drops, locks or counts is no other test's: url() is the
/// poolbench account's URL with this database.
class OwnDatabase {
public:
    OwnDatabase() {
        std::random_device rd;
        name_ = "pb_cli_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
        MariaSession admin(mariadb_admin_url());
        admin.exec("CREATE DATABASE " + name_);
        admin.exec("GRANT ALL ON " + name_ + ".* TO poolbench@'%'");
        // The least that lets the limited account's URL name this database (see the sandbox).
        admin.exec("GRANT SHOW VIEW ON " + name_ + ".* TO poolbench_limited@'%'");
    }
    OwnDatabase(const OwnDatabase&) = delete;
    OwnDatabase& operator=(const OwnDatabase&) = delete;
    ~OwnDatabase() {
        // A throwaway server: what cannot be dropped stays; the test's result stands.
        const char* url = std::getenv("POOLBENCH_MARIADB_ADMIN_URL");
        if (url == nullptr) return;
        try {
            MariaSession admin(url);
            std::string ignored;
            for (const std::string& sql : {"DROP DATABASE IF EXISTS " + name_, "DELETE FROM mysql.tables_priv WHERE Db = '" + name_ + "'",
                                          "DELETE FROM mysql.db WHERE Db = '" + name_ + "'", std::string("FLUSH PRIVILEGES")}) {
                (void)admin.try_exec(sql, ignored);
            }
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): see above
        }
    }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] std::string url() const { return url_with_db(mariadb_url(), name_); }
    [[nodiscard]] std::string limited_url() const { return url_with_db(mariadb_limited_url(), name_); }
    [[nodiscard]] std::string admin_url() const { return url_with_db(mariadb_admin_url(), name_); }

private:
    std::string name_;
};

}  // namespace clitest
