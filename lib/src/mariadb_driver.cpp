// mariadb_driver.cpp — the MariaDB / MySQL backend (MariaDB Connector/C).
//
// URLs: mariadb://user:pass@host:port/db?k=v (also mysql://); the options are listed in
// mariadb_url_options.hpp and checked when the driver is made (ConfigError: exit 2).
//
// Connecting uses the non-blocking API (mysql_real_connect_start/_cont, waiting in poll()),
// so the deadline given to connect() holds whatever the server does; the URL's
// connect_timeout, when given, shortens it. A new session gets autocommit as the URL says
// and, with statement_timeout, the server's max_statement_time (MariaDB) or
// max_execution_time (MySQL, SELECTs only).
//
// A URL's reset_query runs once on the driver's first good connection, before that
// connection is handed out (reset_query_check.hpp): one the server refuses is a
// ConnectError naming reset_query, not every release closing its connection.
//
// Thread-safety: MariaDriver is shared by the pool's threads; its settings are immutable
// and its ResetQueryCheck is atomic.
//
// The files of this backend, by job:
//   mariadb_driver.cpp       MariaDriver; opening a connection and explaining why it failed
//   mariadb_connection.cpp   MariaConnection: statements, the statement cache, reset, KILL QUERY
//   mariadb_url_options.cpp  the URL's options
//   mariadb_values.cpp       Values to and from the binary protocol
//   mariadb_diagnose.cpp     diagnose() (and mariadb_diagnose_sessions.cpp: its sessions' checks)
#include "driver_text.hpp"
#include "drivers_internal.hpp"
#include "mariadb_connection.hpp"
#include "pg_connection.hpp"  // ms_between
#include "pg_text.hpp"        // contains
#include "poolbench/error.hpp"
#include "reset_query_check.hpp"

#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace poolbench::internal {

namespace mariadb {

namespace {

void library_init() {
    // mysql_init() would initialise the library lazily, but not thread-safely.
    static std::once_flag once;
    std::call_once(once, [] { (void)mysql_library_init(0, nullptr, nullptr); });
}

/// What is wrong with the URL's socket= path, when the path itself is the problem (it
/// does not exist, is no socket, may not be reached); none when it looks usable.
std::optional<std::string> socket_problem(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            return "the socket file " + path +
                   " does not exist: is MariaDB running, and is that its socket? (SHOW VARIABLES LIKE 'socket' "
                   "on the server says where it is)";
        }
        if (err == EACCES) return "permission denied reaching the socket file " + path + " (a directory on its path)";
        return std::nullopt;
    }
    if (!S_ISSOCK(st.st_mode)) return path + " is not a socket (socket= names the server's Unix socket file)";
    if (::access(path.c_str(), W_OK) != 0 && errno == EACCES) {
        return "permission denied on the socket file " + path + " (the client's user may not write to it)";
    }
    return std::nullopt;
}

/// One line: why the connection failed, in words that tell the cases apart.
std::string explain(unsigned code, const std::string& raw, const MariaSettings& s) {
    // With TLS requested (ssl_mode=preferred, the default), an error the server sends before
    // the handshake (1040 at max_connections, 1129 a blocked host) comes back as
    // CR_CONNECTION_ERROR with the server's number in the text: "... cannot be verified:
    // 1040 - Too many connections". Explained by that number.
    constexpr std::string_view wrapped = "cannot be verified: ";
    if (const auto at = raw.find(wrapped); code == CR_CONNECTION_ERROR && at != std::string::npos) {
        unsigned inner = 0;
        for (std::size_t i = at + wrapped.size(); i < raw.size() && raw[i] >= '0' && raw[i] <= '9' && inner < 100000; ++i) {
            inner = inner * 10 + static_cast<unsigned>(raw[i] - '0');
        }
        if (inner >= 1000 && inner < 2000) return explain(inner, raw, s);
    }
    switch (code) {
        case ER_ACCESS_DENIED_ERROR:
        case 1698:  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
            return "access denied for user \"" + s.user + "\" (check the user name and password in the URL)";
        case ER_DBACCESS_DENIED_ERROR:
            // The server does not tell a missing database from a forbidden one to such a user.
            return "user \"" + s.user + "\" may not use database \"" + s.database +
                   "\", or it does not exist (CREATE DATABASE, or GRANT ... ON " + s.database + ".* TO the user)";
        case ER_BAD_DB_ERROR: return "database \"" + s.database + "\" does not exist";
        case ER_CON_COUNT_ERROR:
            return "the server has too many connections (max_connections is reached): " + raw;
        case CR_CONN_HOST_ERROR:
        case CR_CONNECTION_ERROR:
            if (!s.socket.empty()) {
                if (auto why = socket_problem(s.socket)) return *why;
            }
            // "(111)" is ECONNREFUSED, "(2)" a socket path that does not exist.
            if (pg::contains(raw, "(111)") || pg::contains(raw, "refused") || pg::contains(raw, "(2)")) {
                return "connection refused: is MariaDB running on " + s.where() + "?";
            }
            return raw;
        case CR_UNKNOWN_HOST: return "could not resolve host \"" + s.host + "\"";
        default: return raw.empty() ? "unknown Connector/C failure" : raw;
    }
}

