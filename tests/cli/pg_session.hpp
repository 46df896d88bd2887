// pg_session.hpp — the [pg] CLI tests' own libpq sessions (to hold locks, leave
// transactions open, create roles) and a bounded poll for a server state.
//
// Thread-safety: a Session is used by one thread at a time.
#pragma once

#include "cli_support.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace clitest {

/// One libpq session of the test's own, with an application_name.
class Session {
public:
    Session(const std::string& url, const std::string& app) {
        const std::string conninfo = url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + app;
        c_ = PQconnectdb(conninfo.c_str());
        REQUIRE(c_ != nullptr);
        REQUIRE(PQstatus(c_) == CONNECTION_OK);
        PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);  // "role ... does not exist, skipping"
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() { PQfinish(c_); }

    /// Runs `sql`; returns "" on success, else the error message.
    std::string exec(const std::string& sql) {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto status = PQresultStatus(r);
        std::string error = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? "" : PQresultErrorMessage(r);
        PQclear(r);
        return error;
    }
    /// The first value of `sql`'s first row.
    std::string value(const std::string& sql) {
        PGresult* r = PQexec(c_, sql.c_str());
        REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
        REQUIRE(PQntuples(r) > 0);
        std::string v = PQgetvalue(r, 0, 0);
        PQclear(r);
        return v;
    }
    [[nodiscard]] int pid() const { return PQbackendPID(c_); }

private:
    PGconn* c_ = nullptr;
};

/// Sessions left idle in a transaction, one per statement (BEGIN, then the statement),
/// and their pids as a list for "pid IN (...)".
struct IdleSessions {
    std::vector<std::unique_ptr<Session>> sessions;
    std::string pids;
};
inline IdleSessions leave_idle_in_transaction(const std::string& url, const std::string& app,
                                              const std::vector<std::string>& statements) {
    IdleSessions out;
    for (const auto& sql : statements) {
        out.sessions.push_back(std::make_unique<Session>(url, app));
        REQUIRE(out.sessions.back()->exec("BEGIN").empty());
        INFO(sql);
        REQUIRE(out.sessions.back()->exec(sql).empty());
        out.pids += (out.pids.empty() ? "" : ",") + std::to_string(out.sessions.back()->pid());
    }
    return out;
}

/// `url` (postgresql://user:password@host...) with its user and password replaced.
inline std::string url_as(const std::string& url, const std::string& user, const std::string& password) {
    const std::size_t start = url.find("://") + 3;
    const std::size_t at = url.find('@');
    REQUIRE(at != std::string::npos);
    return url.substr(0, start) + user + ":" + password + url.substr(at);
}

}  // namespace clitest
