// pg_connection.cpp — one PostgreSQL connection (libpq), made by PgDriver::connect()
// (postgres_driver.cpp).
//
// Statements also run asynchronously (PQsend* + poll on the socket) so statement_timeout
// and interrupt() can cancel them. query() prepares each distinct SQL text once per
// connection as pb_1, pb_2, ... (at most max_cached_statements; beyond that statements
// run unnamed); parameters go as text; results are converted by column type OID.
// A connection made unnamed (prepare=off, or prepare=auto in front of a pooler: the
// driver decides, postgres_driver.cpp) runs every query() as PQsendQueryParams: still the
// extended protocol with parameters (Parse/Bind/Execute of the unnamed statement, then
// Sync), which PgBouncer's transaction pooling passes through, as nothing outlives the
// call. A named statement that turns out missing (26000) or taken (42P05) says in its
// message what that means behind a pooler.
//
// Broken: the connection status is bad, or a statement failed with an SQLSTATE in the
// broken rule (default class 08, 57P01/57P02/57P03, 25006). A broken connection stays broken; the pool then closes it. Note that
// the server reports a wrong parameter count as 08P01 (protocol violation), so that
// mistake also costs the connection.
//
// Every QueryError leaves through PgConnection::fail, which classifies it with
// postgres_error_kind (error_kind.cpp): the SQLSTATE's own kind when it has one (25006
// stays read_only though the default rule breaks the connection), else connection_lost
// when broken, else other.
#include "pg_connection.hpp"

#include "driver_text.hpp"
#include "error_kind.hpp"
#include "pg_values.hpp"
#include "poolbench/error.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace poolbench::internal::pg {

