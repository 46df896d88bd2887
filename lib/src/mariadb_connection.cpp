// mariadb_connection.cpp — one MariaDB / MySQL connection (Connector/C), made by
// MariaDriver::connect() (mariadb_driver.cpp).
//
// query() prepares each distinct SQL text once per connection (server-side prepared
// statements, binary protocol; at most max_cached_statements, beyond that a statement is
// prepared, run and closed); execute() runs text statements, several separated by ';'
// (CLIENT_MULTI_STATEMENTS). Parameters are '?'.
//
// Broken: a client error (2000-2999: server gone, connection lost, ...), the server
// shutting down (1053) or the connection killed (1927) — all of kind connection_lost — or
// an error number in the URL's broken_errors (default 1290, 1836: the server is read-only).
// A broken connection stays broken; the pool then closes it. Every QueryError leaves
// through MariaConnection::fail, classified by mariadb_error_kind (error_kind.cpp).
//
// A transaction is open while the server says so (SERVER_STATUS_IN_TRANS), so a deadlock,
// which rolls the transaction back on the server, leaves in_transaction() false. An error
// packet carries no status: after a deadlock, lock wait timeout or 1020 inside a transaction
// the connection asks again (DO 0) before throwing.
#include "mariadb_connection.hpp"

#include "driver_text.hpp"
#include "error_kind.hpp"
#include "mariadb_values.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace poolbench::internal::mariadb {

namespace {

constexpr std::size_t max_cached_statements = 256;
constexpr unsigned er_wrong_arguments = 1210;  // "Incorrect arguments to EXECUTE"
constexpr unsigned cr_server_lost = 2013;

struct StmtCloser {
    void operator()(MYSQL_STMT* s) const noexcept { (void)mysql_stmt_close(s); }
};
using StmtPtr = std::unique_ptr<MYSQL_STMT, StmtCloser>;

/// A prepared statement and how to read its result.
struct Prepared {
    StmtPtr stmt;
    unsigned params = 0;
    ResultBuffers result;
};

class MariaConnection final : public Connection {
public:
    MariaConnection(std::shared_ptr<const MariaSettings> settings, MysqlPtr conn)
        : settings_(std::move(settings)), conn_(std::move(conn)), thread_id_(mysql_thread_id(conn_.get())) {}
    using Connection::query;

    // Statements close before the connection (members are destroyed in reverse order); on
    // a lost connection Connector/C has already detached them, and closing only frees.
    ~MariaConnection() override = default;

    void execute(std::string_view sql) override {
        check_usable(sql);
        if (mysql_real_query(conn_.get(), sql.data(), sql.size()) != 0) fail_conn(sql);
        // Every result of every statement must be read before the next command.
        while (true) {
            MYSQL_RES* res = mysql_store_result(conn_.get());
            if (res != nullptr) {
                mysql_free_result(res);
            } else if (mysql_field_count(conn_.get()) != 0) {
                fail_conn(sql);
            }
            const int more = mysql_next_result(conn_.get());
            if (more == -1) break;
            if (more > 0) fail_conn(sql);
        }
    }

    Rows query(std::string_view sql, std::span<const Value> params) override {
        check_usable(sql);
        Prepared* p = prepared(sql);
        std::optional<Prepared> one_off;
        if (p == nullptr) {
            one_off.emplace(prepare(sql));
            p = &*one_off;
        }
        if (params.size() != p->params) {
            fail("the statement takes " + std::to_string(p->params) + " parameter" + (p->params == 1 ? "" : "s") + ", " +
                     std::to_string(params.size()) + " were given, in: " + sql_excerpt(sql),
                 er_wrong_arguments);
        }
        ParamBinds binds(params);
        MYSQL_STMT* stmt = p->stmt.get();
        if (p->params > 0 && mysql_stmt_bind_param(stmt, binds.data()) != 0) fail_stmt(stmt, sql);
        if (mysql_stmt_execute(stmt) != 0) fail_stmt(stmt, sql);
        Rows rows;
        if (!p->result.fetch_all(stmt, rows)) fail_stmt(stmt, sql);
        (void)mysql_stmt_free_result(stmt);
        return rows;
    }

    bool ping() noexcept override {
        if (is_broken()) return false;
        if (mysql_ping(conn_.get()) == 0) return true;
        if (mariadb_error_kind(mysql_errno(conn_.get()), false) == ErrorKind::connection_lost) broken_ = true;
        return false;
    }

    void reset() override {
        check_usable("ROLLBACK");
        if (in_transaction()) execute("ROLLBACK");
        if (settings_->reset_connection) {
            forget_statements();
            if (mysql_reset_connection(conn_.get()) != 0) fail_conn("COM_RESET_CONNECTION");
            try {
                apply_session(conn_.get(), *settings_);
            } catch (const Error& e) {
                fail(std::string("restoring the session after COM_RESET_CONNECTION: ") + e.what(), cr_server_lost);
            }
        }
        if (!settings_->reset_query.empty()) execute(settings_->reset_query);
    }

    void interrupt() noexcept override {
        try {
            MysqlPtr side = open_connection(*settings_, Clock::now() + std::chrono::seconds(5));
            const std::string kill = "KILL QUERY " + std::to_string(thread_id_);
            (void)mysql_real_query(side.get(), kill.data(), kill.size());
        } catch (...) {  // NOLINT(bugprone-empty-catch): interrupting is best effort, as PQcancel is
        }
    }

