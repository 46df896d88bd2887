// postgres_diagnose.cpp — PostgreSQL's diagnose(): what the server's views say about
// connections, sessions, locks, timeouts and replication, read in one read-only session.
//
// Only SELECTs on pg_stat_activity, pg_locks, pg_settings, pg_roles, pg_database and the
// replication functions; the session is read-only (connect_read_only). Other users'
// sessions show their state and statement only to a superuser or a member of
// pg_read_all_stats (pg_monitor): without that they are counted, as "hidden".
// Statement texts are scrubbed (pg_statement_scrub.hpp: a statement that mentions a
// password keeps none of its constants, dollar-quoted bodies or comments), then cut to
// DiagnoseOptions::statement_chars and put on one line.
//
// What the queries took from peers: pg_activity's and check_postgres's views of
// pg_stat_activity (connections by state, idle in transaction by state_change, longest
// queries by query_start), and the usual pg_blocking_pids lock-tree query; this one names
// the relation the waiter waits on (its ungranted lock, else its granted tuple lock) and
// for how long (pg_locks.waitstart on 14+, else the statement's start).
#include "drivers_internal.hpp"
#include "pg_statement_scrub.hpp"
#include "poolbench/diagnostics.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace poolbench::internal {

namespace {

std::string text(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
    return "";
}

std::int64_t integer(const Value& v, std::int64_t fallback = -1) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
    if (const auto* s = std::get_if<std::string>(&v)) {
        try {
            return std::stoll(*s);
        } catch (...) {
            return fallback;
        }
    }
    return fallback;
}

double real(const Value& v) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return 0;
}

FactValue fact_of(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (const auto* d = std::get_if<double>(&v)) return std::round(*d * 10) / 10;  // seconds to 0.1 s
    return {};
}

std::string seconds_text(double s) {
    char buf[32];
    if (s >= 10) {
        std::snprintf(buf, sizeof buf, "%.0f s", s);
    } else {
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    }
    return buf;
}

std::string app_text(const std::string& app) { return app.empty() ? "no application_name" : "app '" + app + "'"; }

/// `statement` for a row: scrubbed (pg_statement_scrub.hpp), then cut to `chars` and
/// put on one line ("" stays ""). Scrubbed before the cut: a password after the cut
/// point still hides the constants before it.
Value statement(const Value& v, std::size_t chars) {
    if (const auto* s = std::get_if<std::string>(&v)) {
        std::string one = cut_statement(scrub_statement(*s), chars);
        for (char& c : one) {
            if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        }
        return one;
    }
    return v;
}

