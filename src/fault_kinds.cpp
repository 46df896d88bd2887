// fault_kinds.cpp — the fault kinds' names and the backends each runs on (scenario.hpp).
#include "scenario.hpp"

#include <array>
#include <string>

namespace poolbench::cli {

namespace {
constexpr std::array all_fault_kinds{FaultKind::sqlite_lock,        FaultKind::pg_lock_table,
                                     FaultKind::pg_terminate_backends, FaultKind::pg_restart,
                                     FaultKind::mariadb_lock_table,  FaultKind::mariadb_kill_connections,
                                     FaultKind::mariadb_restart,     FaultKind::server_restart,
                                     FaultKind::connection_storm,    FaultKind::latency,
                                     FaultKind::lost_replies,        FaultKind::leak,
                                     FaultKind::replica_stop,        FaultKind::replica_promote};
}  // namespace

std::string_view to_string(FaultKind kind) noexcept {
    switch (kind) {
        case FaultKind::sqlite_lock: return "sqlite.lock";
        case FaultKind::pg_lock_table: return "pg.lock_table";
        case FaultKind::pg_terminate_backends: return "pg.terminate_backends";
        case FaultKind::pg_restart: return "pg.restart";
        case FaultKind::mariadb_lock_table: return "mariadb.lock_table";
        case FaultKind::mariadb_kill_connections: return "mariadb.kill_connections";
        case FaultKind::mariadb_restart: return "mariadb.restart";
        case FaultKind::server_restart: return "server.restart";
        case FaultKind::connection_storm: return "connection_storm";
        case FaultKind::latency: return "latency";
        case FaultKind::lost_replies: return "lost_replies";
        case FaultKind::leak: return "leak";
        case FaultKind::replica_stop: return "replica.stop";
        case FaultKind::replica_promote: return "replica.promote";
    }
    return "?";
}

std::optional<FaultKind> parse_fault_kind(std::string_view text) noexcept {
    for (auto k : all_fault_kinds) {
        if (text == to_string(k)) return k;
    }
    return std::nullopt;
}

std::vector<Backend> fault_backends(FaultKind kind) {
    switch (kind) {
        case FaultKind::sqlite_lock: return {Backend::sqlite};
        case FaultKind::pg_lock_table:
        case FaultKind::pg_terminate_backends:
        case FaultKind::pg_restart: return {Backend::postgresql};
        case FaultKind::mariadb_lock_table:
        case FaultKind::mariadb_kill_connections:
        case FaultKind::mariadb_restart: return {Backend::mariadb};
        case FaultKind::server_restart: return {Backend::postgresql, Backend::mariadb};
        case FaultKind::replica_stop:
        case FaultKind::replica_promote: return {Backend::postgresql};
        case FaultKind::connection_storm:
        case FaultKind::latency:
        case FaultKind::lost_replies:
        case FaultKind::leak: return {Backend::sqlite, Backend::postgresql, Backend::mariadb, Backend::null};
    }
    return {};
}

std::string fault_kind_list() {
    std::string out;
    for (auto k : all_fault_kinds) {
        out += (out.empty() ? "" : ", ") + std::string(to_string(k));
    }
    return out;
}

}  // namespace poolbench::cli
