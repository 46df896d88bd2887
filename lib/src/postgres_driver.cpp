// postgres_driver.cpp — the PostgreSQL backend (libpq).
//
// URLs: postgresql://user:pass@host:port/db?k=v (also postgres://). Query parameters are
// libpq's own (sslmode, connect_timeout, application_name, options, keepalives_idle, ...)
// plus four of poolbench's, which are taken out before libpq sees the URL (libpq rejects
// names it does not know):
//   statement_timeout=DURATION  (250ms, 1.5s, 2min, 1h: poolbench/internal/duration.hpp; a bare
//                               number is milliseconds; 0 = off; at most 30 days)
//       a client-side limit per statement: when it passes, the statement is cancelled
//       (PQcancel) and QueryError 57014 is thrown; the connection stays usable.
//   reset_query=SQL             run by reset() after any rollback (e.g. DISCARD ALL); also
//                               once on the driver's first connection, where a failure is a
//                               ConnectError naming it (reset_query_check.hpp).
//   broken_sqlstates=LIST       which errors mean the connection is unusable: SQLSTATE
//                               classes and codes, default 08,57P01,57P02,57P03,25006.
//   prepare=on|off|auto         how query() sends statements. on: each SQL text is prepared
//                               once per connection as a named statement (pb_1, ...) and
//                               reused. off: every call is parsed unnamed (PQsendQueryParams:
//                               still parameters over the extended protocol). auto (default):
//                               off when a pooler sits in front of the server, else on.
//       Why: PgBouncer in transaction (or statement) pooling mode gives each transaction
//       whichever server connection is free, and 1.18 (Debian 12's) does not track
//       prepared statements, so a named statement is missing on the next one (26000), or
//       another client's of the same name is there (42P05, or its statement runs instead).
//       How auto finds a pooler: on the driver's first connection, SELECT pg_backend_pid()
//       over the simple protocol is compared with the process id of the startup's
//       BackendKeyData (PQbackendPID): PostgreSQL sends its own, PgBouncer (and the like)
//       a random key of its own. One round trip, once per driver, made whatever prepare=
//       says; the answer holds for the driver's life (prepared_statements() and
//       behind_pooler() report it). A session-pooling PgBouncer is
//       found too and gets unnamed statements, which it would not need (prepare=on then).
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
// Statements, the broken rule and how QueryErrors are classified: pg_connection.cpp.
//
// The files of this backend, by job:
//   postgres_driver.cpp  PgDriver: reads the URL into PgSettings, connects, explains failures
//   pg_connection.cpp    PgConnection: statements, cancel, prepared-statement cache, the pooler probe
//   pg_pooler.cpp        diagnose's part about a pooler (PgBouncer's console)
//   pg_url_options.cpp   URL checks: libpq keyword values, base URL and password, broken_sqlstates
//   pg_values.cpp        Values to and from libpq's text format
//   pg_text.cpp          one-line messages, password scrubbing
//   postgres_diagnose.cpp  diagnose()
#include "driver_text.hpp"
#include "drivers_internal.hpp"
#include "pg_connection.hpp"
#include "pg_pooler.hpp"
#include "pg_text.hpp"
#include "pg_url_options.hpp"
#include "poolbench/error.hpp"
#include "poolbench/internal/duration.hpp"
#include "reset_query_check.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::internal {

namespace pg {
namespace {

using std::chrono::milliseconds;

void ignore_notice(void* /*arg*/, const char* /*message*/) noexcept {}

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
            if (name == "prepare") {
                s->prepare = parse_prepare_mode(value, url.redacted);
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
                                  "': libpq does not know it (poolbench adds statement_timeout=DURATION, "
                                  "reset_query=SQL, broken_sqlstates=LIST and prepare=on|off|auto; libpq's include "
                                  "sslmode, connect_timeout, application_name, options)");
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
        auto [conn, limit] = open(deadline);
        // Asked whatever prepare= says (once per driver): behind_pooler() reports it.
        const bool pooler = pooled(conn.get(), limit);
        const bool named = settings_->prepare == PrepareMode::on ||
                           (settings_->prepare == PrepareMode::automatic && !pooler);
        auto c = wrap(std::move(conn), named);
        reset_query_.check(*c, settings_->reset_query, settings_->redacted);
        return c;
    }

    [[nodiscard]] Backend backend() const noexcept override { return Backend::postgresql; }
    [[nodiscard]] std::string describe() const override { return settings_->redacted; }

