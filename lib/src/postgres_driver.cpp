// postgres_driver.cpp — the PostgreSQL backend (libpq).
//
// URLs: postgresql://user:pass@host:port/db?k=v (also postgres://). Query parameters are
// libpq's own (sslmode, connect_timeout, application_name, options, keepalives_idle, ...)
// plus three of poolbench's, which are taken out before libpq sees the URL (libpq rejects
// names it does not know):
//   statement_timeout=DURATION  (250ms, 1.5s, 2min, 1h: poolbench/internal/duration.hpp; a bare
//                               number is milliseconds; 0 = off; at most 30 days)
//       a client-side limit per statement: when it passes, the statement is cancelled
//       (PQcancel) and QueryError 57014 is thrown; the connection stays usable.
//   reset_query=SQL             run by reset() after any rollback (e.g. DISCARD ALL).
//   broken_sqlstates=LIST       which errors mean the connection is unusable: SQLSTATE
//                               classes and codes, default 08,57P01,57P02,57P03,25006.
// Unknown names are a ConfigError when the driver is made (checked against
// PQconndefaults), so a typo does not surface only at the first connect.
//
// libpq input: keyword/value arrays with expand_dbname, in this order:
//   fallback_application_name=poolbench, keepalives=1, dbname=<URL without its query>,
//   then the URL's libpq parameters.
// Later keywords override earlier ones, so anything in the URL wins over our defaults;
// fallback_application_name also yields to PGAPPNAME, as libpq intends.
//
// Connecting is asynchronous (PQconnectStartParams + PQconnectPoll, waiting in poll()),
// so the deadline given to connect() holds whatever the server does once TCP is up; the
// URL's connect_timeout (seconds), when given, shortens it. Host name resolution happens
// inside libpq's first poll step and is not interruptible (it is bounded by the resolver).
//
// Statements also run asynchronously (PQsend* + poll on the socket) so statement_timeout
// and interrupt() can cancel them. query() prepares each distinct SQL text once per
// connection as pb_1, pb_2, ... (at most max_cached_statements; beyond that statements
// run unnamed); parameters go as text; results are converted by column type OID.
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
#include "driver_text.hpp"
#include "drivers_internal.hpp"
#include "error_kind.hpp"
#include "poolbench/error.hpp"
#include "poolbench/internal/duration.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace poolbench::internal {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ConnCloser {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;

struct CancelFreer {
    void operator()(PGcancel* c) const noexcept { PQfreeCancel(c); }
};
using CancelPtr = std::unique_ptr<PGcancel, CancelFreer>;

struct ResultClearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

struct ConninfoFreer {
    void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};
using ConninfoPtr = std::unique_ptr<PQconninfoOption, ConninfoFreer>;

constexpr std::size_t max_cached_statements = 256;
/// How long a cancelled statement may take to stop before the connection is given up.
constexpr milliseconds cancel_grace{5'000};
/// ping() waits this long (or statement_timeout, when shorter) for the server.
constexpr milliseconds ping_timeout{5'000};
/// Passwords shorter than this are not scrubbed from messages character runs: doing so
/// would mangle ordinary words, and such a password is guessable anyway.
constexpr std::size_t min_scrubbed_password = 3;

// Type OIDs from pg_type.h (stable across server versions).
constexpr Oid bool_oid = 16;
constexpr Oid int8_oid = 20;
constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid oid_oid = 26;
constexpr Oid float4_oid = 700;
constexpr Oid float8_oid = 701;
constexpr Oid numeric_oid = 1700;

/// libpq messages span lines ("...failed: FATAL:  x\n\tHINT..."); make them one line.
std::string one_line(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool space = false;
    for (const char c : s) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out.push_back(' ');
        space = false;
        out.push_back(c);
    }
    return out;
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
    if (what.empty()) return;
    for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size())) {
        s.replace(pos, what.size(), with);
    }
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

/// The quoted text after `prefix` in `s` (prefix ends with the opening quote), or nullopt.
std::optional<std::string> quoted_after(std::string_view s, std::string_view prefix) {
    const std::size_t at = s.find(prefix);
    if (at == std::string_view::npos) return std::nullopt;
    const std::size_t start = at + prefix.size();
    const std::size_t end = s.find('"', start);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(s.substr(start, end - start));
}

