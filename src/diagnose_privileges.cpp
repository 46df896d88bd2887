// diagnose_privileges.cpp — whether poolbench's workloads can run as the URL's user: their
// tables (src/workload.cpp: read and mixed need SELECT on poolbench_accounts, write and
// mixed SELECT and INSERT on poolbench_writes) exist with those privileges, or can be
// created (CREATE). Asked through the read-only connection, in SQL only (the CLI includes
// no backend header):
//   PostgreSQL: has_schema_privilege / has_table_privilege on the search_path's tables;
//   MariaDB / MySQL: SHOW GRANTS for the current user (with MariaDB, also its enabled
//     role's grants; MySQL 8 lists a role without its privileges, so they are not seen),
//     matched against the URL's database and the tables. A database-level grant may use
//     the LIKE wildcards (`app\_%`.*); a column-level grant is not enough for the
//     workloads. The GRANT lines are parsed, never printed (they carry the password hash).
#include "diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

namespace poolbench::cli {

namespace {

bool truthy(const Value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i != 0;
    return false;
}

std::string string_of(const Value& v) {
    const auto* s = std::get_if<std::string>(&v);
    return s != nullptr ? *s : std::string();
}

struct Need {
    const char* table;
    bool insert;
    const char* workloads;
};
constexpr Need needs[] = {{"poolbench_accounts", false, "read and mixed"}, {"poolbench_writes", true, "write and mixed"}};

/// The findings both backends share, from what was found. `grant(need)` is the statement
/// that would give what is missing; `create_grant` the one that lets the user create tables.
struct Verdict {
    std::string who;    ///< "role app", "user 'app'@'%'"
    std::string where;  ///< "schema public", "database app"
    bool can_create = false;
    std::vector<std::string> absent;
    std::vector<std::string> missing_grants;
    std::string create_grant;
};

void add_verdict(const Verdict& v, Diagnosis& d) {
    if (!v.absent.empty() && !v.can_create) {
        d.add(FindingLevel::warn, "workload_cannot_create_tables",
              fmt::format("{} cannot create tables in {} and {} {} not exist: poolbench's read, write and mixed "
                          "workloads cannot set up (select1 runs)",
                          v.who, v.where, fmt::join(v.absent, " and "), v.absent.size() == 1 ? "does" : "do"),
              fmt::format("{}, or have a DBA create the tables (poolbench stress --workload mixed prints the statements)",
                          v.create_grant));
    }
    if (!v.missing_grants.empty()) {
        d.add(FindingLevel::warn, "workload_table_privileges", fmt::format("{} lacks privileges on poolbench's tables", v.who),
              fmt::format("{}", fmt::join(v.missing_grants, "; ")));
    }
    if (v.missing_grants.empty() && (v.absent.empty() || v.can_create)) {
        d.add(FindingLevel::ok, "workload_privileges",
              "the workloads can run: their tables exist with the privileges they need, or can be created");
    }
}

void postgres_privileges(Connection& c, Diagnosis& d) {
    const Rows schema = c.query(
        "SELECT coalesce(current_schema(), ''), coalesce(has_schema_privilege(current_schema(), 'CREATE'), false), "
        "current_user");
    const std::string name = string_of(schema.rows.at(0).at(0));
    const std::string role = string_of(schema.rows[0][2]);
    Verdict v;
    v.can_create = truthy(schema.rows[0][1]);
    v.who = "role " + role;
    v.where = "schema " + (name.empty() ? std::string("(none on the search_path)") : name);
    v.create_grant = fmt::format("GRANT CREATE ON SCHEMA {} TO {}", name.empty() ? "public" : name, role);
    d.add("schema", name.empty() ? FactValue{} : FactValue{name});
    d.add("can_create_tables", v.can_create);
    for (const Need& n : needs) {
        const Rows r = c.query(
            "SELECT has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT') FROM "
            "pg_catalog.pg_class c WHERE c.relname = $1 AND c.relkind IN ('r', 'p', 'v') AND "
            "pg_catalog.pg_table_is_visible(c.oid)",
            {Value{std::string(n.table)}});
        std::string state;
        if (r.empty()) {
            state = "absent";
            v.absent.emplace_back(n.table);
        } else {
            state = truthy(r.rows[0][0]) && (truthy(r.rows[0][1]) || !n.insert) ? "usable" : "no privilege";
            if (state != "usable") {
                v.missing_grants.push_back(fmt::format("GRANT {} ON {} TO {} ({} workloads)",
                                                       n.insert ? "SELECT, INSERT" : "SELECT", n.table, role, n.workloads));
            }
        }
        d.add(std::string(n.table), state);
    }
    add_verdict(v, d);
}

/// A LIKE pattern of a database-level grant ('%', '_', '\' escapes) against `name`.
bool like(std::string_view pattern, std::string_view name) {
    if (pattern.empty()) return name.empty();
    if (pattern[0] == '%') {
        for (std::size_t i = 0; i <= name.size(); ++i) {
            if (like(pattern.substr(1), name.substr(i))) return true;
        }
        return false;
    }
    std::size_t len = 1;
    char want = pattern[0];
    if (want == '\\' && pattern.size() > 1) {
        want = pattern[1];
        len = 2;
    } else if (want == '_') {
        return !name.empty() && like(pattern.substr(1), name.substr(1));
    }
    return !name.empty() && name[0] == want && like(pattern.substr(len), name.substr(1));
}

/// One `GRANT privileges ON level TO ...` line of SHOW GRANTS.
struct Grant {
    bool global = false;
    std::string db, table;  ///< table "" for db.*
    std::vector<std::string> privileges;
};

/// A backquoted identifier at `at` (`` is one `), or a bare one up to '.'/' '; `at` moves past it.
std::string identifier(const std::string& s, std::size_t& at) {
    std::string out;
    if (at < s.size() && s[at] == '`') {
        for (++at; at < s.size(); ++at) {
            if (s[at] == '`') {
                if (at + 1 < s.size() && s[at + 1] == '`') {
                    out += '`';
                    ++at;
                    continue;
                }
                ++at;
                break;
            }
            out += s[at];
        }
        return out;
    }
    while (at < s.size() && s[at] != '.' && s[at] != ' ') out += s[at++];
    return out;
}

std::optional<Grant> parse_grant(const std::string& line) {
    if (line.rfind("GRANT ", 0) != 0) return std::nullopt;
    // " ON " outside a column list: privileges never contain it.
    const std::size_t on = line.find(" ON ");
    if (on == std::string::npos) return std::nullopt;  // a role granted
    Grant g;
    std::string current;
    int depth = 0;
    for (std::size_t i = 6; i <= on; ++i) {
        const char ch = i < on ? line[i] : ',';
        if (ch == '(') ++depth;
        if (ch == ')') --depth;
        if (ch == ',' && depth == 0) {
            while (!current.empty() && current.front() == ' ') current.erase(current.begin());
            while (!current.empty() && current.back() == ' ') current.pop_back();
            if (current.find('(') == std::string::npos) g.privileges.push_back(current);  // column-level: not enough
            current.clear();
        } else {
            current += ch;
        }
    }
    std::size_t at = on + 4;
    if (line.compare(at, 4, "*.* ") == 0) {
        g.global = true;
        return g;
    }
    if (line.compare(at, 9, "FUNCTION ") == 0 || line.compare(at, 10, "PROCEDURE ") == 0 ||
        line.compare(at, 8, "PACKAGE ") == 0) {
        return std::nullopt;
    }
    g.db = identifier(line, at);
    if (at >= line.size() || line[at] != '.') return std::nullopt;
    ++at;
    if (at < line.size() && line[at] == '*') return g;
    g.table = identifier(line, at);
    return g;
}

void mariadb_privileges(Connection& c, Diagnosis& d) {
    const Rows who = c.query("SELECT CURRENT_USER(), COALESCE(DATABASE(), '')");
    const std::string user = string_of(who.rows.at(0).at(0));
    const std::string db = string_of(who.rows[0][1]);
    const std::size_t at = user.rfind('@');
    const std::string grantee = at == std::string::npos ? "`" + user + "`" : fmt::format("`{}`@`{}`", user.substr(0, at), user.substr(at + 1));
    if (db.empty()) {
        d.add(FindingLevel::warn, "workload_no_database",
              "the URL names no database: poolbench's read, write and mixed workloads have nowhere to create their "
              "tables (select1 runs)",
              "add the database to the URL (mariadb://user@host:port/DATABASE)");
        return;
    }
    std::vector<Grant> grants;
    for (const auto& row : c.query("SHOW GRANTS").rows) {
        if (auto g = parse_grant(string_of(row.at(0)))) grants.push_back(std::move(*g));
    }
    // Whether `privilege` is granted on `table` of the URL's database ("" : the database itself).
    auto has = [&](const std::string& privilege, const std::string& table) {
        return std::any_of(grants.begin(), grants.end(), [&](const Grant& g) {
            const bool level = g.global || (g.table.empty() && like(g.db, db)) || (!table.empty() && g.db == db && g.table == table);
            return level && std::any_of(g.privileges.begin(), g.privileges.end(), [&](const std::string& p) {
                       return p == privilege || p == "ALL PRIVILEGES" || p == "ALL";
                   });
        });
    };
    Verdict v;
    v.can_create = has("CREATE", "");
    v.who = "user " + grantee;
    v.where = "database " + db;
    v.create_grant = fmt::format("GRANT CREATE ON `{}`.* TO {}", db, grantee);
    d.add("can_create_tables", v.can_create);
    for (const Need& n : needs) {
        const Rows r = c.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
                               {Value{std::string(n.table)}});
        std::string state;
        if (r.int_at(0) == 0) {
            state = "absent";
            if (has("CREATE", n.table)) {
                state = "absent, can be created";
            } else {
                v.absent.emplace_back(n.table);
            }
        } else {
            state = has("SELECT", n.table) && (!n.insert || has("INSERT", n.table)) ? "usable" : "no privilege";
            if (state != "usable") {
                v.missing_grants.push_back(fmt::format("GRANT {} ON `{}`.`{}` TO {} ({} workloads)",
                                                       n.insert ? "SELECT, INSERT" : "SELECT", db, n.table, grantee, n.workloads));
            }
        }
        d.add(std::string(n.table), state);
    }
    add_verdict(v, d);
}

}  // namespace

void workload_privileges(Backend backend, Connection& c, Diagnosis& d) {
    if (backend == Backend::postgresql) postgres_privileges(c, d);
    if (backend == Backend::mariadb) mariadb_privileges(c, d);
}

}  // namespace poolbench::cli
