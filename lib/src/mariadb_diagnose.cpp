// mariadb_diagnose.cpp — MariaDB's (and MySQL's) diagnose(): what the server says about
// itself, its connection limits, timeouts, read-only state and replication, read in one
// read-only session; the sessions' checks are in mariadb_diagnose_sessions.cpp (see
// mariadb_diagnose.hpp for both).
//
// Settings are the server's global values (SHOW GLOBAL VARIABLES): what a new session of
// a pool gets, except max_statement_time, which is this session's own (a per-account
// MAX_STATEMENT_TIME, or the URL's statement_timeout, set it at connect). The account's own
// limits (MAX_USER_CONNECTIONS, READ ONLY ADMIN) come from SHOW GRANTS for the current
// user; nothing of those lines is printed (they carry the password's hash).
// Free connections: max_connections minus the client sessions besides this one
// (Threads_connected - 1), bounded by the account's MAX_USER_CONNECTIONS or the server's
// max_user_connections. The one extra connection MariaDB keeps for CONNECTION ADMIN /
// SUPER, and extra_max_connections on the extra port, are not counted: a pool cannot
// rely on them.
#include "drivers_internal.hpp"
#include "mariadb_diagnose.hpp"
#include "poolbench/config.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace poolbench::internal {

namespace mariadb {

namespace {

/// SHOW ... VARIABLES / STATUS as name -> value text.
struct Vars {
    std::map<std::string, std::string> values;
    [[nodiscard]] bool has(const std::string& n) const { return values.count(n) > 0; }
    [[nodiscard]] double number(const std::string& n, double fallback = 0) const {
        const auto it = values.find(n);
        return it == values.end() ? fallback : real(Value{it->second});
    }
    [[nodiscard]] std::int64_t whole(const std::string& n, std::int64_t fallback = 0) const {
        return static_cast<std::int64_t>(number(n, static_cast<double>(fallback)));
    }
    [[nodiscard]] bool on(const std::string& n) const {
        const auto it = values.find(n);
        return it != values.end() && (it->second == "ON" || it->second == "1");
    }
    [[nodiscard]] FactValue whole_fact(const std::string& n) const { return has(n) ? FactValue{whole(n)} : FactValue{}; }
    [[nodiscard]] FactValue on_fact(const std::string& n) const { return has(n) ? FactValue{on(n)} : FactValue{}; }
};

Vars read_vars(Connection& c, const std::string& sql) {
    Vars v;
    for (const auto& row : c.query(sql).rows) v.values[text(row.at(0))] = text(row.at(1));
    return v;
}

/// What SHOW GRANTS (for the current user and its enabled role) says about global rights.
struct Grants {
    std::vector<std::string> global;  ///< privileges ON *.*, upper case
    std::int64_t max_user_connections = 0;
    [[nodiscard]] bool has(const std::string& privilege) const {
        for (const auto& g : global) {
            if (g == privilege || g == "ALL PRIVILEGES" || g == "ALL") return true;
        }
        return false;
    }
};

Grants read_grants(Connection& c) {
    Grants g;
    for (const auto& row : c.query("SHOW GRANTS").rows) {
        const std::string line = text(row.at(0));
        if (line.rfind("GRANT ", 0) != 0) continue;
        const auto on = line.find(" ON *.* TO ");
        if (on != std::string::npos) {
            std::string list = line.substr(6, on - 6);
            std::size_t start = 0;
            while (start <= list.size()) {
                const auto comma = list.find(", ", start);
                g.global.push_back(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
                if (comma == std::string::npos) break;
                start = comma + 2;
            }
        }
        if (const auto at = line.find("MAX_USER_CONNECTIONS "); at != std::string::npos) {
            g.max_user_connections = std::max<std::int64_t>(
                g.max_user_connections, integer(Value{line.substr(at + 21, line.find(' ', at + 21) - at - 21)}, 0));
        }
    }
    return g;
}

/// How many sessions of `user` (name@host: the name's) are among `sessions`.
std::int64_t sessions_of(const Sessions& sessions, const std::string& user) {
    const std::string name = user.substr(0, user.rfind('@'));
    return std::count_if(sessions.rows.begin(), sessions.rows.end(), [&](const SessionRow& s) { return s.user == name; });
}

void connections(const Vars& vars, const Vars& status, const Grants& grants, const Sessions& sessions,
                 const ServerInfo& server, Diagnosis& d) {
    const std::int64_t max = vars.whole("max_connections");
    const std::int64_t used = std::max<std::int64_t>(status.whole("Threads_connected") - 1, 0);
    const std::int64_t used_by_user = sessions_of(sessions, server.user);
    std::int64_t user_limit = grants.max_user_connections;
    std::string limit_name = "MAX_USER_CONNECTIONS";
    if (user_limit <= 0) {
        user_limit = vars.whole("max_user_connections");
        limit_name = "max_user_connections";
    }
    d.add("max_connections", max);
    d.add("user_connection_limit", user_limit > 0 ? FactValue{user_limit} : FactValue{});
    d.add("connections_in_use", used);
    d.add("user_connections_in_use", used_by_user);
    d.add("threads_running", status.whole_fact("Threads_running"));
    d.add("max_used_connections", status.whole_fact("Max_used_connections"));
    if (!sessions.transactions_visible) {
        const std::int64_t hidden = std::max<std::int64_t>(used - static_cast<std::int64_t>(sessions.rows.size()), 0);
        d.add("sessions_not_inspectable", hidden);
        d.add(FindingLevel::warn, "sessions_not_inspectable",
              "user " + server.user + " lacks the PROCESS privilege: it sees only its own sessions (" +
                  plural(hidden, "other is", "others are") + " counted as connections in use but not shown), and no "
                  "transaction or lock wait",
              "GRANT PROCESS ON *.* TO " + server.account + " (or run diagnose as a user that has it)");
    }

    std::int64_t free = max - used;
    std::string bound = "the server";
    if (user_limit > 0 && user_limit - used_by_user < free) {
        free = user_limit - used_by_user;
        bound = "user " + server.user + "'s " + limit_name + " (" + std::to_string(user_limit) + ")";
    }
    free = std::max<std::int64_t>(free, 0);
    d.free_connections = free;
    d.add("free_connections", free);
    const std::string counts = std::to_string(used) + " of " + std::to_string(max) + " in use besides this one";
    if (free == 0) {
        d.add(FindingLevel::problem, "no_free_connections",
              "no connection left for " + server.user + " (" + counts + "; bound by " + bound +
                  "): a pool here cannot open a single connection",
              "close idle connections (see connections_by_state), lower other pools' max_size, or raise "
              "max_connections / the limit");
    } else if (free * 5 < max) {
        d.add(FindingLevel::warn, "few_free_connections",
              "only " + std::to_string(free) + " more connections possible for " + server.user + " (" + counts +
                  "; bound by " + bound + ")",
              "keep every pool's max_size within that, together");
    } else {
        d.add(FindingLevel::ok, "free_connections",
              std::to_string(free) + " more connections possible for " + server.user + " (" + counts + ")");
    }

    std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t> groups;
    for (const auto& s : sessions.rows) ++groups[{s.state_name(), s.user, s.database, s.client}];
    std::vector<std::pair<std::int64_t, std::tuple<std::string, std::string, std::string, std::string>>> sorted;
    for (const auto& [key, n] : groups) sorted.emplace_back(n, key);
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    FactTable t{"connections_by_state", "client connections by state, user, database and client host",
                {"state", "user", "database", "client", "count"}, {}};
    for (const auto& [n, key] : sorted) {
        if (t.rows.size() == 50) break;
        const auto& [state, user, database, client] = key;
        t.rows.push_back({state, user, database, client, n});
    }
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

void timeouts(const Vars& vars, const Vars& session, const ServerInfo& server, const MariaDiagnoseSetup& setup,
              Diagnosis& d) {
    const std::int64_t wait_timeout = vars.whole("wait_timeout");
    d.add("wait_timeout_s", vars.whole_fact("wait_timeout"));
    const std::string statement_var = server.is_mariadb ? "max_statement_time" : "max_execution_time";
    if (server.is_mariadb) {
        d.add("max_statement_time_s", vars.has(statement_var) ? seconds_fact(vars.number(statement_var)) : FactValue{});
    } else {
        d.add("max_execution_time_ms", vars.whole_fact(statement_var));
    }
    const double session_limit = session.number(statement_var);
    if (session.has(statement_var) && session_limit != vars.number(statement_var)) {
        d.add(server.is_mariadb ? "session_max_statement_time_s" : "session_max_execution_time_ms",
              server.is_mariadb ? seconds_fact(session_limit) : FactValue{session.whole(statement_var)});
    }
    d.add("innodb_lock_wait_timeout_s", vars.whole_fact("innodb_lock_wait_timeout"));
    d.add("lock_wait_timeout_s", vars.whole_fact("lock_wait_timeout"));
    d.add("idle_transaction_timeout_s", vars.whole_fact("idle_transaction_timeout"));
    d.add("idle_write_transaction_timeout_s", vars.whole_fact("idle_write_transaction_timeout"));
    d.add("net_read_timeout_s", vars.whole_fact("net_read_timeout"));

    if (session_limit <= 0 && !setup.client_statement_timeout) {
        d.add(FindingLevel::warn, "no_statement_timeout",
              "no " + statement_var + ": a runaway statement holds its connection until it ends",
              "add statement_timeout=5s to the URL (poolbench sets " + statement_var +
                  " for its sessions) or set it for the server (SET GLOBAL " + statement_var + " = ...)");
    }
    if (server.has_idle_transaction_timeout && server.idle_transaction_timeout_s == 0 &&
        vars.whole("idle_write_transaction_timeout") == 0) {
        d.add(FindingLevel::warn, "no_idle_in_transaction_timeout",
              "idle_transaction_timeout is 0: a leaked transaction keeps its row locks until its connection closes "
              "(wait_timeout, " + std::to_string(wait_timeout) + " s)",
              "set idle_transaction_timeout (e.g. SET GLOBAL idle_transaction_timeout = 60, and in my.cnf)");
    }
    // A pool keeps a connection up to max_lifetime, idle ones up to idle_timeout (HikariCP:
    // "several seconds shorter than any database-imposed connection time limit").
    const PoolConfig defaults;
    const std::int64_t lifetime_s = defaults.max_lifetime.count() / 1000;
    const std::int64_t idle_s = defaults.idle_timeout.count() / 1000;
    if (wait_timeout > 0 && wait_timeout <= lifetime_s) {
        d.add(FindingLevel::warn, "wait_timeout",
              "the server closes sessions idle for " + std::to_string(wait_timeout) + " s (wait_timeout), sooner than " +
                  (wait_timeout <= idle_s ? "a pool's default idle_timeout (" + std::to_string(idle_s) + " s) and " : std::string()) +
                  "max_lifetime (" + std::to_string(lifetime_s) + " s): a connection idle in the pool that long is "
                  "gone when it is next leased (error 2006/2013)",
              "set the pool's max_lifetime and idle_timeout a few seconds below " + std::to_string(wait_timeout) +
                  " s (or keepalive_interval below it), or raise wait_timeout");
    }
}

/// Whether read_only stops this user's writes: MariaDB exempts READ ONLY ADMIN (before
/// 10.11, SUPER included it); MySQL exempts SUPER and CONNECTION_ADMIN unless super_read_only.
bool exempt_from_read_only(const Grants& g, const ServerInfo& server, const Vars& vars) {
    if (server.is_mariadb) return g.has("READ_ONLY ADMIN") || (server.version < 1011 && g.has("SUPER"));
    return (g.has("SUPER") || g.has("CONNECTION_ADMIN")) && !vars.on("super_read_only");
}

void read_only(const Vars& vars, const Grants& grants, const ServerInfo& server, Diagnosis& d) {
    d.add("read_only", vars.on_fact("read_only"));
    if (!server.is_mariadb) d.add("super_read_only", vars.on_fact("super_read_only"));
    d.add("innodb_read_only", vars.on_fact("innodb_read_only"));
    if (vars.on("innodb_read_only")) {
        d.add(FindingLevel::problem, "innodb_read_only",
              "InnoDB is read-only (innodb_read_only=ON, set at startup): every write to an InnoDB table fails, "
              "whoever makes it",
              "point --db at a writable server for write workloads (innodb_read_only changes only with a restart)");
    }
    if (vars.on("read_only") || vars.on("super_read_only")) {
        const bool exempt = exempt_from_read_only(grants, server, vars);
        const std::string which = vars.on("super_read_only") ? "super_read_only" : "read_only";
        d.add(exempt ? FindingLevel::warn : FindingLevel::problem, "read_only",
              exempt ? "the server is read-only (" + which + "=ON): user " + server.user +
                           " may still write (READ ONLY ADMIN), every other user's writes fail with error 1290"
                     : "the server is read-only (" + which + "=ON): every write by " + server.user +
                           " fails with error 1290 (a pool drops such a connection: broken_errors)",
              "point --db at the primary for write workloads, or SET GLOBAL read_only = OFF if this server should "
              "take writes");
    }
}

/// SHOW REPLICA STATUS (MariaDB 10.5+, MySQL 8.0.22+; else SHOW SLAVE STATUS). Columns by
/// position, the same in both: 1 source host, 3 port, 10 IO running, 11 SQL running, 32
/// seconds behind, 35 last IO error, 37 last SQL error.
void replication(Connection& c, const Sessions& sessions, const ServerInfo& server, const DiagnoseOptions& o,
                 Diagnosis& d) {
    if (sessions.transactions_visible) {
        d.add("replicas_connected", static_cast<std::int64_t>(std::count_if(
                                        sessions.rows.begin(), sessions.rows.end(),
                                        [](const SessionRow& s) { return s.command.rfind("Binlog Dump", 0) == 0; })));
    }
    Rows r;
    try {
        try {
            r = c.query("SHOW REPLICA STATUS");
        } catch (const QueryError& e) {
            if (e.code() != "1064") throw;  // an older server: the old spelling
            r = c.query("SHOW SLAVE STATUS");
        }
    } catch (const QueryError& e) {
        if (!access_denied(e.code())) throw;
        d.add("replica", FactValue{});
        d.add(FindingLevel::warn, "replication_not_inspectable",
              "user " + server.user + " may not read the replication status: whether this server is a replica (and "
              "how far behind) is unknown",
              std::string("GRANT ") + (server.is_mariadb ? "SLAVE MONITOR" : "REPLICATION CLIENT") + " ON *.* TO " +
                  server.account);
        return;
    }
    d.add("replica", !r.empty());
    if (r.empty() || r.rows.front().size() < 38) return;
    const auto& x = r.rows.front();
    const std::string source = text(x[1]) + ":" + text(x[3]);
    const std::string io = text(x[10]);
    const std::string sql = text(x[11]);
    d.add("replication_source", source);
    d.add("replica_io_running", io);
    d.add("replica_sql_running", sql);
    d.add("seconds_behind_source", std::holds_alternative<std::monostate>(x[32]) ? FactValue{} : FactValue{integer(x[32])});
    d.add(FindingLevel::warn, "replica",
          "the server is a replica of " + source + ": writes made here are not made on the source, and can stop "
          "replication when they conflict with its changes",
          "point --db at the source (primary) for write workloads; keep replicas read_only=ON", source);
    if (io != "Yes" || sql != "Yes") {
        std::string why = text(x[37]).empty() ? text(x[35]) : text(x[37]);
        if (why.size() > o.statement_chars) why = why.substr(0, o.statement_chars) + "...";
        d.add(FindingLevel::warn, "replication_stopped",
              "replication from " + source + " is not running (IO thread: " + io + ", SQL thread: " + sql + ")" +
                  (why.empty() ? std::string() : ": " + why) + ": reads here see data that gets older",
              "START REPLICA (START SLAVE) once the cause is fixed; SHOW REPLICA STATUS has the details", source);
    } else if (integer(x[32], 0) > 30) {
        d.add(FindingLevel::warn, "replication_lag",
              "the replica is " + seconds_text(real(x[32])) + " behind " + source + ": reads here see data that old",
              "check the replica's SQL thread (SHOW REPLICA STATUS) and the source's load", source);
    }
}

void connection_errors(const Vars& vars, const Vars& status, Diagnosis& d) {
    const std::int64_t refused = status.whole("Connection_errors_max_connections");
    const std::int64_t aborted = status.whole("Aborted_connects");
    const std::int64_t denied = status.whole("Access_denied_errors");
    const std::int64_t uptime = status.whole("Uptime");
    const std::int64_t peak = status.whole("Max_used_connections");
    const std::int64_t max = vars.whole("max_connections");
    d.add("uptime_s", status.whole_fact("Uptime"));
    d.add("aborted_connects", status.whole_fact("Aborted_connects"));
    d.add("aborted_clients", status.whole_fact("Aborted_clients"));
    d.add("access_denied_errors", status.whole_fact("Access_denied_errors"));
    d.add("connection_errors_max_connections", status.whole_fact("Connection_errors_max_connections"));
    d.add("connection_errors_internal", status.whole_fact("Connection_errors_internal"));
    const std::string since = "since the server started (" + seconds_text(static_cast<double>(uptime)) + " ago)";
    if (refused > 0 || (max > 0 && peak >= max)) {
        d.add(FindingLevel::warn, "max_connections_reached",
              (refused > 0 ? plural(refused, "connection was", "connections were") + " refused " + since +
                                 " because max_connections (" + std::to_string(max) + ") was reached; the peak was " +
                                 std::to_string(peak) + " connections"
                           : "the server reached max_connections (" + std::to_string(max) + ") " + since + " (peak " +
                                 std::to_string(peak) + " connections): users without CONNECTION ADMIN were refused "
                                 "then (error 1040)"),
              "keep the pools' max_size together below max_connections (see pool_size), or raise max_connections");
    }
    if (aborted > 0) {
        d.add(FindingLevel::warn, "aborted_connects",
              plural(aborted, "connection attempt", "connection attempts") + " failed " + since + " (" +
                  std::to_string(denied) + " with access denied): wrong credentials, connect_timeout during the "
                  "handshake, or clients that hung up before it ended",
              "the server's error log names each one (log_warnings >= 4); check the pools' credentials and "
              "connect_timeout");
    }
}

}  // namespace

std::string SessionRow::state_name() const {
    if (command == "Sleep") return in_transaction ? "idle in transaction" : "idle";
    if (command == "Query" || command == "Execute") return "active";
    std::string s = command;
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

}  // namespace mariadb

Diagnosis mariadb_diagnose(Driver& driver, const MariaDiagnoseSetup& setup, const DiagnoseOptions& options) {
    using namespace mariadb;  // NOLINT(google-build-using-namespace): this backend's own helpers
    auto c = driver.connect_read_only(options.deadline);
    Diagnosis d;
    d.local = setup.local;
    const Rows v = c->query("SELECT VERSION(), @@version_comment, CURRENT_USER(), COALESCE(DATABASE(), '')");
    const std::string version = text(v.rows.at(0).at(0));
    ServerInfo server;
    server.is_mariadb = version.find("MariaDB") != std::string::npos;
    if (int major = 0, minor = 0; std::sscanf(version.c_str(), "%d.%d", &major, &minor) == 2) server.version = major * 100 + minor;
    server.user = text(v.rows.at(0).at(2));
    const auto at = server.user.rfind('@');
    server.account = at == std::string::npos ? "'" + server.user + "'"
                                             : "'" + server.user.substr(0, at) + "'@'" + server.user.substr(at + 1) + "'";
    const std::string comment = text(v.rows.at(0).at(1));
    d.server = std::string(server.is_mariadb ? "MariaDB " : "MySQL ") + version + (comment.empty() ? "" : " (" + comment + ")");
    d.add("server_flavor", std::string(server.is_mariadb ? "mariadb" : "mysql"));
    d.add("server_version", version);
    d.add("user", server.user);
    d.add("database", text(v.rows.at(0).at(3)).empty() ? FactValue{} : FactValue{text(v.rows.at(0).at(3))});

    const Vars session = read_vars(*c, "SHOW SESSION VARIABLES WHERE Variable_name IN ('max_statement_time', "
                                       "'max_execution_time')");
    if (server.is_mariadb) {
        // Gathering gives up at the deadline: each statement of this session is bounded by it.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(options.deadline - std::chrono::steady_clock::now());
        c->execute("SET SESSION max_statement_time = " + std::to_string(std::max<long long>((left.count() + 999) / 1000, 1)));
    }
    const Vars vars = read_vars(
        *c, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections', 'max_user_connections', 'wait_timeout', "
            "'max_statement_time', 'max_execution_time', 'innodb_lock_wait_timeout', 'lock_wait_timeout', "
            "'idle_transaction_timeout', 'idle_write_transaction_timeout', 'net_read_timeout', 'read_only', "
            "'super_read_only', 'innodb_read_only')");
    const Vars status = read_vars(
        *c, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Threads_running', "
            "'Max_used_connections', 'Aborted_connects', 'Aborted_clients', 'Access_denied_errors', "
            "'Connection_errors_max_connections', 'Connection_errors_internal', 'Uptime')");
    server.innodb_lock_wait_timeout_s = vars.whole("innodb_lock_wait_timeout");
    server.lock_wait_timeout_s = vars.whole("lock_wait_timeout");
    server.has_idle_transaction_timeout = vars.has("idle_transaction_timeout");
    server.idle_transaction_timeout_s = vars.whole("idle_transaction_timeout");
    const Grants grants = read_grants(*c);
    const Sessions sessions = read_sessions(*c, server);

    read_only(vars, grants, server, d);
    replication(*c, sessions, server, options, d);
    connections(vars, status, grants, sessions, server, d);
    connection_errors(vars, status, d);
    timeouts(vars, session, server, setup, d);
    diagnose_sessions(*c, server, sessions, options, d);
    return d;
}

}  // namespace poolbench::internal