std::string plural(std::int64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

struct Settings {
    std::map<std::string, std::int64_t> values;  // name -> setting (in its pg_settings unit)
    std::int64_t get(const std::string& name, std::int64_t fallback = 0) const {
        const auto it = values.find(name);
        return it == values.end() ? fallback : it->second;
    }
    bool has(const std::string& name) const { return values.count(name) > 0; }
};

Settings read_settings(Connection& c) {
    Settings s;
    const Rows r = c.query(
        "SELECT name, setting FROM pg_catalog.pg_settings WHERE name IN ('max_connections', "
        "'superuser_reserved_connections', 'reserved_connections', 'statement_timeout', "
        "'idle_in_transaction_session_timeout', 'idle_session_timeout', 'lock_timeout', 'tcp_keepalives_idle', "
        "'tcp_keepalives_interval', 'tcp_keepalives_count')");
    for (const auto& row : r.rows) s.values[text(row[0])] = integer(row[1], 0);
    return s;
}

void connections(Connection& c, const Settings& s, Diagnosis& d) {
    // A client connection: a 'client backend', or a row this role may not inspect (backend_type,
    // state and query are NULL without pg_read_all_stats) that is connected to a database;
    // the server's own processes (checkpointer, launchers) have no database.
    const Rows me = c.query(
        "WITH a AS (SELECT * FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND (backend_type = "
        "'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))) "
        "SELECT current_user, current_database(), (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = "
        "current_user), (SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = current_user), (SELECT "
        "datconnlimit FROM pg_catalog.pg_database WHERE datname = current_database()), (SELECT count(*) FROM a), "
        "(SELECT count(*) FROM a WHERE usename = current_user), (SELECT count(*) FROM a WHERE datname = "
        "current_database()), (SELECT count(*) FROM a WHERE backend_type IS NULL)");
    const auto& row = me.rows.at(0);
    const std::string user = text(row[0]);
    const std::string database = text(row[1]);
    const bool superuser = integer(row[2], 0) == 1;
    const std::int64_t role_limit = integer(row[3]);
    const std::int64_t db_limit = integer(row[4]);
    const std::int64_t used = integer(row[5], 0);
    const std::int64_t used_by_role = integer(row[6], 0);
    const std::int64_t used_in_db = integer(row[7], 0);
    const std::int64_t hidden = integer(row[8], 0);
    const std::int64_t max = s.get("max_connections");
    const std::int64_t reserved = s.get("superuser_reserved_connections") + s.get("reserved_connections");
    d.add("user", user);
    d.add("database", database);
    d.add("superuser", superuser);
    d.add("max_connections", max);
    d.add("superuser_reserved_connections", s.get("superuser_reserved_connections"));
    d.add("reserved_connections", s.has("reserved_connections") ? FactValue{s.get("reserved_connections")} : FactValue{});
    d.add("connections_in_use", used);
    d.add("role_connection_limit", role_limit);
    d.add("role_connections_in_use", used_by_role);
    d.add("database_connection_limit", db_limit);
    d.add("database_connections_in_use", used_in_db);
    d.add("sessions_not_inspectable", hidden);
    if (hidden > 0) {
        d.add(FindingLevel::warn, "sessions_not_inspectable",
              plural(hidden, "session", "sessions") + " could not be inspected (grant pg_read_all_stats): they are "
              "counted as connections in use, but their state, statements and locks are not shown",
              "GRANT pg_read_all_stats TO " + user + " (or run diagnose as a member of pg_monitor)");
    }

    std::int64_t free = max - (superuser ? 0 : reserved) - used;
    std::string bound = "the server";
    if (role_limit >= 0 && role_limit - used_by_role < free) {
        free = role_limit - used_by_role;
        bound = "role " + user + "'s connection limit (" + std::to_string(role_limit) + ")";
    }
    if (db_limit >= 0 && db_limit - used_in_db < free) {
        free = db_limit - used_in_db;
        bound = "database " + database + "'s connection limit (" + std::to_string(db_limit) + ")";
    }
    free = std::max<std::int64_t>(free, 0);
    d.free_connections = free;
    d.add("free_connections", free);
    const std::string counts = std::to_string(used) + " of " + std::to_string(max) + " in use besides this one, " +
                               std::to_string(reserved) + " reserved";
    if (free == 0) {
        d.add(FindingLevel::problem, "no_free_connections",
              "no connection left for " + user + " (" + counts + "; bound by " + bound + "): a pool here cannot open "
              "a single connection",
              "close idle connections (see connections_by_state), lower other pools' max_size, or raise "
              "max_connections / the limit");
    } else if (free * 5 < max) {
        d.add(FindingLevel::warn, "few_free_connections",
              "only " + std::to_string(free) + " more connections possible for " + user + " (" + counts +
                  "; bound by " + bound + ")",
              "keep every pool's max_size within that, together");
    } else {
        d.add(FindingLevel::ok, "free_connections",
              std::to_string(free) + " more connections possible for " + user + " (" + counts + ")");
    }

    FactTable t{"connections_by_state", "client connections by state, user, database and application",
                {"state", "user", "database", "application", "count"}, {}};
    const Rows r = c.query(
        "SELECT coalesce(state, 'hidden'), coalesce(usename, ''), coalesce(datname, ''), "
        "coalesce(application_name, ''), count(*) FROM pg_catalog.pg_stat_activity WHERE (backend_type = 'client "
        "backend' OR (backend_type IS NULL AND datid IS NOT NULL)) AND pid <> pg_backend_pid() GROUP BY 1, 2, 3, 4 "
        "ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT 50");
    for (const auto& x : r.rows) t.rows.push_back({fact_of(x[0]), fact_of(x[1]), fact_of(x[2]), fact_of(x[3]), fact_of(x[4])});
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

void idle_in_transaction(Connection& c, const Settings& s, const DiagnoseOptions& o, Diagnosis& d) {
    const Rows r = c.query(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), extract(epoch FROM now() - "
        "state_change)::float8, extract(epoch FROM now() - xact_start)::float8, query, state FROM "
        "pg_catalog.pg_stat_activity WHERE state LIKE 'idle in "
        "transaction%' AND pid <> pg_backend_pid() ORDER BY state_change LIMIT 50");
    FactTable t{"idle_in_transaction", "sessions idle in a transaction (longest first)",
                {"pid", "user", "application", "idle_s", "transaction_s", "last_statement", "state"}, {}};
    // Per application: how many past the threshold, and the longest.
    std::map<std::string, std::pair<std::int64_t, double>> leaking;
    const double threshold_s = static_cast<double>(o.idle_in_transaction_after.count()) / 1000.0;
    for (const auto& x : r.rows) {
        t.rows.push_back({fact_of(x[0]), fact_of(x[1]), fact_of(x[2]), fact_of(x[3]), fact_of(x[4]),
                          fact_of(statement(x[5], o.statement_chars)), fact_of(x[6])});
        if (real(x[3]) >= threshold_s) {
            auto& [n, longest] = leaking[text(x[2])];
            ++n;
            longest = std::max(longest, real(x[3]));
        }
    }
    d.add("sessions_idle_in_transaction", static_cast<std::int64_t>(r.size()));
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
    const std::int64_t timeout_ms = s.get("idle_in_transaction_session_timeout");
    for (const auto& [app, v] : leaking) {
        const auto& [n, longest] = v;
        d.add(FindingLevel::problem, "idle_in_transaction",
              plural(n, "session", "sessions") + " idle in transaction for more than " + seconds_text(threshold_s) +
                  " (" + app_text(app) + ", longest " + seconds_text(longest) +
                  "): the application leaks transactions, holding their locks and stopping vacuum",
              timeout_ms == 0 ? "set idle_in_transaction_session_timeout (e.g. ALTER ROLE ... SET "
                                "idle_in_transaction_session_timeout = '60s') and find where the application opens a "
                                "transaction it does not end"
                              : "find where the application opens a transaction it does not end (the server ends "
                                "them after idle_in_transaction_session_timeout = " +
                                    std::to_string(timeout_ms) + " ms)",
              app);
    }
}

void long_queries(Connection& c, const DiagnoseOptions& o, Diagnosis& d) {
    const Rows r = c.query(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), extract(epoch FROM now() - "
        "query_start)::float8, coalesce(wait_event_type || ':' || wait_event, ''), query FROM "
        "pg_catalog.pg_stat_activity WHERE state = 'active' AND "
        "backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY query_start LIMIT 10");
    FactTable t{"longest_running", "the longest-running statements", {"pid", "user", "application", "running_s", "waiting_on", "statement"}, {}};
    const double threshold_s = static_cast<double>(o.long_query_after.count()) / 1000.0;
    std::int64_t over = 0;
    for (const auto& x : r.rows) {
        t.rows.push_back({fact_of(x[0]), fact_of(x[1]), fact_of(x[2]), fact_of(x[3]), fact_of(x[4]),
                          fact_of(statement(x[5], o.statement_chars))});
        if (real(x[3]) >= threshold_s) ++over;
    }
    if (over > 0) {
        const auto& top = r.rows.front();
        d.add(FindingLevel::warn, "long_running_queries",
              plural(over, "statement", "statements") + " running for more than " + seconds_text(threshold_s) +
                  " (longest: pid " + text(top[0]) + ", " + app_text(text(top[2])) + ", " + seconds_text(real(top[3])) +
                  "): each holds a pool's connection that long",
              "set statement_timeout for the role or in the URL (statement_timeout=5s), and look at pid " +
                  text(top[0]) + "'s statement");
    }
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

/// Locks that stop writes (SHARE and stronger) or reads (ACCESS EXCLUSIVE) on a table, held
/// by a session idle in a transaction that nobody waits on yet (lock_waits reports those
/// with waiters): the next write (or read) of the table waits.
void table_locks(Connection& c, const std::vector<std::int64_t>& roots, Diagnosis& d) {
    const Rows r = c.query(
        "SELECT l.pid, coalesce(a.application_name, ''), l.relation::regclass::text, l.mode, extract(epoch FROM now() "
        "- a.state_change)::float8 FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "JOIN pg_catalog.pg_class k ON k.oid = l.relation WHERE l.locktype = 'relation' AND l.granted AND l.database "
        "= (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AND l.mode IN ('ShareLock', "
        "'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock') AND a.state LIKE 'idle in transaction%' "
        "AND k.relkind IN ('r', 'p', 'm') AND k.relnamespace <> 'pg_catalog'::regnamespace AND l.pid <> "
        "pg_backend_pid() ORDER BY 5 DESC LIMIT 20");
    for (const auto& x : r.rows) {
        const std::int64_t pid = integer(x[0]);
        if (std::find(roots.begin(), roots.end(), pid) != roots.end()) continue;
        const std::string mode = text(x[3]);
        const bool reads_too = mode == "AccessExclusiveLock";
        d.add(FindingLevel::warn, "table_locked",
              "pid " + std::to_string(pid) + " (" + app_text(text(x[1])) + ", idle in transaction for " +
                  seconds_text(real(x[4])) + ") holds " + mode + " on table " + text(x[2]) + ": every " +
                  (reads_too ? "read and write" : "write") + " of it waits until that transaction ends",
              "end pid " + std::to_string(pid) + "'s transaction (its application must COMMIT or ROLLBACK; or SELECT "
              "pg_terminate_backend(" + std::to_string(pid) + ")); set lock_timeout so a pool's sessions give up",
              text(x[2]) + " " + mode);
    }
}

void lock_waits(Connection& c, int version, const DiagnoseOptions& o, Diagnosis& d) {
    const std::string wait_start = version >= 140000
                                       ? "coalesce((SELECT min(l.waitstart) FROM pg_catalog.pg_locks l WHERE l.pid = "
                                         "w.pid AND NOT l.granted), w.query_start)"
                                       : "w.query_start";
    const std::string sql =
        "WITH w AS (SELECT a.pid, a.application_name, a.query_start, unnest(pg_catalog.pg_blocking_pids(a.pid)) AS "
        "blocker FROM pg_catalog.pg_stat_activity a WHERE cardinality(pg_catalog.pg_blocking_pids(a.pid)) > 0), "
        "lk AS (SELECT l.pid, l.locktype, l.mode, l.granted, CASE WHEN l.database = (SELECT oid FROM "
        "pg_catalog.pg_database WHERE datname = current_database()) THEN l.relation::regclass::text ELSE 'oid ' || "
        "l.relation END AS rel FROM pg_catalog.pg_locks l) "
        "SELECT w.blocker, coalesce(b.application_name, ''), coalesce(b.state, ''), b.query, w.pid, "
        "coalesce(w.application_name, ''), extract(epoch "
        "FROM now() - " + wait_start + ")::float8, coalesce((SELECT rel FROM lk WHERE lk.pid = w.pid AND NOT "
        "lk.granted AND rel IS NOT NULL LIMIT 1), (SELECT rel FROM lk WHERE lk.pid = w.pid AND lk.granted AND "
        "lk.locktype = 'tuple' LIMIT 1), ''), coalesce((SELECT locktype || ' ' || mode FROM lk WHERE lk.pid = w.pid "
        "AND NOT lk.granted LIMIT 1), '') FROM w LEFT JOIN pg_catalog.pg_stat_activity b ON b.pid = w.blocker ORDER "
        "BY 7 DESC LIMIT 200";
    const Rows r = c.query(sql);
    FactTable t{"lock_waits", "who blocks whom (pg_blocking_pids)",
                {"blocker_pid", "blocker_application", "blocker_state", "blocker_statement", "blocked_pid",
                 "blocked_application", "waiting_s", "relation", "lock"},
                {}};
    // The graph: who waits on whom. A root blocks others and waits on nobody; its tree is
    // every session waiting on it, directly or through another waiter (a queue behind a
    // row lock waits on the first waiter's tuple lock, not on the holder).
    struct Blocker {
        std::string app, state;
    };
    std::map<std::int64_t, std::vector<std::int64_t>> waiters_of;  // blocker -> its direct waiters
    std::map<std::int64_t, std::pair<double, std::string>> waiting;  // waiter -> (seconds, relation)
    std::map<std::int64_t, Blocker> blockers;
    std::vector<std::int64_t> order;
    for (const auto& x : r.rows) {
        t.rows.push_back({fact_of(x[0]), fact_of(x[1]), fact_of(x[2]), fact_of(statement(x[3], o.statement_chars)), fact_of(x[4]),
                          fact_of(x[5]), fact_of(x[6]), fact_of(x[7]), fact_of(x[8])});
        const std::int64_t blocker = integer(x[0]);
        const std::int64_t waiter = integer(x[4]);
        if (blockers.try_emplace(blocker, Blocker{text(x[1]), text(x[2])}).second) order.push_back(blocker);
        waiters_of[blocker].push_back(waiter);
        auto& [seconds, relation] = waiting[waiter];
        seconds = std::max(seconds, real(x[6]));
        if (relation.empty()) relation = text(x[7]);
    }
    d.add("sessions_waiting_on_locks", static_cast<std::int64_t>(waiting.size()));
    const double threshold_s = static_cast<double>(o.lock_wait_after.count()) / 1000.0;
    std::vector<std::int64_t> roots;
    for (const auto b : order) {
        if (waiting.count(b) == 0) roots.push_back(b);
    }
    if (roots.empty() && !order.empty()) roots.push_back(order.front());  // a cycle: the deadlock detector ends it
    for (const auto root : roots) {
        std::vector<std::int64_t> tree;
        std::vector<std::int64_t> todo{root};
        double longest = 0;
        std::string relation;
        while (!todo.empty()) {
            const std::int64_t b = todo.back();
            todo.pop_back();
            for (const auto w : waiters_of[b]) {
                if (w == root || std::find(tree.begin(), tree.end(), w) != tree.end()) continue;
                tree.push_back(w);
                todo.push_back(w);
                longest = std::max(longest, waiting[w].first);
                if (relation.empty()) relation = waiting[w].second;  // the root's direct waiters come first
            }
        }
        const Blocker& who = blockers[root];
        d.add(longest >= threshold_s ? FindingLevel::problem : FindingLevel::warn, "lock_chain",
              "pid " + std::to_string(root) + " has blocked " + plural(static_cast<std::int64_t>(tree.size()), "session", "sessions") +
                  " for " + seconds_text(longest) + (relation.empty() ? std::string() : " on relation " + relation) +
                  " (" + app_text(who.app) + (who.state.empty() ? std::string() : ", " + who.state) + ")",
              who.state.rfind("idle in transaction", 0) == 0
                  ? "pid " + std::to_string(root) + " is idle in a transaction: its application must end it "
                    "(or SELECT pg_terminate_backend(" + std::to_string(root) + ")); set lock_timeout so waiters "
                    "give up"
                  : "see what pid " + std::to_string(root) + " runs (lock_waits); set lock_timeout so waiters give "
                    "up instead of holding pool connections",
              (relation.empty() ? std::string("?") : relation) + " by " + (who.app.empty() ? "?" : who.app));
    }
    table_locks(c, roots, d);
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

void timeouts(const Settings& s, const PgDiagnoseSetup& setup, Diagnosis& d) {
    d.add("statement_timeout_ms", s.get("statement_timeout"));
    d.add("idle_in_transaction_session_timeout_ms", s.get("idle_in_transaction_session_timeout"));
    d.add("idle_session_timeout_ms", s.has("idle_session_timeout") ? FactValue{s.get("idle_session_timeout")} : FactValue{});
    d.add("lock_timeout_ms", s.get("lock_timeout"));
    d.add("tcp_keepalives_idle_s", s.get("tcp_keepalives_idle"));
    d.add("tcp_keepalives_interval_s", s.get("tcp_keepalives_interval"));
    d.add("tcp_keepalives_count", s.get("tcp_keepalives_count"));
    if (s.get("statement_timeout") == 0 && !setup.client_statement_timeout) {
        d.add(FindingLevel::warn, "no_statement_timeout",
              "no statement_timeout: a runaway statement holds its connection until it ends",
              "add statement_timeout=5s to the URL (poolbench cancels the statement client-side) or set it for the "
              "role");
    }
    if (s.get("idle_in_transaction_session_timeout") == 0) {
        d.add(FindingLevel::warn, "no_idle_in_transaction_timeout",
              "idle_in_transaction_session_timeout is 0: a leaked transaction keeps its locks until its connection "
              "closes",
              "set idle_in_transaction_session_timeout (e.g. '60s') for the role or the database");
    }
    if (const std::int64_t idle = s.get("idle_session_timeout"); idle > 0) {
        d.add(FindingLevel::warn, "idle_session_timeout",
              "the server closes sessions idle for " + std::to_string(idle) + " ms: a pool's idle connections die "
              "there",
              "set the pool's idle_timeout below " + std::to_string(idle) + " ms (or keepalive pings more often)");
    }
}

void replication(Connection& c, Diagnosis& d) {
    const Rows r = c.query("SELECT pg_catalog.pg_is_in_recovery()");
    const bool standby = integer(r.rows.at(0).at(0), 0) == 1;
    d.add("standby", standby);
    if (!standby) {
        d.add("replicas", c.query("SELECT count(*) FROM pg_catalog.pg_stat_replication").int_at(0));
        return;
    }
    const Rows lag = c.query(
        "SELECT extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp())::float8, "
        "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::int8");
    const auto& x = lag.rows.at(0);
    d.add("replay_lag_s", fact_of(x[0]));
    d.add("replay_lag_bytes", fact_of(x[1]));
    d.add(FindingLevel::problem, "standby", "the server is a standby: every write fails with SQLSTATE 25006",
          "point --db at the primary for write workloads");
    if (real(x[0]) > 30) {
        d.add(FindingLevel::warn, "replication_lag",
              "the standby's last replayed transaction is " + seconds_text(real(x[0])) + " old: reads here see data that old",
              "check the standby's replay (pg_stat_wal_receiver) and the primary's WAL senders");
    }
}

}  // namespace

Diagnosis postgres_diagnose(Driver& driver, const PgDiagnoseSetup& setup, const DiagnoseOptions& options) {
    auto c = driver.connect_read_only(options.deadline);
    Diagnosis d;
    const Rows v = c->query(
        "SELECT version(), current_setting('server_version_num')::int, coalesce(host(inet_server_addr()), '')");
    d.server = text(v.rows.at(0).at(0));
    const int version = static_cast<int>(integer(v.rows.at(0).at(1), 0));
    const std::string addr = text(v.rows.at(0).at(2));
    d.local = addr.empty() || addr.rfind("127.", 0) == 0 || addr == "::1";
    d.add("server_version_num", std::int64_t{version});
    d.add("server_address", addr.empty() ? std::string("unix socket") : addr);
    const Settings s = read_settings(*c);
    replication(*c, d);
    connections(*c, s, d);
    timeouts(s, setup, d);
    idle_in_transaction(*c, s, options, d);
    long_queries(*c, options, d);
    lock_waits(*c, version, options, d);
    return d;
}

}  // namespace poolbench::internal