namespace {

using std::chrono::milliseconds;

struct ResultClearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

constexpr std::size_t max_cached_statements = 256;
/// How long a cancelled statement may take to stop before the connection is given up.
constexpr milliseconds cancel_grace{5'000};
/// ping() waits this long (or statement_timeout, when shorter) for the server.
constexpr milliseconds ping_timeout{5'000};

/// poll() timeout until `deadline`, rounded up so a wait never ends just short of it.
int poll_timeout(Clock::time_point deadline) {
    const auto now = Clock::now();
    if (deadline <= now) return 0;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    return static_cast<int>(std::min<long long>((us + 999) / 1000, INT_MAX));
}

class PgConnection final : public Connection {
public:
    PgConnection(std::shared_ptr<const PgSettings> settings, ConnPtr conn, CancelPtr cancel, bool named)
        : settings_(std::move(settings)), conn_(std::move(conn)), cancel_(std::move(cancel)), named_(named) {}
    using Connection::query;

    void execute(std::string_view sql) override {
        check_usable(sql);
        const std::string text = c_string(sql);
        if (PQsendQuery(conn_.get(), text.c_str()) == 0) fail_send(sql);
        (void)collect(sql, settings_->statement_timeout);
    }

    Rows query(std::string_view sql, std::span<const Value> params) override {
        check_usable(sql);
        if (params.size() > 65535) {
            fail("a statement takes at most 65535 parameters, " + std::to_string(params.size()) +
                     " were given, in: " + sql_excerpt(sql),
                 "54023", false);
        }
        std::vector<std::string> storage(params.size());
        std::vector<const char*> values(params.size(), nullptr);
        for (std::size_t i = 0; i < params.size(); ++i) {
            bool is_null = false;
            storage[i] = format_value(params[i], is_null);
            if (!is_null) values[i] = storage[i].c_str();
        }
        const int count = static_cast<int>(params.size());
        if (!named_) {
            const std::string text = c_string(sql);
            if (PQsendQueryParams(conn_.get(), text.c_str(), count, nullptr, values.data(), nullptr, nullptr, 0) == 0) {
                fail_send(sql);
            }
            return to_rows(collect(sql, settings_->statement_timeout));
        }
        try {
            return query_named(sql, count, values);
        } catch (const QueryError& e) {
            // Our own pb_N missing (26000) or already there (42P05) once more: say what that
            // means; a statement of the caller's (PREPARE x) keeps its message.
            const std::string& code = e.code();
            const std::string message = e.what();
            if ((code != "26000" && code != "42P05") || message.find("\"pb_") == std::string::npos) throw;
            throw QueryError(with_named_hint(message, code), code, e.native_code(), e.broken(), e.kind());
        }
    }

    bool ping() noexcept override {
        if (is_broken()) return false;
        try {
            if (PQsendQuery(conn_.get(), "") == 0) {
                if (PQstatus(conn_.get()) == CONNECTION_BAD) broken_ = true;
                return false;
            }
            milliseconds limit = ping_timeout;
            if (settings_->statement_timeout && *settings_->statement_timeout < limit) {
                limit = *settings_->statement_timeout;
            }
            (void)collect("", limit, /*give_up_on_timeout=*/true);
            return true;
        } catch (...) {
            return false;
        }
    }

    void reset() override {
        check_usable("ROLLBACK");
        const PGTransactionStatusType status = PQtransactionStatus(conn_.get());
        if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) execute("ROLLBACK");
        if (!settings_->reset_query.empty()) {
            execute(settings_->reset_query);
            if (settings_->reset_query_discards) forget_statements();
        }
    }

    void interrupt() noexcept override { send_cancel(); }

    [[nodiscard]] bool is_broken() const noexcept override {
        return broken_ || PQstatus(conn_.get()) == CONNECTION_BAD;
    }

    [[nodiscard]] bool in_transaction() const noexcept override {
        return PQtransactionStatus(conn_.get()) != PQTRANS_IDLE;
    }

    [[nodiscard]] bool needs_reset() const noexcept override {
        return !settings_->reset_query.empty() || in_transaction();
    }

private:
    /// query() with a named statement per SQL text (pb_N, prepared on first use).
    Rows query_named(std::string_view sql, int count, const std::vector<const char*>& values) {
        // A cached statement can vanish under us (DISCARD ALL, DEALLOCATE ALL run by the
        // caller): SQLSTATE 26000. Then forget it, and prepare again once when that is
        // safe (outside a transaction, which the error has not aborted).
        for (int attempt = 0;; ++attempt) {
            const std::string* name = prepared(sql);
            try {
                int sent = 0;
                if (name != nullptr) {
                    sent = PQsendQueryPrepared(conn_.get(), name->c_str(), count, values.data(), nullptr, nullptr, 0);
                } else {
                    const std::string text = c_string(sql);
                    sent = PQsendQueryParams(conn_.get(), text.c_str(), count, nullptr, values.data(), nullptr,
                                             nullptr, 0);
                }
                if (sent == 0) fail_send(sql);
                return to_rows(collect(sql, settings_->statement_timeout));
            } catch (const QueryError& e) {
                if (name == nullptr || e.code() != "26000") throw;
                forget_statements(sql);
                if (attempt > 0 || PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) throw;
            }
        }
    }

    /// `message` ("... (CODE) in: SQL") with what a missing or taken pb_N means, after the code.
    [[nodiscard]] std::string with_named_hint(std::string message, const std::string& code) const {
        const std::string why =
            settings_->prepare == PrepareMode::on
                ? "prepare=on: behind a pooler in transaction mode (PgBouncer) each transaction may run on another "
                  "server connection, where poolbench's named statement is missing or another client's: use "
                  "prepare=auto or prepare=off"
                : "poolbench's named statement is gone or another's: DEALLOCATE or DISCARD ran, or a pooler the "
                  "driver did not detect sits in front of the server (prepare=off runs statements unnamed)";
        const std::string tag = "(" + code + ")";
        if (const std::size_t at = message.find(tag); at != std::string::npos) {
            message.insert(at + tag.size() - 1, ": " + why);
        } else {
            message += " (" + why + ")";
        }
        return message;
    }

    void send_cancel() noexcept {
        char errbuf[256];
        (void)PQcancel(cancel_.get(), errbuf, static_cast<int>(sizeof errbuf));
    }

    /// The driver's one failure path: classifies the error, remembers a broken
    /// connection, and throws the QueryError.
    [[noreturn]] void fail(const std::string& message, std::string code, bool broken) {
        if (broken) broken_ = true;
        const ErrorKind kind = postgres_error_kind(code, broken);
        throw QueryError(message, std::move(code), 0, broken, kind);
    }

    void check_usable(std::string_view sql) {
        if (!is_broken()) return;
        fail("the connection to " + settings_->redacted +
                 " is broken (the server closed it or it failed earlier); not running: " + sql_excerpt(sql),
             "08003", true);
    }

    /// The name of the prepared statement for `sql`, preparing it first if needed;
    /// nullptr when the cache is full (the statement then runs unnamed).
    const std::string* prepared(std::string_view sql) {
        // Workloads usually repeat one statement: compare with the last one before hashing.
        if (last_ != nullptr && last_->first == sql) return &last_->second;
        if (auto it = statements_.find(sql); it != statements_.end()) {
            last_ = &*it;
            return &it->second;
        }
        if (statements_.size() >= max_cached_statements) return nullptr;
        std::string name = "pb_" + std::to_string(++statement_counter_);
        const std::string text = c_string(sql);
        if (PQsendPrepare(conn_.get(), name.c_str(), text.c_str(), 0, nullptr) == 0) fail_send(sql);
        (void)collect(sql, settings_->statement_timeout);
        auto [it, inserted] = statements_.emplace(text, std::move(name));
        (void)inserted;
        last_ = &*it;
        return &it->second;
    }

    /// Drops one cached statement (or all): the server no longer has it.
    void forget_statements(std::optional<std::string_view> sql = std::nullopt) {
        last_ = nullptr;
        if (!sql) {
            statements_.clear();
        } else if (auto it = statements_.find(*sql); it != statements_.end()) {
            statements_.erase(it);
        }
    }

    [[noreturn]] void fail_send(std::string_view sql) {
        // libpq could not send: the connection failed, or is in a state we never leave
        // it in. Either way it cannot be trusted with another statement.
        const bool bad = PQstatus(conn_.get()) == CONNECTION_BAD;
        fail("cannot send to " + settings_->redacted + ": " + settings_->scrub(one_line(PQerrorMessage(conn_.get()))) +
                 " in: " + sql_excerpt(sql),
             bad ? "08006" : "08000", true);
    }

    /// Waits for every result of the statement just sent. Throws QueryError for the first
    /// error; returns the last result otherwise. At `timeout` the statement is cancelled
    /// (or, with give_up_on_timeout, the connection is declared broken at once).
    ResultPtr collect(std::string_view sql, std::optional<milliseconds> timeout, bool give_up_on_timeout = false) {
        const auto start = Clock::now();
        std::optional<Clock::time_point> deadline;
        if (timeout && timeout->count() > 0) deadline = start + *timeout;
        bool cancelled = false;
        bool lost = false;
        ResultPtr first_error;
        ResultPtr last;
        // Read once before waiting, as pgbench does: on a loaded machine the server has
        // usually answered by the time the sender gets to run again (sending wakes the
        // backend, which often runs at once), and a recv that finds the reply saves a
        // poll() per statement. When nothing has arrived the recv costs one EAGAIN.
        bool read_ahead = true;
        while (true) {
            while (!lost && PQisBusy(conn_.get()) != 0) {
                if (read_ahead) {
                    read_ahead = false;
                    if (PQconsumeInput(conn_.get()) == 0) lost = true;
                    continue;
                }
                const int r = wait_socket(PQsocket(conn_.get()), POLLIN, deadline);
                if (r == 0) {
                    if (give_up_on_timeout || cancelled) {
                        // No answer even after the cancel: the server or network is gone
                        // as far as we can tell. The connection's state is unknown.
                        fail("no response from " + settings_->redacted + " within " +
                                 std::to_string(ms_between(start, Clock::now())) +
                                 " ms; connection abandoned, in: " + sql_excerpt(sql),
                             "57014", true);
                    }
                    send_cancel();
                    cancelled = true;
                    deadline = Clock::now() + cancel_grace;
                    continue;
                }
                if (r < 0) {
                    fail("cannot wait for " + settings_->redacted + ": poll() failed, in: " + sql_excerpt(sql),
                         "08006", true);
                }
                // On failure libpq has marked the connection bad; PQgetResult then returns
                // at once with whatever it had read (often the server's FATAL message).
                if (PQconsumeInput(conn_.get()) == 0) lost = true;
            }
            PGresult* raw = PQgetResult(conn_.get());
            if (raw == nullptr) break;
            ResultPtr res(raw);
            switch (PQresultStatus(res.get())) {
                case PGRES_FATAL_ERROR:
                case PGRES_BAD_RESPONSE:
                case PGRES_NONFATAL_ERROR:
                    if (!first_error) first_error = std::move(res);
                    break;
                case PGRES_COPY_IN:
                    // COPY needs a data stream the Connection interface has no way to give.
                    (void)PQputCopyEnd(conn_.get(), "COPY FROM STDIN is not supported by poolbench");
                    break;
                case PGRES_COPY_OUT: {
                    char* buf = nullptr;
                    while (PQgetCopyData(conn_.get(), &buf, 0) > 0) PQfreemem(buf);
                    break;
                }
                default: last = std::move(res); break;
            }
        }
        if (lost || PQstatus(conn_.get()) == CONNECTION_BAD) broken_ = true;
        if (first_error) throw_error(first_error.get(), sql, cancelled, start);
        if (broken_) {
            fail("lost the connection to " + settings_->redacted + ": " +
                     settings_->scrub(one_line(PQerrorMessage(conn_.get()))) + " in: " + sql_excerpt(sql),
                 "08006", true);
        }
        return last;
    }

    [[noreturn]] void throw_error(const PGresult* res, std::string_view sql, bool cancelled, Clock::time_point start) {
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const bool bad = PQstatus(conn_.get()) == CONNECTION_BAD;
        std::string code = state != nullptr ? state : (bad ? "08006" : "XX000");
        const bool broken = bad || matches_sqlstate(code, settings_->broken_sqlstates);
        std::string message;
        // Our own cancel (statement_timeout=) is named as such; the kind comes from the one classifier.
        if (cancelled && postgres_error_kind(code, broken) == ErrorKind::statement_timeout) {
            message = "statement cancelled after " + std::to_string(ms_between(start, Clock::now())) +
                      " ms (statement_timeout=" + settings_->statement_timeout_text + ")";
        } else if (const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) {
            message = settings_->scrub(one_line(primary));
        } else {
            message = settings_->scrub(one_line(PQresultErrorMessage(res)));
        }
        message += " (";
        message += code;
        message += ") in: ";
        message += sql_excerpt(sql);
        fail(message, std::move(code), broken);
    }

    static Rows to_rows(const ResultPtr& res) {
        Rows rows;
        if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) return rows;
        const int n = PQntuples(res.get());
        const int columns = PQnfields(res.get());
        rows.rows.reserve(static_cast<std::size_t>(n));
        for (int r = 0; r < n; ++r) {
            auto& row = rows.rows.emplace_back();
            row.reserve(static_cast<std::size_t>(columns));
            for (int c = 0; c < columns; ++c) row.push_back(convert(res.get(), r, c));
        }
        return rows;
    }

    std::shared_ptr<const PgSettings> settings_;
    ConnPtr conn_;
    CancelPtr cancel_;  ///< made at connect; PQcancel on it is thread-safe (interrupt())
    std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> statements_;  ///< SQL -> pb_N
    const std::pair<const std::string, std::string>* last_ = nullptr;  ///< the entry used last
    std::uint64_t statement_counter_ = 0;
    bool named_ = true;  ///< query() prepares pb_N; else every call runs unnamed
    bool broken_ = false;
};

}  // namespace

