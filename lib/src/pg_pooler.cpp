// pg_pooler.cpp — diagnose's part about a pooler in front of the server (pg_pooler.hpp).
//
// The driver's probe (behind_pooler) says whether statements run on a server process
// other than the one the connection was opened with. PgBouncer then has a console: the
// database "pgbouncer" on the same address, open to its admin_users and stats_users, that
// answers SHOW commands over the simple protocol only. Its answer to anyone else is
// "not allowed", which still says it is PgBouncer. What the console tells: SHOW VERSION,
// SHOW CONFIG (pool_mode, default_pool_size, max_client_conn, max_db_connections,
// max_user_connections) and SHOW DATABASES (the URL's database's own pool_size and
// pool_mode, which override the defaults; columns are found by name, as they vary between
// releases).
#include "pg_pooler.hpp"

#include "driver_text.hpp"
#include "poolbench/error.hpp"

#include <charconv>
#include <map>

namespace poolbench::internal::pg {

namespace {

std::optional<std::int64_t> number(const std::string& text) {
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return n;
}

/// Row `r`'s value in the column named `name` ("" when there is no such column).
std::string cell(const TextResult& t, const std::vector<std::string>& row, std::string_view name) {
    for (std::size_t c = 0; c < t.columns.size() && c < row.size(); ++c) {
        if (t.columns[c] == name) return row[c];
    }
    return {};
}

/// What PgBouncer's console said; empty fields when it did not say.
struct Console {
    std::string version;    ///< "PgBouncer 1.18.0"
    std::string pool_mode;  ///< for the URL's database: its own, else the default
    std::optional<std::int64_t> pool_size, max_client_conn, max_db_connections, max_user_connections;
};

Console read_console(PGconn* conn, const std::string& database, Clock::time_point deadline, const PgSettings& s) {
    Console out;
    std::string error;
    if (auto v = simple_rows(conn, "SHOW VERSION", deadline, s, error); v && !v->rows.empty() && !v->rows[0].empty()) {
        out.version = v->rows[0][0];
    }
    std::map<std::string, std::string> config;
    if (auto c = simple_rows(conn, "SHOW CONFIG", deadline, s, error)) {
        for (const auto& row : c->rows) config[cell(*c, row, "key")] = cell(*c, row, "value");
    }
    out.pool_mode = config["pool_mode"];
    out.pool_size = number(config["default_pool_size"]);
    out.max_client_conn = number(config["max_client_conn"]);
    out.max_db_connections = number(config["max_db_connections"]);
    out.max_user_connections = number(config["max_user_connections"]);
    if (auto dbs = simple_rows(conn, "SHOW DATABASES", deadline, s, error)) {
        for (const auto& row : dbs->rows) {
            if (cell(*dbs, row, "name") != database) continue;
            if (auto n = number(cell(*dbs, row, "pool_size"))) out.pool_size = n;
            if (const std::string m = cell(*dbs, row, "pool_mode"); !m.empty()) out.pool_mode = m;
        }
    }
    return out;
}

/// libpq's "connection to server at ..., port N failed: not allowed" -> "not allowed".
std::string server_said(const std::string& message) {
    const std::size_t at = message.rfind("failed: ");
    return at == std::string::npos ? message : message.substr(at + 8);
}

}  // namespace

std::pair<std::string, std::string> url_database_and_user(const PgSettings& s) {
    std::string database;
    std::string user;
    for (std::size_t i = 0; i < s.keywords.size() && i < s.values.size(); ++i) {
        if (s.keywords[i] == "dbname" && i == 2) {
            // The URL itself (the driver's first dbname, expanded by libpq).
            char* err = nullptr;
            const ConninfoPtr parsed(PQconninfoParse(s.values[i].c_str(), &err));
            PQfreemem(err);
            for (const PQconninfoOption* o = parsed ? parsed.get() : nullptr; o != nullptr && o->keyword != nullptr; ++o) {
                if (o->val == nullptr) continue;
                if (std::string_view(o->keyword) == "dbname") database = o->val;
                if (std::string_view(o->keyword) == "user") user = o->val;
            }
        } else if (s.keywords[i] == "dbname") {
            database = s.values[i];
        } else if (s.keywords[i] == "user") {
            user = s.values[i];
        }
    }
    if (user.empty() || database.empty()) {
        // libpq's defaults: PGUSER / PGDATABASE, else the OS user.
        const ConninfoPtr defaults(PQconndefaults());
        for (const PQconninfoOption* o = defaults ? defaults.get() : nullptr; o != nullptr && o->keyword != nullptr; ++o) {
            if (o->val == nullptr) continue;
            if (user.empty() && std::string_view(o->keyword) == "user") user = o->val;
            if (database.empty() && std::string_view(o->keyword) == "dbname") database = o->val;
        }
    }
    if (database.empty()) database = user;
    return {database, user};
}

void diagnose_pooler(const PoolerProbe& probe, const PgSettings& s, Clock::time_point deadline, Diagnosis& d) {
    if (!probe.pooled) {
        d.add("connection_pooler", std::string("none"));
        return;
    }
    const auto [database, user] = url_database_and_user(s);
    std::optional<Console> console;
    std::string refused;
    try {
        ConnPtr c = probe.open_console();
        console = read_console(c.get(), database, deadline, s);
    } catch (const ConnectError& e) {
        refused = server_said(e.what());
    }
    const bool pgbouncer = console.has_value() || refused == "not allowed";
    d.add("connection_pooler", std::string(pgbouncer ? "pgbouncer" : "unknown"));

    std::vector<Finding> front;
    const std::string who = user.empty() ? std::string("this user") : "user " + user;
    const std::string where = database.empty() ? std::string() : " on database " + database;
    if (console) {
        auto fact = [&](const char* key, const std::optional<std::int64_t>& v) {
            d.add(key, v ? FactValue{*v} : FactValue{});
        };
        d.add("pgbouncer_version", console->version.empty() ? FactValue{} : FactValue{console->version});
        d.add("pgbouncer_pool_mode", console->pool_mode.empty() ? FactValue{} : FactValue{console->pool_mode});
        fact("pgbouncer_pool_size", console->pool_size);
        fact("pgbouncer_max_client_conn", console->max_client_conn);
        fact("pgbouncer_max_db_connections", console->max_db_connections);
        fact("pgbouncer_max_user_connections", console->max_user_connections);
        const std::string size = console->pool_size ? std::to_string(*console->pool_size) : std::string("?");
        const std::string clients =
            console->max_client_conn ? " (max_client_conn " + std::to_string(*console->max_client_conn) + " for all clients together)" : "";
        const bool by_transaction = console->pool_mode == "transaction" || console->pool_mode == "statement";
        front.push_back(Finding{
            FindingLevel::ok, "pgbouncer",
            "this address is " + (console->version.empty() ? std::string("PgBouncer") : console->version) +
                " in front of the server" + (console->pool_mode.empty() ? "" : " (pool_mode " + console->pool_mode + ")") +
                ": the server-side pool is PgBouncer's, at most " + size + " server connections for " + who + where +
                " (pool_size), shared by every client; a client pool's max_size only bounds its connections to "
                "PgBouncer" + clients + ", and clients beyond the " + size + " wait inside PgBouncer",
            "size PgBouncer's pool_size (default_pool_size) as the server's pool: the pool-size recommendation is "
            "for it; the client pool may be larger" +
                std::string(by_transaction ? "; transaction pooling breaks named prepared statements: keep prepare=auto "
                                             "(or prepare=off) in the URL"
                                           : ""),
            {}});
        if (probe.prepare == PrepareMode::on && by_transaction) {
            front.push_back(Finding{
                FindingLevel::problem, "pgbouncer_prepare_on",
                "the URL says prepare=on and PgBouncer pools by " + console->pool_mode +
                    ": poolbench's named prepared statements will be missing (26000) or another client's (42P05) on "
                    "the next server connection",
                "remove prepare=on (auto runs statements unnamed here) or set prepare=off", {}});
        }
    } else if (pgbouncer) {
        front.push_back(Finding{
            FindingLevel::ok, "pgbouncer",
            "this address is PgBouncer in front of the server (its console, database pgbouncer, refused " + who +
                ": not in admin_users or stats_users): the server-side pool is PgBouncer's pool_size "
                "(default_pool_size), shared by every client, not the client pool's max_size; clients beyond it "
                "wait inside PgBouncer",
            "add " + (user.empty() ? std::string("the user") : user) +
                " to PgBouncer's stats_users to see its settings here; size its pool_size as the server's pool (the "
                "pool-size recommendation is for it); keep prepare=auto or prepare=off in the URL unless it pools by "
                "session",
            {}});
    } else {
        front.push_back(Finding{
            FindingLevel::ok, "connection_pooler",
            "a connection pooler is in front of the server (statements run on a server process other than the one "
            "the connection was opened with), and PgBouncer's console did not answer (" + refused +
                "): the server-side pool is the pooler's own, not the client pool's max_size",
            "size the pooler's pool as the server's pool (the pool-size recommendation is for it); keep prepare=auto "
            "or prepare=off in the URL unless it pools by session",
            {}});
    }
    if (probe.prepare == PrepareMode::on && !console) {
        front.push_back(Finding{FindingLevel::warn, "pgbouncer_prepare_on",
                                "the URL says prepare=on behind a pooler: unless it pools by session, poolbench's "
                                "named prepared statements will be missing (26000) or another client's (42P05)",
                                "remove prepare=on (auto runs statements unnamed here) or set prepare=off", {}});
    }
    d.findings.insert(d.findings.begin(), front.begin(), front.end());
}

}  // namespace poolbench::internal::pg
