// mariadb_diagnose_sessions.cpp — MariaDB's diagnose(), its sessions (mariadb_diagnose.hpp):
// open transactions and who leaves them idle, long-running statements, InnoDB lock chains
// (one finding per root blocker) and sessions waiting for a table's metadata lock.
//
// Sources: information_schema.PROCESSLIST (every session with PROCESS, else the user's
// own), INNODB_TRX (its transactions: needs PROCESS), and who waits on whom from
// INNODB_LOCK_WAITS + INNODB_LOCKS (MariaDB, MySQL 5.7) or sys.innodb_lock_waits (MySQL 8,
// where those tables are gone). A session is idle in transaction when it sleeps (COMMAND
// Sleep) with an InnoDB transaction open; its idle time is PROCESSLIST's TIME_MS (MariaDB;
// MySQL: TIME, whole seconds). A waiter's wait is the shorter of its statement's running
// time and trx_wait_started's age plus a second (trx_wait_started has whole seconds only).
// MariaDB keeps no last statement of an idle session (performance_schema is off by
// default): idle rows show none. Statements pass through printable_statement.
// InnoDB serves INNODB_TRX, INNODB_LOCKS and INNODB_LOCK_WAITS from one snapshot, taken
// anew only when nobody has read them for 0.1 s: both reads here see the same snapshot,
// and a monitor that polls them faster than that keeps it stale (for everyone).
#include "mariadb_diagnose.hpp"
#include "pg_statement_scrub.hpp"  // cut_statement
#include "poolbench/error.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace poolbench::internal::mariadb {

namespace {

bool mentions_secret(const std::string& sql) {
    std::string lower(sql);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* word : {"password", "identified", "crypt"}) {
        if (lower.find(word) != std::string::npos) return true;
    }
    return false;
}

std::string scrub(const std::string& sql) {
    if (!mentions_secret(sql)) return sql;
    std::string out;
    const std::size_t n = sql.size();
    std::size_t i = 0;
    while (i < n) {
        const char ch = sql[i];
        const char next = i + 1 < n ? sql[i + 1] : '\0';
        if (ch == '\'' || ch == '"') {
            std::size_t j = i + 1;
            for (; j < n; ++j) {
                if (sql[j] == '\\') {
                    ++j;
                } else if (sql[j] == ch) {
                    if (j + 1 < n && sql[j + 1] == ch) {
                        ++j;
                    } else {
                        break;
                    }
                }
            }
            out += "'***'";
            i = j < n ? j + 1 : n;
        } else if (ch == '`') {  // an identifier: kept
            std::size_t j = i + 1;
            while (j < n && (sql[j] != '`' || (j + 1 < n && sql[j + 1] == '`'))) j += sql[j] == '`' ? 2 : 1;
            out.append(sql, i, std::min(j + 1, n) - i);
            i = std::min(j + 1, n);
        } else if (ch == '/' && next == '*') {
            const std::size_t end = sql.find("*/", i + 2);
            out += "/***/";
            i = end == std::string::npos ? n : end + 2;
        } else if (ch == '#' || (ch == '-' && next == '-' && (i + 2 >= n || std::isspace(static_cast<unsigned char>(sql[i + 2])) != 0))) {
            const std::size_t end = sql.find('\n', i);
            out += "/***/";
            i = end == std::string::npos ? n : end;
        } else {
            out += ch;
            ++i;
        }
    }
    return out;
}

bool waits_for_table_lock(const std::string& state) {
    return state.rfind("Waiting for ", 0) == 0 && (state.find("lock") != std::string::npos || state == "Waiting for table flush");
}