[[noreturn]] void fail(MYSQL* m, const MariaSettings& s) {
    const unsigned code = mysql_errno(m);
    throw ConnectError("cannot connect to " + s.redacted + ": " + explain(code, s.scrub(mysql_error(m)), s));
}

/// Waits for what the non-blocking API asked for (MYSQL_WAIT_*), until `limit` or the
/// library's own timeout. Returns the MYSQL_WAIT_* that happened, 0 when `limit` passed.
int wait_for(MYSQL* m, int status, Clock::time_point limit) {
    short events = 0;
    if ((status & MYSQL_WAIT_READ) != 0) events |= POLLIN;
    if ((status & MYSQL_WAIT_WRITE) != 0) events |= POLLOUT;
    if ((status & MYSQL_WAIT_EXCEPT) != 0) events |= POLLPRI;
    Clock::time_point until = limit;
    bool library_timeout = false;
    if ((status & MYSQL_WAIT_TIMEOUT) != 0) {
        const auto own = Clock::now() + std::chrono::milliseconds(mysql_get_timeout_value_ms(m));
        if (own < until) {
            until = own;
            library_timeout = true;
        }
    }
    pollfd p{};
    p.fd = mysql_get_socket(m);
    p.events = events;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        const int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left + 1, 0)));
        if (r < 0 && errno == EINTR) continue;
        if (r > 0) {
            int happened = 0;
            if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) happened |= MYSQL_WAIT_READ;
            if ((p.revents & POLLOUT) != 0) happened |= MYSQL_WAIT_WRITE;
            if ((p.revents & POLLPRI) != 0) happened |= MYSQL_WAIT_EXCEPT;
            return happened != 0 ? happened : status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
        }
        if (r == 0 || Clock::now() >= until) return library_timeout ? MYSQL_WAIT_TIMEOUT : 0;
    }
}

}  // namespace

