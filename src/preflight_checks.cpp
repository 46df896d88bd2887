// preflight_checks.cpp — the preflight's checks (preflight_checks.hpp).
#include "preflight_checks.hpp"

#include <poolbench/error.hpp>

#include <cstdint>
#include <string_view>
#include <variant>

namespace poolbench::cli {

namespace {

constexpr std::string_view fix =
    "point --db at a server that takes writes (the primary), or run a workload that only reads (select1, read)";

std::optional<std::string> postgres_refusal(Connection& conn) {
    const Rows r = conn.query("SELECT current_setting('transaction_read_only'), pg_catalog.pg_is_in_recovery()::int");
    if (r.empty()) return std::nullopt;
    const auto* read_only = std::get_if<std::string>(&r.rows[0][0]);
    if (read_only == nullptr || *read_only != "on") return std::nullopt;
    const auto* recovering = std::get_if<std::int64_t>(&r.rows[0][1]);
    const bool standby = recovering != nullptr && *recovering == 1;
    return std::string("the server is read-only for this session (") +
           (standby ? "it is a hot standby, in recovery" : "transaction_read_only is on: default_transaction_read_only") +
           ") and the workload writes: " + std::string(fix);
}

std::optional<std::string> mariadb_refusal(Connection& conn) {
    // Deletes nothing even if such a table existed (WHERE 1 = 0). A server whose read_only
    // applies to this account refuses it with 1290 before looking the table up; a read-only
    // session (SET SESSION TRANSACTION READ ONLY) with 1792; otherwise 1146 (no such table).
    try {
        conn.execute("DELETE FROM poolbench_read_only_probe_4f1c WHERE 1 = 0");
    } catch (const QueryError& e) {
        if (e.code() == "1290") {
            return "the server is read-only (read_only is on, and this account has no READ ONLY ADMIN) and the "
                   "workload writes: " +
                   std::string(fix);
        }
        if (e.code() == "1792") {
            return "the session is read-only (transaction_read_only / tx_read_only is on) and the workload writes: " +
                   std::string(fix);
        }
        return std::nullopt;  // 1146 (writable), 1046 (no database chosen): nothing to say
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> read_only_refusal(Connection& conn, Backend backend) {
    switch (backend) {
        case Backend::postgresql: return postgres_refusal(conn);
        case Backend::mariadb: return mariadb_refusal(conn);
        case Backend::sqlite:  // a read-only file fails setup or the first write, with its own message
        case Backend::null: return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace poolbench::cli