void transactions(const ServerInfo& server, const Sessions& sessions, const DiagnoseOptions& o, Diagnosis& d) {
    std::vector<const SessionRow*> open;
    for (const auto& s : sessions.rows) {
        if (s.in_transaction) open.push_back(&s);
    }
    std::stable_sort(open.begin(), open.end(), [](const SessionRow* a, const SessionRow* b) {
        return a->transaction_s != b->transaction_s ? a->transaction_s > b->transaction_s : a->time_s > b->time_s;
    });
    FactTable t{"transactions", "open InnoDB transactions (oldest first)",
                {"id", "user", "client", "database", "state", "transaction_s", "state_s", "rows_locked", "rows_modified",
                 "statement"},
                {}};
    const double idle_after = static_cast<double>(o.idle_in_transaction_after.count()) / 1000.0;
    const double long_after = static_cast<double>(o.long_query_after.count()) / 1000.0;
    std::map<std::string, std::pair<std::int64_t, double>> leaking;  // client -> (sessions, longest idle)
    std::vector<const SessionRow*> long_open;
    std::int64_t idle = 0;
    for (const SessionRow* s : open) {
        if (t.rows.size() < 50) {
            const std::string state = s->state_name() + (s->trx_state == "LOCK WAIT" ? " (lock wait)" : "");
            t.rows.push_back({s->id, s->user, s->client, s->database, state, seconds_fact(s->transaction_s),
                              seconds_fact(s->time_s), s->rows_locked, s->rows_modified,
                              printable_statement(s->statement, o.statement_chars)});
        }
        if (s->idle()) ++idle;
        if (s->idle() && s->time_s >= idle_after) {
            auto& [n, longest] = leaking[s->who()];
            ++n;
            longest = std::max(longest, s->time_s);
        } else if (s->transaction_s >= long_after) {
            long_open.push_back(s);
        }
    }
    d.add("open_transactions", static_cast<std::int64_t>(open.size()));
    d.add("sessions_idle_in_transaction", idle);
    d.add("oldest_transaction_s", open.empty() ? FactValue{} : seconds_fact(open.front()->transaction_s));
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
    for (const auto& [who, v] : leaking) {
        const auto& [n, longest] = v;
        d.add(FindingLevel::problem, "idle_in_transaction",
              plural(n, "session", "sessions") + " idle in transaction for more than " + seconds_text(idle_after) + " (" +
                  who + ", longest " + seconds_text(longest) +
                  "): the application leaks transactions, holding their row locks and holding back purge",
              server.has_idle_transaction_timeout && server.idle_transaction_timeout_s == 0
                  ? "set idle_transaction_timeout (e.g. SET GLOBAL idle_transaction_timeout = 60) and find where the "
                    "application opens a transaction it does not end"
                  : "find where the application opens a transaction it does not end" +
                        (server.has_idle_transaction_timeout
                             ? " (the server ends them after idle_transaction_timeout = " +
                                   std::to_string(server.idle_transaction_timeout_s) + " s)"
                             : std::string(" (KILL the session to end it now)")),
              who);
    }
    if (!long_open.empty()) {
        const SessionRow& top = *long_open.front();
        d.add(FindingLevel::warn, "long_transaction",
              plural(static_cast<std::int64_t>(long_open.size()), "transaction", "transactions") + " open for more than " +
                  seconds_text(long_after) + " (longest: connection " + std::to_string(top.id) + ", " + top.who() + ", " +
                  seconds_text(top.transaction_s) + ", " + top.state_name() +
                  "): each keeps its row locks and holds back purge until it ends",
              "commit in smaller pieces; see what connection " + std::to_string(top.id) + " runs (transactions)");
    }
}