MysqlPtr open_connection(const MariaSettings& s, Clock::time_point deadline) {
    library_init();
    const auto start = Clock::now();
    auto limit = deadline;
    const bool by_connect_timeout = s.connect_timeout && start + *s.connect_timeout < deadline;
    if (by_connect_timeout) limit = start + *s.connect_timeout;

    MysqlPtr m(mysql_init(nullptr));
    if (!m) throw ConnectError("cannot connect to " + s.redacted + ": Connector/C is out of memory");
    (void)mysql_optionsv(m.get(), MYSQL_OPT_NONBLOCK, 0);
    (void)mysql_optionsv(m.get(), MYSQL_SET_CHARSET_NAME, s.charset.c_str());
    const my_bool no = 0;
    (void)mysql_optionsv(m.get(), MYSQL_OPT_RECONNECT, &no);  // a lost session is the pool's to replace
    if (s.statement_timeout) {
        // A server that stops answering: give up (broken) this long after max_statement_time.
        const auto secs = static_cast<unsigned>((s.statement_timeout->count() + 5'999) / 1000);
        (void)mysql_optionsv(m.get(), MYSQL_OPT_READ_TIMEOUT, &secs);
        (void)mysql_optionsv(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &secs);
    }
    const my_bool yes = 1;
    switch (s.ssl_mode) {
        case SslMode::disabled: break;
        case SslMode::preferred: (void)mysql_ssl_set(m.get(), nullptr, nullptr, nullptr, nullptr, nullptr); break;
        case SslMode::required: (void)mysql_optionsv(m.get(), MYSQL_OPT_SSL_ENFORCE, &yes); break;
        case SslMode::verify_ca:
        case SslMode::verify_identity:
            (void)mysql_optionsv(m.get(), MYSQL_OPT_SSL_ENFORCE, &yes);
            (void)mysql_optionsv(m.get(), MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
            if (!s.ssl_ca.empty()) (void)mysql_optionsv(m.get(), MYSQL_OPT_SSL_CA, s.ssl_ca.c_str());
            break;
    }
    if (s.ssl_mode == SslMode::disabled) {
        const my_bool off = 0;
        (void)mysql_optionsv(m.get(), MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
    }
    MYSQL* ret = nullptr;
    const char* db = s.database.empty() ? nullptr : s.database.c_str();
    const char* sock = s.socket.empty() ? nullptr : s.socket.c_str();
    // Connector/C takes the socket only for host "localhost" (or none): with socket= in the
    // URL, a host such as 127.0.0.1 would otherwise mean TCP and the socket would be ignored.
    const char* host = sock != nullptr ? nullptr : s.host.c_str();
    int status = mysql_real_connect_start(&ret, m.get(), host, s.user.c_str(), s.password.c_str(), db, s.port,
                                          sock, CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS);
    while (status != 0) {
        const int happened = Clock::now() >= limit ? 0 : wait_for(m.get(), status, limit);
        if (happened == 0) {
            std::string message = "connection to " + s.redacted + " timed out after " +
                                  std::to_string(pg::ms_between(start, limit)) + " ms";
            if (by_connect_timeout) message += " (connect_timeout)";
            throw ConnectError(message);
        }
        status = mysql_real_connect_cont(&ret, m.get(), happened);
    }
    if (ret == nullptr) fail(m.get(), s);
    // Connector/C 3.3 falls back to plain TCP when the server offers no TLS, even with
    // MYSQL_OPT_SSL_ENFORCE, unless it also verifies the certificate: required must not.
    if (s.ssl_mode != SslMode::disabled && s.ssl_mode != SslMode::preferred && mysql_get_ssl_cipher(m.get()) == nullptr) {
        throw ConnectError("cannot connect to " + s.redacted +
                           ": the server does not offer TLS, and ssl_mode asks for it (configure TLS on the server, "
                           "or use ssl_mode=preferred)");
    }
    apply_session(m.get(), s);
    return m;
}

void apply_session(MYSQL* m, const MariaSettings& s) {
    std::string sql;
    if (!s.autocommit) sql += "SET SESSION autocommit = 0";
    if (s.statement_timeout) {
        if (!sql.empty()) sql += ", ";
        const auto ms = s.statement_timeout->count();
        if (mariadb_connection(m) != 0) {
            sql += (sql.empty() ? "SET SESSION " : "SESSION ") + std::string("max_statement_time = ") +
                   std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
        } else {
            sql += (sql.empty() ? "SET SESSION " : "SESSION ") + std::string("max_execution_time = ") +
                   std::to_string(ms);
        }
    }
    if (sql.empty()) return;
    if (mysql_real_query(m, sql.data(), sql.size()) != 0) {
        throw ConnectError("cannot set up a session on " + s.redacted + ": " + s.scrub(mysql_error(m)) + " in: " + sql);
    }
}

namespace {

class MariaDriver final : public Driver {
public:
    explicit MariaDriver(const DbUrl& url) {
        if (url.backend != Backend::mariadb) {
            throw ConfigError("'" + url.redacted + "' is not a MariaDB URL (mariadb://user@host:port/db)");
        }
        settings_ = std::make_shared<const MariaSettings>(read_settings(url));
    }

    std::unique_ptr<Connection> connect(Clock::time_point deadline) override {
        auto c = make_maria_connection(settings_, open_connection(*settings_, deadline));
        reset_query_.check(*c, settings_->reset_query, settings_->redacted);
        return c;
    }

    [[nodiscard]] Backend backend() const noexcept override { return Backend::mariadb; }
    [[nodiscard]] std::string describe() const override { return settings_->redacted; }

    /// A session whose transactions are read-only (one more round trip after connect()).
    std::unique_ptr<Connection> connect_read_only(Clock::time_point deadline) override {
        auto c = connect(deadline);
        c->execute("SET SESSION TRANSACTION READ ONLY");
        return c;
    }

    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override {
        MariaDiagnoseSetup setup;
        setup.client_statement_timeout = settings_->statement_timeout.has_value();
        const std::string& h = settings_->host;
        setup.local = !settings_->socket.empty() || h.empty() || h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
        return mariadb_diagnose(*this, setup, options);
    }

private:
    std::shared_ptr<const MariaSettings> settings_;
    ResetQueryCheck reset_query_;
};

}  // namespace
}  // namespace mariadb

std::shared_ptr<Driver> make_mariadb_driver(const DbUrl& url) { return std::make_shared<mariadb::MariaDriver>(url); }

}  // namespace poolbench::internal