    /// A session whose transactions are read-only (one more round trip after connect();
    /// another, once per driver, to learn whether a pooler is in front: see below).
    std::unique_ptr<Connection> connect_read_only(Clock::time_point deadline) override {
        auto [conn, limit] = open(deadline);
        const bool pooler = pooled(conn.get(), limit);
        const bool named = settings_->prepare == PrepareMode::on ||
                           (settings_->prepare == PrepareMode::automatic && !pooler);
        auto c = wrap(std::move(conn), named);
        // Behind a pooler the setting would stay on the server connection for whichever
        // client gets it next (PgBouncer resets nothing between transactions), making its
        // writes fail: the session is left as it is. What diagnose runs on it (catalog
        // SELECTs, SELECT 1) writes nothing.
        if (!pooler) c->execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
        return c;
    }

    [[nodiscard]] std::string prepared_statements() const override {
        switch (settings_->prepare) {
            case PrepareMode::on: return "named";
            case PrepareMode::off: return "unnamed";
            case PrepareMode::automatic: break;
        }
        const int known = pooler_.load(std::memory_order_acquire);
        return known == unknown ? std::string() : known == yes ? "unnamed" : "named";
    }

    [[nodiscard]] std::optional<bool> behind_pooler() const override {
        const int known = pooler_.load(std::memory_order_acquire);
        return known == unknown ? std::nullopt : std::optional<bool>(known == yes);
    }

    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override {
        PgDiagnoseSetup setup;
        setup.client_statement_timeout = settings_->statement_timeout.has_value();
        Diagnosis d = postgres_diagnose(*this, setup, options);  // its connect_read_only learned pooler_
        PoolerProbe probe;
        probe.pooled = pooler_.load(std::memory_order_acquire) == yes;
        probe.prepare = settings_->prepare;
        if (probe.pooled) {
            probe.open_console = [this, deadline = options.deadline] { return open(deadline, "pgbouncer").conn; };
        }
        diagnose_pooler(probe, *settings_, options.deadline, d);
        return d;
    }

private:
    static constexpr int unknown = 0, no = 1, yes = 2;

    struct Opened {
        ConnPtr conn;
        Clock::time_point limit;  ///< the connect deadline, or sooner by connect_timeout
    };

    /// A libpq connection, connected by `deadline` (or the URL's connect_timeout);
    /// `dbname` replaces the URL's database (PgBouncer's console: "pgbouncer").
    Opened open(Clock::time_point deadline, const char* dbname = nullptr) const {
        const PgSettings& s = *settings_;
        const auto start = Clock::now();
        auto limit = deadline;
        const bool by_connect_timeout = s.connect_timeout && start + *s.connect_timeout < deadline;
        if (by_connect_timeout) limit = start + *s.connect_timeout;

        std::vector<const char*> keys;
        std::vector<const char*> vals;
        keys.reserve(s.keywords.size() + 2);
        vals.reserve(s.values.size() + 2);
        for (std::size_t i = 0; i < s.keywords.size(); ++i) {
            keys.push_back(s.keywords[i].c_str());
            vals.push_back(s.values[i].c_str());
        }
        if (dbname != nullptr) {
            // Only the first dbname is read as a URL; a later one is a plain database name.
            keys.push_back("dbname");
            vals.push_back(dbname);
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
        return {std::move(conn), limit};
    }

    std::unique_ptr<Connection> wrap(ConnPtr conn, bool named) const {
        CancelPtr cancel(PQgetCancel(conn.get()));
        if (!cancel) throw ConnectError("cannot connect to " + settings_->redacted + ": libpq could not make a cancel handle");
        return make_pg_connection(settings_, std::move(conn), std::move(cancel), named);
    }

    /// Whether a pooler is in front of the server: asked on `conn` the first time (and by
    /// every connection that races the first), remembered for the driver's life.
    bool pooled(PGconn* conn, Clock::time_point limit) {
        const int known = pooler_.load(std::memory_order_acquire);
        if (known != unknown) return known == yes;
        const bool found = pg::behind_pooler(conn, limit, *settings_);
        pooler_.store(found ? yes : no, std::memory_order_release);
        return found;
    }

    /// Throws ConnectError: one line that names the URL (redacted), says what went wrong
    /// in words that tell the cases apart, and never contains the password.
    [[noreturn]] void fail(PGconn* conn) const {
        std::string raw = PQerrorMessage(conn);
        std::vector<std::string> secrets = settings_->secrets;
        if (const char* pw = PQpass(conn); pw != nullptr && *pw != '\0') secrets.emplace_back(pw);
        raw = scrub_secrets(std::move(raw), secrets);
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
    std::atomic<int> pooler_{unknown};  ///< unknown, no or yes: a pooler in front (pooled())
    ResetQueryCheck reset_query_;  ///< the URL's reset_query, tried until it has worked once
};

}  // namespace
}  // namespace pg

std::shared_ptr<Driver> make_postgres_driver(const DbUrl& url) { return std::make_shared<pg::PgDriver>(url); }

}  // namespace poolbench::internal