void long_queries(const Sessions& sessions, const DiagnoseOptions& o, Diagnosis& d) {
    std::vector<const SessionRow*> active;
    for (const auto& s : sessions.rows) {
        if (s.state_name() == "active") active.push_back(&s);
    }
    std::stable_sort(active.begin(), active.end(), [](const SessionRow* a, const SessionRow* b) { return a->time_s > b->time_s; });
    if (active.size() > 10) active.resize(10);
    FactTable t{"longest_running", "the longest-running statements", {"id", "user", "client", "running_s", "state", "statement"}, {}};
    const double threshold_s = static_cast<double>(o.long_query_after.count()) / 1000.0;
    std::int64_t over = 0;
    for (const SessionRow* s : active) {
        t.rows.push_back({s->id, s->user, s->client, seconds_fact(s->time_s), s->state,
                          printable_statement(s->statement, o.statement_chars)});
        if (s->time_s >= threshold_s) ++over;
    }
    if (over > 0) {
        const SessionRow& top = *active.front();
        d.add(FindingLevel::warn, "long_running_queries",
              plural(over, "statement", "statements") + " running for more than " + seconds_text(threshold_s) +
                  " (longest: connection " + std::to_string(top.id) + ", " + top.who() + ", " + seconds_text(top.time_s) +
                  "): each holds a pool's connection that long",
              "set statement_timeout in the URL (statement_timeout=5s: max_statement_time for the pool's sessions), "
              "and look at connection " + std::to_string(top.id) + "'s statement");
    }
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

struct Edge {
    std::int64_t blocker = 0, waiter = 0;
    double waiting_s = 0;
    std::string relation, lock;
};

/// Who waits on whom for an InnoDB lock; throws QueryError when neither source can be read.
std::vector<Edge> lock_edges(Connection& c) {
    Rows r;
    try {
        r = c.query(
            "SELECT b.trx_mysql_thread_id, q.trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, q.trx_wait_started, NOW()), "
            "COALESCE(l.lock_table, ''), COALESCE(CONCAT(l.lock_type, ' ', l.lock_mode), '') FROM "
            "information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_TRX q ON q.trx_id = "
            "w.requesting_trx_id JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id LEFT JOIN "
            "information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id LIMIT 500");
    } catch (const QueryError& e) {
        if (access_denied(e.code())) throw;
        r = c.query("SELECT blocking_pid, waiting_pid, wait_age_secs, COALESCE(locked_table, ''), "
                    "CONCAT(locked_type, ' ', waiting_lock_mode) FROM sys.innodb_lock_waits LIMIT 500");
    }
    std::vector<Edge> edges;
    for (const auto& x : r.rows) edges.push_back(Edge{integer(x[0]), integer(x[1]), real(x[2]), text(x[3]), text(x[4])});
    return edges;
}

void lock_waits(Connection& c, const ServerInfo& server, const Sessions& sessions, const DiagnoseOptions& o, Diagnosis& d) {
    std::vector<Edge> edges;
    try {
        edges = lock_edges(c);
    } catch (const QueryError& e) {
        d.add(FindingLevel::warn, "lock_waits_not_inspectable",
              "who waits on whom for a row lock cannot be read here (" + e.code() + ")",
              "GRANT PROCESS ON *.* TO " + server.account + "; on MySQL 8, install the sys schema");
        return;
    }
    FactTable t{"lock_waits", "who blocks whom (InnoDB row and table locks)",
                {"blocker_id", "blocker_client", "blocker_state", "blocker_statement", "blocked_id", "blocked_client",
                 "waiting_s", "relation", "lock"},
                {}};
    std::map<std::int64_t, std::vector<std::int64_t>> waiters_of;
    std::map<std::int64_t, std::pair<double, std::string>> waiting;  // waiter -> (seconds, relation)
    std::vector<std::int64_t> order;
    for (auto& e : edges) {
        const SessionRow* b = sessions.find(e.blocker);
        const SessionRow* w = sessions.find(e.waiter);
        if (w != nullptr && w->state_name() == "active") e.waiting_s = std::min(w->time_s, e.waiting_s + 1);
        t.rows.push_back({e.blocker, b != nullptr ? b->who() : "", b != nullptr ? b->state_name() : "",
                          b != nullptr ? printable_statement(b->statement, o.statement_chars) : "", e.waiter,
                          w != nullptr ? w->who() : "", seconds_fact(e.waiting_s), e.relation, e.lock});
        if (waiters_of.count(e.blocker) == 0) order.push_back(e.blocker);
        waiters_of[e.blocker].push_back(e.waiter);
        auto& [seconds, relation] = waiting[e.waiter];
        seconds = std::max(seconds, e.waiting_s);
        if (relation.empty()) relation = e.relation;
    }
    d.add("sessions_waiting_on_locks", static_cast<std::int64_t>(waiting.size()));
    const double threshold_s = static_cast<double>(o.lock_wait_after.count()) / 1000.0;
    // A root blocks others and waits on nobody; its tree is every session waiting on it,
    // directly or behind another waiter (InnoDB lists each earlier waiter in the queue).
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
                if (relation.empty()) relation = waiting[w].second;
            }
        }
        const SessionRow* who = sessions.find(root);
        const std::string id = std::to_string(root);
        const std::string state = who != nullptr ? who->state_name() : "";
        const std::string timeout = "lower innodb_lock_wait_timeout (now " + std::to_string(server.innodb_lock_wait_timeout_s) +
                                    " s) for the pool's sessions so waiters give up sooner";
        d.add(longest >= threshold_s ? FindingLevel::problem : FindingLevel::warn, "lock_chain",
              "connection " + id + " has blocked " + plural(static_cast<std::int64_t>(tree.size()), "session", "sessions") +
                  " for " + seconds_text(longest) + (relation.empty() ? std::string() : " on table " + relation) + " (" +
                  (who != nullptr ? who->who() : std::string("a session this user cannot see")) +
                  (state.empty() ? std::string() : ", " + state) + ")",
              state == "idle in transaction"
                  ? "connection " + id + " is idle in a transaction: its application must end it (or KILL " + id + "); " + timeout
                  : "see what connection " + id + " runs (lock_waits); " + timeout,
              (relation.empty() ? std::string("?") : relation) + " by " + (who != nullptr ? who->who() : "?"));
    }
    if (!t.rows.empty()) d.tables.push_back(std::move(t));
}