long long ms_between(Clock::time_point from, Clock::time_point to) {
    if (to <= from) return 0;
    return (std::chrono::duration_cast<std::chrono::microseconds>(to - from).count() + 500) / 1000;
}

int wait_socket(int fd, short events, std::optional<Clock::time_point> deadline) {
    while (true) {
        pollfd p{};
        p.fd = fd;
        p.events = events;
        const int timeout = deadline ? poll_timeout(*deadline) : -1;
        const int r = ::poll(&p, 1, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        return r > 0 ? 1 : 0;
    }
}

std::unique_ptr<Connection> make_pg_connection(std::shared_ptr<const PgSettings> settings, ConnPtr conn,
                                               CancelPtr cancel, bool named) {
    return std::make_unique<PgConnection>(std::move(settings), std::move(conn), std::move(cancel), named);
}

std::optional<TextResult> simple_rows(PGconn* conn, const char* sql, Clock::time_point deadline,
                                      const PgSettings& settings, std::string& error) {
    const auto start = Clock::now();
    const auto lost = [&](const std::string& what) -> ConnectError {
        return ConnectError("cannot connect to " + settings.redacted + ": " + what);
    };
    if (PQsendQuery(conn, sql) == 0) throw lost(settings.scrub(one_line(PQerrorMessage(conn))));
    ResultPtr last;
    while (true) {
        while (PQisBusy(conn) != 0) {
            const int r = wait_socket(PQsocket(conn), POLLIN, deadline);
            if (r == 0) {
                throw ConnectError("connection to " + settings.redacted + " timed out after " +
                                   std::to_string(ms_between(start, Clock::now())) + " ms (in: " + sql + ")");
            }
            if (r < 0 || PQconsumeInput(conn) == 0) throw lost(settings.scrub(one_line(PQerrorMessage(conn))));
        }
        PGresult* raw = PQgetResult(conn);
        if (raw == nullptr) break;
        ResultPtr res(raw);
        const ExecStatusType status = PQresultStatus(res.get());
        if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
            if (error.empty()) {
                const char* primary = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
                error = settings.scrub(one_line(primary != nullptr ? primary : PQresultErrorMessage(res.get())));
                if (error.empty()) error = "the statement failed";
            }
            continue;
        }
        last = std::move(res);
    }
    if (PQstatus(conn) == CONNECTION_BAD) throw lost(settings.scrub(one_line(PQerrorMessage(conn))));
    if (!error.empty()) return std::nullopt;
    TextResult out;
    if (!last || PQresultStatus(last.get()) != PGRES_TUPLES_OK) return out;
    for (int c = 0; c < PQnfields(last.get()); ++c) out.columns.emplace_back(PQfname(last.get(), c));
    for (int r = 0; r < PQntuples(last.get()); ++r) {
        auto& row = out.rows.emplace_back();
        for (int c = 0; c < PQnfields(last.get()); ++c) {
            row.emplace_back(PQgetisnull(last.get(), r, c) != 0 ? "" : PQgetvalue(last.get(), r, c));
        }
    }
    return out;
}

bool behind_pooler(PGconn* conn, Clock::time_point deadline, const PgSettings& settings) {
    std::string error;
    const auto r = simple_rows(conn, "SELECT pg_catalog.pg_backend_pid()", deadline, settings, error);
    if (!r || r->rows.size() != 1 || r->rows.front().size() != 1) return true;
    return r->rows.front().front() != std::to_string(PQbackendPID(conn));
}

}  // namespace poolbench::internal::pg