/// Whole milliseconds from `from` to `to`, rounded to nearest (0 when `to` is earlier).
long long ms_between(Clock::time_point from, Clock::time_point to) {
    if (to <= from) return 0;
    return (std::chrono::duration_cast<std::chrono::microseconds>(to - from).count() + 500) / 1000;
}

/// poll() timeout until `deadline`, rounded up so a wait never ends just short of it.
int poll_timeout(Clock::time_point deadline) {
    const auto now = Clock::now();
    if (deadline <= now) return 0;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    return static_cast<int>(std::min<long long>((us + 999) / 1000, INT_MAX));
}

/// Waits until `fd` is ready for `events` or `deadline` (nullopt: no limit). Returns
/// 1 ready, 0 timed out, -1 error (errno set). Restarts after signals.
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

void ignore_notice(void* /*arg*/, const char* /*message*/) noexcept {}

/// libpq checks these values only when connecting, which would make a typo in the URL
/// look like an unusable database (exit 3) rather than a bad URL (exit 2): check them
/// when the driver is made. One line naming the parameter and the accepted values.
void check_libpq_value(const std::string& name, const std::string& value, const std::string& redacted) {
    struct Choice {
        std::string_view name;
        std::string_view values;  // space-separated
    };
    static constexpr std::array<Choice, 4> choices{{
        {"sslmode", "disable allow prefer require verify-ca verify-full"},
        {"gssencmode", "disable prefer require"},
        {"channel_binding", "disable prefer require"},
        {"target_session_attrs", "any read-write read-only primary standby prefer-standby"},
    }};
    for (const auto& c : choices) {
        if (name != c.name) continue;
        if (one_of(value, c.values)) return;
        throw ConfigError("invalid " + name + " '" + value + "' in PostgreSQL URL '" + redacted + "': use one of " +
                          comma_list(c.values));
    }
    static constexpr std::array<std::string_view, 6> integers{
        "connect_timeout", "port", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"};
    if (std::find(integers.begin(), integers.end(), name) == integers.end()) return;
    // port may list one port per host: 5432,5433.
    std::string_view rest = value;
    bool ok = !rest.empty();
    while (ok && !rest.empty()) {
        const auto comma = name == "port" ? rest.find(',') : std::string_view::npos;
        const std::string_view item = rest.substr(0, comma);
        long long n = -1;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
        ok = !item.empty() && ec == std::errc() && ptr == item.data() + item.size() && n >= 0 &&
             (name != "port" || (n >= 1 && n <= 65535));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    if (!ok) {
        throw ConfigError("invalid " + name + " '" + value + "' in PostgreSQL URL '" + redacted + "': " +
                          (name == "port" ? "use a port number from 1 to 65535"
                                          : "use a whole number (connect_timeout and keepalives_* are seconds)"));
    }
}

/// The default broken rule: connection exceptions (class 08), the server shutting down or
/// the backend terminated (57P01-57P03), and 25006 (read-only transaction): a pool that
/// writes and finds itself on a read-only standby after a failover must reconnect (to the
/// new primary) rather than fail every write. broken_sqlstates=... in the URL replaces it.
constexpr std::string_view default_broken_sqlstates = "08,57P01,57P02,57P03,25006";

/// `code` matches an entry of `rule`: a 2-character class or a 5-character SQLSTATE.
bool matches_sqlstate(std::string_view code, const std::vector<std::string>& rule) noexcept {
    for (const auto& r : rule) {
        if (r.size() == 2 ? code.substr(0, 2) == r : code == r) return true;
    }
    return false;
}

std::vector<std::string> parse_sqlstate_rule(std::string_view text, const std::string& redacted) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        const std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        const bool ok = (item.size() == 2 || item.size() == 5) &&
                        std::all_of(item.begin(), item.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
        if (!ok) {
            throw ConfigError("invalid broken_sqlstates entry '" + std::string(item) + "' in PostgreSQL URL '" + redacted +
                              "': use a comma-separated list of SQLSTATE classes (08) and codes (57P01)");
        }
        out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

/// Everything a driver and its connections share; immutable after construction.
struct PgSettings {
    std::string redacted;
    std::vector<std::string> keywords;
    std::vector<std::string> values;
    std::vector<std::string> secrets;  ///< passwords to scrub from libpq messages
    std::optional<milliseconds> statement_timeout;
    std::string statement_timeout_text;
    std::optional<milliseconds> connect_timeout;
    std::string reset_query;
    bool reset_query_discards = false;  ///< the reset query deallocates prepared statements
    std::vector<std::string> broken_sqlstates;  ///< which SQLSTATEs mean "connection unusable"

    /// Removes every password from `message`.
    [[nodiscard]] std::string scrub(std::string message) const {
        for (const auto& s : secrets) {
            if (s.size() >= min_scrubbed_password) replace_all(message, s, "***");
        }
        return message;
    }
};

/// The statement text for a libpq call (null-terminated).
std::string c_string(std::string_view sql) { return std::string(sql); }

std::string format_value(const Value& v, bool& is_null) {
    is_null = false;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) {
        if (std::isnan(*d)) return "NaN";
        if (std::isinf(*d)) return *d > 0 ? "Infinity" : "-Infinity";
        char buf[64];
        const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, *d);
        return ec == std::errc() ? std::string(buf, ptr) : std::to_string(*d);
    }
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    is_null = true;
    return {};
}

Value convert(const PGresult* res, int row, int col) {
    if (PQgetisnull(res, row, col) != 0) return std::monostate{};
    const char* text = PQgetvalue(res, row, col);
    const auto length = static_cast<std::size_t>(PQgetlength(res, row, col));
    const char* end = text + length;
    switch (PQftype(res, col)) {
        case int2_oid:
        case int4_oid:
        case int8_oid:
        case oid_oid: {
            std::int64_t n = 0;
            const auto [ptr, ec] = std::from_chars(text, end, n);
            if (ec == std::errc() && ptr == end) return n;
            break;
        }
        case float4_oid:
        case float8_oid:
        case numeric_oid: {
            double d = 0;
            const auto [ptr, ec] = std::from_chars(text, end, d);
            if (ec == std::errc() && ptr == end) return d;
            break;
        }
        case bool_oid: return std::int64_t{length > 0 && text[0] == 't' ? 1 : 0};
        default: break;
    }
    return std::string(text, length);
}

class PgConnection final : public Connection {
public:
    PgConnection(std::shared_ptr<const PgSettings> settings, ConnPtr conn, CancelPtr cancel)
        : settings_(std::move(settings)), conn_(std::move(conn)), cancel_(std::move(cancel)) {}
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
    bool broken_ = false;
};

/// The URL without its query string. Like libpq, credentials end at the first '@'
/// before any '/', so a '?' inside a password does not start the query.
std::string base_url(std::string_view conninfo) {
    const std::size_t scheme_end = conninfo.find("://");
    if (scheme_end == std::string_view::npos) return std::string(conninfo);
    std::size_t p = scheme_end + 3;
    std::size_t q = p;
    while (q < conninfo.size() && conninfo[q] != '@' && conninfo[q] != '/') ++q;
    if (q < conninfo.size() && conninfo[q] == '@') p = q + 1;
    const std::size_t query = conninfo.find('?', p);
    return std::string(conninfo.substr(0, query));
}

/// The password as written in the URL (still %-encoded), "" when it has none.
std::string raw_password(std::string_view conninfo) {
    const std::size_t scheme_end = conninfo.find("://");
    if (scheme_end == std::string_view::npos) return {};
    const std::size_t p = scheme_end + 3;
    std::size_t q = p;
    while (q < conninfo.size() && conninfo[q] != '@' && conninfo[q] != '/') ++q;
    if (q >= conninfo.size() || conninfo[q] != '@') return {};
    const std::string_view userinfo = conninfo.substr(p, q - p);
    const std::size_t colon = userinfo.find(':');
    return colon == std::string_view::npos ? std::string() : std::string(userinfo.substr(colon + 1));
}

/// The keywords libpq accepts.
std::set<std::string, std::less<>> libpq_keywords() {
    std::set<std::string, std::less<>> names;
    const ConninfoPtr defaults(PQconndefaults());
    if (!defaults) return names;
    for (const PQconninfoOption* o = defaults.get(); o->keyword != nullptr; ++o) names.emplace(o->keyword);
    return names;
}

class PgDriver final : public Driver {
public:
    explicit PgDriver(const DbUrl& url) {
        if (url.backend != Backend::postgresql) {
            throw ConfigError("'" + url.redacted + "' is not a PostgreSQL URL (postgresql://user@host:port/db)");
        }
        auto s = std::make_shared<PgSettings>();
        s->redacted = url.redacted;
        const std::string base = base_url(url.conninfo);

        // Validate the URL itself the way libpq will read it, and learn its password.
        char* err = nullptr;
        const ConninfoPtr parsed(PQconninfoParse(base.c_str(), &err));
        if (!parsed) {
            std::string why = err != nullptr ? one_line(err) : "libpq cannot parse it";
            PQfreemem(err);
            // libpq quotes the token it cannot read, which may be the password.
            if (const std::string pw = raw_password(base); !pw.empty()) replace_all(why, "\"" + pw + "\"", "\"***\"");
            throw ConfigError("invalid PostgreSQL URL '" + url.redacted + "': " + why);
        }
        for (const PQconninfoOption* o = parsed.get(); o->keyword != nullptr; ++o) {
            if (o->val != nullptr && std::string_view(o->keyword) == "password") s->secrets.emplace_back(o->val);
        }

        s->broken_sqlstates = parse_sqlstate_rule(default_broken_sqlstates, url.redacted);
        s->keywords = {"fallback_application_name", "keepalives", "dbname"};
        s->values = {"poolbench", "1", base};
        const auto known = libpq_keywords();
        for (const auto& [name, value] : url.params) {
            if (name == "statement_timeout") {
                // The library's one grammar; a bare number is milliseconds, as PostgreSQL reads it.
                milliseconds d{0};
                if (!read_duration(value, d, {.allow_zero = true, .bare_number_is_ms = true}).empty()) {
                    throw ConfigError("invalid statement_timeout '" + value + "' in PostgreSQL URL '" + url.redacted +
                                      "': use a duration such as 250ms, 5s, 2m or 1h (0 turns it off)");
                }
                s->statement_timeout = d;
                s->statement_timeout_text = value;
                if (d.count() == 0) s->statement_timeout.reset();
                continue;
            }
            if (name == "broken_sqlstates") {
                s->broken_sqlstates = parse_sqlstate_rule(value, url.redacted);
                continue;
            }
            if (name == "reset_query") {
                s->reset_query = value;
                const std::string l = lower(value);
                s->reset_query_discards = contains(l, "discard") || contains(l, "deallocate");
                continue;
            }
            if (!known.empty() && known.find(name) == known.end()) {
                throw ConfigError("unknown parameter '" + name + "' in PostgreSQL URL '" + url.redacted +
                                  "': libpq does not know it (poolbench adds statement_timeout=DURATION and "
                                  "reset_query=SQL; libpq's include sslmode, connect_timeout, application_name, "
                                  "options)");
            }
            if (name == "password") s->secrets.push_back(value);
            check_libpq_value(name, value, url.redacted);
            if (name == "connect_timeout") {
                // libpq counts whole seconds and ignores it in asynchronous connects: we apply it.
                int seconds = 0;
                const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
                if (ec == std::errc() && ptr == value.data() + value.size() && seconds > 0) {
                    s->connect_timeout = milliseconds(std::max(seconds, 2) * 1000LL);  // libpq's minimum is 2 s
                }
            }
            s->keywords.push_back(name);
            s->values.push_back(value);
        }
        settings_ = std::move(s);
    }

    std::unique_ptr<Connection> connect(Clock::time_point deadline) override {
        const PgSettings& s = *settings_;
        const auto start = Clock::now();
        auto limit = deadline;
        const bool by_connect_timeout = s.connect_timeout && start + *s.connect_timeout < deadline;
        if (by_connect_timeout) limit = start + *s.connect_timeout;

        std::vector<const char*> keys;
        std::vector<const char*> vals;
        keys.reserve(s.keywords.size() + 1);
        vals.reserve(s.values.size() + 1);
        for (std::size_t i = 0; i < s.keywords.size(); ++i) {
            keys.push_back(s.keywords[i].c_str());
            vals.push_back(s.values[i].c_str());
        }
        keys.push_back(nullptr);
        vals.push_back(nullptr);

        ConnPtr conn(PQconnectStartParams(keys.data(), vals.data(), 1));
        if (!conn) throw ConnectError("cannot connect to " + s.redacted + ": libpq is out of memory");
        // libpq prints NOTICE and WARNING messages on stderr by default; a library must not.
        (void)PQsetNoticeProcessor(conn.get(), ignore_notice, nullptr);
        if (PQstatus(conn.get()) == CONNECTION_BAD) fail(conn.get());

        PostgresPollingStatusType status = PGRES_POLLING_WRITING;  // libpq's documented start
        while (status != PGRES_POLLING_OK) {
            if (status == PGRES_POLLING_FAILED) fail(conn.get());
            if (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING) {
                const int fd = PQsocket(conn.get());
                if (fd < 0) fail(conn.get());
                const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
                const int r = Clock::now() >= limit ? 0 : wait_socket(fd, events, limit);
                if (r == 0) {
                    std::string message = "connection to " + s.redacted + " timed out after " +
                                          std::to_string(ms_between(start, limit)) + " ms";
                    if (by_connect_timeout) message += " (connect_timeout)";
                    throw ConnectError(message);
                }
                if (r < 0) fail(conn.get());
            }
            status = PQconnectPoll(conn.get());
        }
        CancelPtr cancel(PQgetCancel(conn.get()));
        if (!cancel) throw ConnectError("cannot connect to " + s.redacted + ": libpq could not make a cancel handle");
        return std::make_unique<PgConnection>(settings_, std::move(conn), std::move(cancel));
    }

    [[nodiscard]] Backend backend() const noexcept override { return Backend::postgresql; }
    [[nodiscard]] std::string describe() const override { return settings_->redacted; }

    /// A session whose transactions are read-only (one more round trip after connect()).
    std::unique_ptr<Connection> connect_read_only(Clock::time_point deadline) override {
        auto c = connect(deadline);
        c->execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
        return c;
    }

    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override {
        PgDiagnoseSetup setup;
        setup.client_statement_timeout = settings_->statement_timeout.has_value();
        return postgres_diagnose(*this, setup, options);
    }

private:
    /// Throws ConnectError: one line that names the URL (redacted), says what went wrong
    /// in words that tell the cases apart, and never contains the password.
    [[noreturn]] void fail(PGconn* conn) const {
        std::string raw = PQerrorMessage(conn);
        std::vector<std::string> secrets = settings_->secrets;
        if (const char* pw = PQpass(conn); pw != nullptr && *pw != '\0') secrets.emplace_back(pw);
        for (const auto& secret : secrets) {
            if (secret.size() >= min_scrubbed_password) replace_all(raw, secret, "***");
        }
        throw ConnectError("cannot connect to " + settings_->redacted + ": " + explain(raw, conn));
    }

    static std::string explain(const std::string& raw, PGconn* conn) {
        if (auto user = quoted_after(raw, "password authentication failed for user \"")) {
            return "password authentication failed for user \"" + *user + "\" (check the password in the URL)";
        }
        if (auto db = quoted_after(raw, "database \""); db && contains(raw, "does not exist")) {
            return "database \"" + *db + "\" does not exist";
        }
        if (auto role = quoted_after(raw, "role \""); role && contains(raw, "does not exist")) {
            return "role \"" + *role + "\" does not exist";
        }
        if (contains(raw, "Connection refused")) {
            std::string where;
            if (auto host = quoted_after(raw, "server at \"")) {
                where = *host;
                const std::size_t port_at = raw.find(", port ");
                if (port_at != std::string::npos) {
                    std::size_t e = port_at + 7;
                    while (e < raw.size() && raw[e] >= '0' && raw[e] <= '9') ++e;
                    where += ":" + raw.substr(port_at + 7, e - port_at - 7);
                }
            } else {
                const char* h = PQhost(conn);
                const char* port = PQport(conn);
                where = std::string(h != nullptr ? h : "?") + ":" + (port != nullptr ? port : "?");
            }
            return "connection refused: is PostgreSQL running on " + where + "?";
        }
        if (auto host = quoted_after(raw, "could not translate host name \"")) {
            return "could not resolve host \"" + *host + "\"";
        }
        if (contains(raw, "no password supplied")) {
            const char* user = PQuser(conn);
            return "the server wants a password for user \"" + std::string(user != nullptr ? user : "") +
                   "\" and the URL gives none";
        }
        // Anything else: libpq's text, on one line, without the "FATAL:" decoration.
        std::string text = one_line(raw);
        replace_all(text, "FATAL: ", "");
        replace_all(text, "ERROR: ", "");
        return text.empty() ? "unknown libpq failure" : text;
    }

    std::shared_ptr<const PgSettings> settings_;
};

}  // namespace

std::shared_ptr<Driver> make_postgres_driver(const DbUrl& url) { return std::make_shared<PgDriver>(url); }

}  // namespace poolbench::internal