void metadata_lock_waits(const ServerInfo& server, const Sessions& sessions, const DiagnoseOptions& o, Diagnosis& d) {
    std::map<std::string, std::vector<const SessionRow*>> by_state;
    std::int64_t count = 0;
    for (const auto& s : sessions.rows) {
        if (waits_for_table_lock(s.state)) {
            by_state[s.state].push_back(&s);
            ++count;
        }
    }
    d.add("sessions_waiting_on_table_locks", count);
    const double threshold_s = static_cast<double>(o.lock_wait_after.count()) / 1000.0;
    const std::int64_t idle = std::count_if(sessions.rows.begin(), sessions.rows.end(),
                                            [](const SessionRow& s) { return s.state_name() == "idle in transaction"; });
    for (auto& [state, waiters] : by_state) {
        std::stable_sort(waiters.begin(), waiters.end(), [](const SessionRow* a, const SessionRow* b) { return a->time_s > b->time_s; });
        const SessionRow& top = *waiters.front();
        d.add(top.time_s >= threshold_s ? FindingLevel::problem : FindingLevel::warn, "table_lock_wait",
              plural(static_cast<std::int64_t>(waiters.size()), "session waits", "sessions wait") + " (" + state +
                  "), the longest for " + seconds_text(top.time_s) + ": connection " + std::to_string(top.id) + " (" +
                  top.who() + ") running " + printable_statement(top.statement, o.statement_chars) +
                  (idle > 0 ? "; " + plural(idle, "session is", "sessions are") + " idle in transaction and may hold it"
                            : std::string()),
              "a transaction still open on the table holds its metadata lock: end it (see transactions, or KILL it); "
              "run DDL with a short lock_wait_timeout (now " + std::to_string(server.lock_wait_timeout_s) +
                  " s) so it gives up instead of queueing every later statement on the table",
              state);
    }
}

}  // namespace

std::string text(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
    return "";
}

std::int64_t integer(const Value& v, std::int64_t fallback) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
    if (const auto* s = std::get_if<std::string>(&v)) {
        try {
            return static_cast<std::int64_t>(std::stod(*s));
        } catch (...) {
            return fallback;
        }
    }
    return fallback;
}

double real(const Value& v) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    if (const auto* s = std::get_if<std::string>(&v)) {
        try {
            return std::stod(*s);
        } catch (...) {
            return 0;
        }
    }
    return 0;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s >= 10 ? "%.0f s" : "%.1f s", s);
    return buf;
}

std::string plural(std::int64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

FactValue seconds_fact(double s) { return std::round(s * 10) / 10; }

bool access_denied(const std::string& code) {
    return code == "1044" || code == "1045" || code == "1142" || code == "1143" || code == "1227" || code == "1370";
}

std::string printable_statement(const std::string& sql, std::size_t chars) {
    std::string one = cut_statement(scrub(sql), chars);
    for (char& c : one) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    return one;
}

Sessions read_sessions(Connection& c, const ServerInfo& server) {
    Sessions out;
    const Rows p = c.query(std::string("SELECT ID, COALESCE(USER, ''), COALESCE(HOST, ''), COALESCE(DB, ''), "
                                       "COALESCE(COMMAND, ''), ") +
                           (server.is_mariadb ? "TIME_MS / 1000" : "TIME") +
                           ", COALESCE(STATE, ''), COALESCE(INFO, '') FROM information_schema.PROCESSLIST WHERE ID <> "
                           "CONNECTION_ID() AND COALESCE(COMMAND, '') <> 'Daemon' ORDER BY ID LIMIT 10000");
    for (const auto& x : p.rows) {
        SessionRow s;
        s.id = integer(x[0]);
        s.user = text(x[1]);
        s.client = text(x[2]);
        if (const auto colon = s.client.rfind(':'); colon != std::string::npos && colon + 1 < s.client.size() &&
                                                    std::all_of(s.client.begin() + static_cast<std::ptrdiff_t>(colon) + 1,
                                                                s.client.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; })) {
            s.client.resize(colon);
        }
        s.database = text(x[3]);
        s.command = text(x[4]);
        s.time_s = real(x[5]);
        s.state = text(x[6]);
        s.statement = text(x[7]);
        out.by_id[s.id] = out.rows.size();
        out.rows.push_back(std::move(s));
    }
    Rows t;
    try {
        t = c.query("SELECT trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()), trx_state, "
                    "trx_rows_locked, trx_rows_modified, COALESCE(trx_query, '') FROM information_schema.INNODB_TRX");
    } catch (const QueryError& e) {
        if (!access_denied(e.code())) throw;
        return out;  // without PROCESS
    }
    out.transactions_visible = true;
    for (const auto& x : t.rows) {
        const auto it = out.by_id.find(integer(x[0]));
        if (it == out.by_id.end()) continue;  // this session, or one that ended since
        SessionRow& s = out.rows[it->second];
        s.in_transaction = true;
        s.transaction_s = real(x[1]);
        s.trx_state = text(x[2]);
        s.rows_locked = integer(x[3], 0);
        s.rows_modified = integer(x[4], 0);
        if (s.statement.empty()) s.statement = text(x[5]);
    }
    return out;
}

void diagnose_sessions(Connection& c, const ServerInfo& server, const Sessions& sessions, const DiagnoseOptions& o,
                       Diagnosis& d) {
    if (sessions.transactions_visible) transactions(server, sessions, o, d);
    long_queries(sessions, o, d);
    if (sessions.transactions_visible) lock_waits(c, server, sessions, o, d);
    metadata_lock_waits(server, sessions, o, d);
}

}  // namespace poolbench::internal::mariadb
