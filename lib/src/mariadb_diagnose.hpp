// mariadb_diagnose.hpp — the parts of MariaDB's diagnose() shared by its two files (not
// installed):
//   mariadb_diagnose.cpp           the entry point; server, settings, connection limits and
//                                  errors, timeouts, read-only and replication
//   mariadb_diagnose_sessions.cpp  sessions: open transactions (idle in transaction, long),
//                                  long-running statements, lock chains, metadata lock waits;
//                                  and the helpers below (reading values, wording)
// Everything is read through one read-only session (Driver::connect_read_only): SHOW
// VARIABLES / STATUS / GRANTS / REPLICA STATUS and information_schema (PROCESSLIST,
// INNODB_TRX, INNODB_LOCK_WAITS, INNODB_LOCKS; sys.innodb_lock_waits where the
// information_schema lock tables are gone, as in MySQL 8). Without the PROCESS privilege a
// user sees only its own sessions and none of InnoDB's transactions: that is a warning,
// not a failure.
//
// Thread-safety: pure functions over one connection, used by one thread.
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace poolbench::internal::mariadb {

/// What the entry point learnt that the session checks need.
struct ServerInfo {
    bool is_mariadb = true;                 ///< false: MySQL (or a fork of it)
    int version = 0;                        ///< major * 100 + minor: 1011 for 10.11.6
    std::string user;                       ///< CURRENT_USER(): "name@host"
    std::string account;                    ///< the same for a GRANT: 'name'@'host'
    std::int64_t innodb_lock_wait_timeout_s = 0;
    std::int64_t lock_wait_timeout_s = 0;
    bool has_idle_transaction_timeout = false;  ///< MariaDB 10.3+: idle_transaction_timeout exists
    std::int64_t idle_transaction_timeout_s = 0;
};

/// One client session of information_schema.PROCESSLIST, with its InnoDB transaction.
struct SessionRow {
    std::int64_t id = 0;
    std::string user, client, database, command, state, statement;  ///< client: the host without its port
    double time_s = 0;         ///< in the current command (an idle one: since its last statement ended)
    bool in_transaction = false;
    double transaction_s = 0;  ///< since the transaction started (whole seconds: trx_started)
    std::string trx_state;     ///< RUNNING, LOCK WAIT, ...
    std::int64_t rows_locked = 0, rows_modified = 0;

    [[nodiscard]] bool idle() const { return command == "Sleep"; }
    /// "idle in transaction", "idle", "active" or the command in lower case ("binlog dump").
    [[nodiscard]] std::string state_name() const;
    /// "user@client".
    [[nodiscard]] std::string who() const { return user + "@" + client; }
};

/// The sessions this user may see (all of them with PROCESS), without the diagnosing one.
struct Sessions {
    std::vector<SessionRow> rows;
    bool transactions_visible = false;  ///< INNODB_TRX could be read (PROCESS)
    std::map<std::int64_t, std::size_t> by_id;
    [[nodiscard]] const SessionRow* find(std::int64_t id) const {
        const auto it = by_id.find(id);
        return it == by_id.end() ? nullptr : &rows[it->second];
    }
};

/// Reads the sessions (mariadb_diagnose_sessions.cpp). Without PROCESS: own sessions only,
/// no transactions.
[[nodiscard]] Sessions read_sessions(Connection& c, const ServerInfo& server);

/// The session checks (mariadb_diagnose_sessions.cpp): open transactions, idle in
/// transaction, long-running statements, lock chains and metadata lock waits.
void diagnose_sessions(Connection& c, const ServerInfo& server, const Sessions& sessions, const DiagnoseOptions& o,
                       Diagnosis& d);

/// `sql` safe to print: when it mentions a password, an IDENTIFIED clause or an
/// (en|de)cryption function (any case), every quoted string ('..' and "..", with backslash
/// escapes and doubled quotes) becomes '***' and every comment (/* */, -- , #) /***/; an
/// unterminated one is replaced to the end. Otherwise unchanged. Then cut to `chars` and
/// put on one line.
[[nodiscard]] std::string printable_statement(const std::string& sql, std::size_t chars);

// Reading values.
[[nodiscard]] std::string text(const Value& v);
[[nodiscard]] std::int64_t integer(const Value& v, std::int64_t fallback = -1);
[[nodiscard]] double real(const Value& v);
[[nodiscard]] std::string seconds_text(double s);
[[nodiscard]] std::string plural(std::int64_t n, const char* one, const char* many);
/// Seconds rounded to 0.1.
[[nodiscard]] FactValue seconds_fact(double s);
/// Whether a QueryError code is an access-denied error (1044, 1045, 1142, 1143, 1227, 1370).
[[nodiscard]] bool access_denied(const std::string& code);

}  // namespace poolbench::internal::mariadb
