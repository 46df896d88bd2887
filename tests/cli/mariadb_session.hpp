// mariadb_session.hpp — the MariaDB diagnose tests' own sessions (DiagSession) (to leave transactions open,
// hold row locks, block on them, change server settings), opened through the library's
// MariaDB driver (real server sessions); GlobalSetting changes a server setting for a
// scope (serial tiers only); wait_for (cli_support.hpp) polls for a server state.
//
// The URLs come from the environment (scripts/mariadb_sandbox.sh start, scripts/test.sh):
// a missing variable FAILs the test, never skips it.
//
// Thread-safety: a DiagSession is used by one thread at a time.
#pragma once

#include "mariadb_cli_support.hpp"  // mariadb_env, and its own MariaSession (statements that FAIL the test)

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

namespace clitest {
/// One session of the test's own, whose statements report errors instead of failing the
/// test (the diagnose tests provoke refusals on purpose).
class DiagSession {
public:
    explicit DiagSession(const std::string& url)
        : driver_(poolbench::make_driver(url)), c_(driver_->connect(std::chrono::steady_clock::now() + std::chrono::seconds(15))) {
        id_ = value("SELECT CONNECTION_ID()");
    }

    /// Runs `sql`; "" on success, else the error message.
    std::string exec(const std::string& sql) {
        try {
            c_->execute(sql);
            return {};
        } catch (const poolbench::Error& e) {
            return e.what();
        }
    }
    /// The first value of `sql`'s first row, as text ("" for NULL).
    std::string value(const std::string& sql) {
        const poolbench::Rows r = c_->query(sql);
        REQUIRE(!r.empty());
        const poolbench::Value& v = r.rows.at(0).at(0);
        if (const auto* s = std::get_if<std::string>(&v)) return *s;
        if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
        if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
        return {};
    }
    /// The server's id of this session (CONNECTION_ID(), what KILL takes).
    [[nodiscard]] const std::string& id() const { return id_; }

private:
    std::shared_ptr<poolbench::Driver> driver_;
    std::unique_ptr<poolbench::Connection> c_;
    std::string id_;
};

/// SET GLOBAL name = value for the guard's lifetime; the old value comes back after.
class GlobalSetting {
public:
    GlobalSetting(DiagSession& admin, std::string name, const std::string& value)
        : admin_(admin), name_(std::move(name)), old_(admin.value("SELECT @@GLOBAL." + name_)) {
        REQUIRE(admin_.exec("SET GLOBAL " + name_ + " = " + value) == "");
    }
    GlobalSetting(const GlobalSetting&) = delete;
    GlobalSetting& operator=(const GlobalSetting&) = delete;
    ~GlobalSetting() { CHECK(admin_.exec("SET GLOBAL " + name_ + " = " + old_) == ""); }

private:
    DiagSession& admin_;
    std::string name_;
    std::string old_;
};

/// A diagnose report's finding with `code` whose text contains `text`, or nullptr.
inline const json* finding_containing(const json& report, const std::string& code, const std::string& text) {
    for (const auto& f : report.at("findings")) {
        if (f.at("code") == code && f.at("text").get<std::string>().find(text) != std::string::npos) return &f;
    }
    return nullptr;
}

/// The rows of a diagnose report's table `key` whose `column` is `value` (empty when the
/// table is absent).
inline std::vector<json> table_rows(const json& report, const std::string& key, const std::string& column,
                                    const json& value) {
    std::vector<json> out;
    if (!report.at("tables").contains(key)) return out;
    for (const auto& row : report.at("tables").at(key).at("rows")) {
        if (row.at(column) == value) out.push_back(row);
    }
    return out;
}

}  // namespace clitest