    [[nodiscard]] bool is_broken() const noexcept override { return broken_; }

    [[nodiscard]] bool in_transaction() const noexcept override {
        unsigned status = 0;
        if (mariadb_get_infov(conn_.get(), MARIADB_CONNECTION_SERVER_STATUS, &status) != 0) return false;
        return (status & SERVER_STATUS_IN_TRANS) != 0;
    }

    [[nodiscard]] bool needs_reset() const noexcept override {
        return settings_->reset_connection || !settings_->reset_query.empty() || in_transaction();
    }

private:
    /// The driver's one failure path: classifies the error, remembers a broken
    /// connection, and throws the QueryError.
    [[noreturn]] void fail(const std::string& message, unsigned code) {
        const bool rule = std::find(settings_->broken_errors.begin(), settings_->broken_errors.end(), code) !=
                          settings_->broken_errors.end();
        const ErrorKind kind = mariadb_error_kind(code, rule);
        const bool broken = rule || kind == ErrorKind::connection_lost;
        if (broken) broken_ = true;
        if (!broken && ends_transaction(kind) && in_transaction()) refresh_status();
        throw QueryError(message, std::to_string(code), static_cast<int>(code), broken, kind);
    }

    /// Errors after which the server may have rolled the whole transaction back: a deadlock
    /// always, a lock wait timeout with innodb_rollback_on_timeout, 1020 under snapshot isolation.
    static bool ends_transaction(ErrorKind kind) noexcept {
        return kind == ErrorKind::deadlock || kind == ErrorKind::lock_timeout ||
               kind == ErrorKind::serialization_failure;
    }

    /// An error packet carries no server status, so after one the client still says "in a
    /// transaction" though the server may have rolled it back: one empty statement brings the
    /// status up to date (its failure is left to the next statement to find).
    void refresh_status() noexcept {
        constexpr std::string_view nothing = "DO 0";
        (void)mysql_real_query(conn_.get(), nothing.data(), nothing.size());
    }

    [[noreturn]] void fail_with(unsigned code, const char* text, std::string_view sql) {
        std::string message = settings_->scrub(text != nullptr && *text != '\0' ? text : "unknown error");
        if (code == 1969 && settings_->statement_timeout) {
            message = "statement stopped by the server after statement_timeout=" + settings_->statement_timeout_text +
                      " (max_statement_time)";
        }
        fail(message + " (" + std::to_string(code) + ") in: " + sql_excerpt(sql), code);
    }

    [[noreturn]] void fail_conn(std::string_view sql) {
        fail_with(mysql_errno(conn_.get()), mysql_error(conn_.get()), sql);
    }

    [[noreturn]] void fail_stmt(MYSQL_STMT* stmt, std::string_view sql) {
        // A fetch that fails on the server's error (KILL QUERY, max_statement_time during
        // SELECT SLEEP(...)) leaves it on the connection, not the statement (Connector/C 3.3).
        if (mysql_stmt_errno(stmt) == 0) fail_conn(sql);
        fail_with(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), sql);
    }

    void check_usable(std::string_view sql) {
        if (!broken_) return;
        fail("the connection to " + settings_->redacted +
                 " is broken (the server closed it or it failed earlier); not running: " + sql_excerpt(sql),
             2006);
    }

    Prepared prepare(std::string_view sql) {
        StmtPtr stmt(mysql_stmt_init(conn_.get()));
        if (!stmt) fail("out of memory preparing: " + sql_excerpt(sql), 2008);
        if (mysql_stmt_prepare(stmt.get(), sql.data(), sql.size()) != 0) fail_stmt(stmt.get(), sql);
        const auto params = static_cast<unsigned>(mysql_stmt_param_count(stmt.get()));
        ResultBuffers result(stmt.get());
        return Prepared{std::move(stmt), params, std::move(result)};
    }

    /// The cached statement for `sql`, preparing it first if needed; nullptr when the
    /// cache is full (the caller prepares a one-off).
    Prepared* prepared(std::string_view sql) {
        // Workloads usually repeat one statement: compare with the last one before hashing.
        if (last_ != nullptr && last_->first == sql) return &last_->second;
        if (auto it = statements_.find(sql); it != statements_.end()) {
            last_ = &*it;
            return &it->second;
        }
        if (statements_.size() >= max_cached_statements) return nullptr;
        auto [it, inserted] = statements_.emplace(std::string(sql), prepare(sql));
        (void)inserted;
        last_ = &*it;
        return &it->second;
    }

    void forget_statements() {
        last_ = nullptr;
        statements_.clear();
    }

    std::shared_ptr<const MariaSettings> settings_;
    MysqlPtr conn_;
    unsigned long thread_id_;  ///< the server's id of this session (for KILL QUERY); set at connect
    std::unordered_map<std::string, Prepared, StringHash, std::equal_to<>> statements_;
    std::pair<const std::string, Prepared>* last_ = nullptr;  ///< the entry used last
    bool broken_ = false;
};

}  // namespace

std::unique_ptr<Connection> make_maria_connection(std::shared_ptr<const MariaSettings> settings, MysqlPtr conn) {
    return std::make_unique<MariaConnection>(std::move(settings), std::move(conn));
}

}  // namespace poolbench::internal::mariadb
