// faults.cpp — starting and reverting each fault kind (faults.hpp).
#include "faults.hpp"
#include "node_faults.hpp"

#include "child_process.hpp"

#include <poolbench/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// This run's own server sessions (PostgreSQL backends, MariaDB connections).

void BackendRegistry::add(long pid) {
    std::lock_guard lock(mu_);
    pids_.insert(pid);
}

void BackendRegistry::remove(long pid) {
    std::lock_guard lock(mu_);
    if (auto it = pids_.find(pid); it != pids_.end()) pids_.erase(it);
}

std::vector<long> BackendRegistry::snapshot() const {
    std::lock_guard lock(mu_);
    return {pids_.begin(), pids_.end()};
}

namespace {

class TrackedConnection final : public Connection {
public:
    TrackedConnection(std::unique_ptr<Connection> inner, std::shared_ptr<BackendRegistry> registry, long pid)
        : inner_(std::move(inner)), registry_(std::move(registry)), pid_(pid) {
        registry_->add(pid_);
    }
    ~TrackedConnection() override { registry_->remove(pid_); }
    TrackedConnection(const TrackedConnection&) = delete;
    TrackedConnection& operator=(const TrackedConnection&) = delete;

    void execute(std::string_view sql) override { inner_->execute(sql); }
    Rows query(std::string_view sql, std::span<const Value> params) override { return inner_->query(sql, params); }
    bool ping() noexcept override { return inner_->ping(); }
    void reset() override { inner_->reset(); }
    void interrupt() noexcept override { inner_->interrupt(); }
    [[nodiscard]] bool is_broken() const noexcept override { return inner_->is_broken(); }
    [[nodiscard]] bool in_transaction() const noexcept override { return inner_->in_transaction(); }
    [[nodiscard]] bool needs_reset() const noexcept override { return inner_->needs_reset(); }

private:
    std::unique_ptr<Connection> inner_;
    std::shared_ptr<BackendRegistry> registry_;
    long pid_;
};

}  // namespace

TrackingDriver::TrackingDriver(std::shared_ptr<Driver> inner, std::shared_ptr<BackendRegistry> registry)
    : inner_(std::move(inner)), registry_(std::move(registry)) {}

std::string_view TrackingDriver::session_id_query(Backend backend) noexcept {
    switch (backend) {
        case Backend::postgresql: return "SELECT pg_backend_pid()";
        case Backend::mariadb: return "SELECT CONNECTION_ID()";
        case Backend::sqlite:
        case Backend::null: break;
    }
    return {};
}

std::unique_ptr<Connection> TrackingDriver::connect(Clock::time_point deadline) {
    auto conn = inner_->connect(deadline);
    long id = 0;
    try {
        id = static_cast<long>(conn->query(session_id_query(inner_->backend())).int_at(0));
    } catch (const Error& e) {
        throw ConnectError(fmt::format("a new connection could not report its server session id ({}): {}",
                                       session_id_query(inner_->backend()), e.what()));
    }
    return std::make_unique<TrackedConnection>(std::move(conn), registry_, id);
}

namespace {

class SqliteLock final : public ActiveFault {
public:
    SqliteLock(const FaultSpec& spec, const FaultTargets& t) : mode_(spec.mode), timeout_(spec.timeout) {
        if (t.self_exe.empty()) throw FaultFailure("cannot find this program's own path to start the lock holder");
        child_ = spawn_child({t.self_exe, "__hold-sqlite-lock", t.db.original, spec.mode,
                              std::to_string(timeout_.count())},
                             false);
        // The holder prints "locked" once it holds the lock, or why it could not (it gives
        // up at the timeout itself; the margin is for it to say so).
        const auto deadline = Clock::now() + timeout_ + std::chrono::seconds(2);
        std::string said;
        while (said.find('\n') == std::string::npos) {
            if (!drain(child_.out, said, deadline) || Clock::now() >= deadline) break;
        }
        if (said.rfind("locked\n", 0) != 0) {
            ::kill(child_.pid, SIGKILL);  // it failed or is stuck: no reason to wait for it
            stop_child();
            const std::string why = last_lines(said);
            throw FaultFailure(fmt::format("the lock holder process did not take the {} lock within {} ms{}", mode_,
                                           timeout_.count(), why.empty() ? "" : ": " + why));
        }
    }
    ~SqliteLock() override { stop_child(); }

    void stop() override {
        if (!stop_child()) throw FaultFailure("the lock holder process did not exit within its timeout; it was killed");
    }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("process {} held the {} lock", pid_text_, mode_);
    }

private:
    // Closing its stdin tells the holder to roll back and exit; killed if it does not.
    bool stop_child() {
        if (child_.pid < 0) return true;
        pid_text_ = std::to_string(child_.pid);
        close_fd(child_.in);
        bool clean = wait_child(child_.pid, Clock::now() + timeout_).has_value();
        if (!clean) {
            ::kill(child_.pid, SIGKILL);
            (void)wait_child(child_.pid, Clock::now() + std::chrono::seconds(5));
        }
        close_fd(child_.out);
        child_.pid = -1;
        return clean;
    }

    Child child_;
    std::string mode_;
    std::chrono::milliseconds timeout_;
    std::string pid_text_;
};

/// server.restart, pg.restart, mariadb.restart: the same command, whatever the server.
class ServerRestart final : public ActiveFault {
public:
    ServerRestart(const FaultSpec& spec, const FaultTargets& t) : command_(t.restart_command), timeout_(spec.timeout) {
        if (command_.empty()) throw FaultFailure(fmt::format("{} needs --restart-command CMD", to_string(spec.kind)));
        child_ = spawn_child({"/bin/sh", "-c", command_}, true);
        close_fd(child_.in);
    }
    ~ServerRestart() override {
        if (child_.pid >= 0) kill_group();
        close_fd(child_.out);
    }

    bool finished() override {
        if (child_.pid < 0) return true;
        (void)drain(child_.out, output_, Clock::now());
        if (auto status = wait_child(child_.pid, Clock::now())) {
            (void)drain(child_.out, output_, Clock::now());
            status_ = describe_status(*status);
            ok_ = WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
            child_.pid = -1;
            return true;
        }
        return false;
    }

    void stop() override {
        if (!finished()) {
            const auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
            kill_group();
            status_ = ran >= timeout_ ? fmt::format("did not finish within its timeout ({} ms); stopped", timeout_.count())
                                      : fmt::format("stopped after {} ms: the phase ended (or was interrupted) first",
                                                    ran.count());
            ok_ = false;
        }
        if (!ok_) throw FaultFailure(fmt::format("--restart-command: {}{}", status_, output_.empty() ? "" : ": " + last_lines(output_, 3)));
    }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("--restart-command {}{}", status_.empty() ? "running" : status_,
                           output_.empty() ? "" : "; output: " + last_lines(output_));
    }

private:
    void kill_group() {
        ::kill(-child_.pid, SIGTERM);
        if (!wait_child(child_.pid, Clock::now() + std::chrono::seconds(2))) {
            ::kill(-child_.pid, SIGKILL);
            (void)wait_child(child_.pid, Clock::now() + std::chrono::seconds(5));
        }
        child_.pid = -1;
    }

    std::string command_;
    std::chrono::milliseconds timeout_;
    Clock::time_point started_ = Clock::now();
    Child child_;
    std::string output_;
    std::string status_;
    bool ok_ = false;
};

// ---------------------------------------------------------------------------------------
// Side connections.

class PgLockTable final : public ActiveFault {
public:
    PgLockTable(const FaultSpec& spec, const FaultTargets& t, std::string table) : table_(std::move(table)) {
        conn_ = t.driver->connect(Clock::now() + spec.timeout);
        conn_->execute("BEGIN");
        try {
            // Bounded: a lock that cannot be had (another fault holds it) fails the fault
            // instead of blocking the fault clock.
            conn_->execute(fmt::format("SET LOCAL lock_timeout = {}", spec.timeout.count()));
            conn_->execute(fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", table_));
        } catch (const Error& e) {
            throw FaultFailure(fmt::format("LOCK TABLE {}: {}", table_, e.what()));
        }
    }
    void stop() override {
        try {
            conn_->execute("ROLLBACK");
        } catch (const Error& e) {
            // Closing the connection ends the transaction on the server all the same.
            conn_.reset();
            throw FaultFailure(fmt::format("ROLLBACK of the lock on {}: {} (the connection was closed instead)", table_,
                                           e.what()));
        }
        conn_.reset();
    }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("ACCESS EXCLUSIVE lock on {} from a side connection", table_);
    }

private:
    std::string table_;
    std::unique_ptr<Connection> conn_;
};

class PgTerminate final : public ActiveFault {
public:
    PgTerminate(const FaultSpec& spec, const FaultTargets& t) : every_(spec.every), backends_(t.backends) {
        if (!backends_) throw FaultFailure("pg.terminate_backends needs this run's backend registry");
        conn_ = t.driver->connect(Clock::now() + spec.timeout);
        // Behind PgBouncer a pid is that of whichever server connection ran the statement,
        // shared with the pooler's other clients: terminating it is not ending our own.
        if (t.driver->behind_pooler().value_or(false)) {
            throw FaultFailure(fmt::format(
                "{} reaches the server through a pooler (PgBouncer): the server backends this run used are shared "
                "with the pooler's other clients, so none is terminated; point --db at the server itself",
                t.db.redacted));
        }
        terminate();
        next_ = Clock::now() + every_;
    }
    void tick(Clock::time_point now) override {
        if (every_.count() == 0 || now < next_) return;
        terminate();
        next_ = now + every_;
    }
    void stop() override { conn_.reset(); }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("terminated {} backend{} of this run in {} round{}", terminated_, terminated_ == 1 ? "" : "s",
                           rounds_, rounds_ == 1 ? "" : "s");
    }

private:
    void terminate() {
        ++rounds_;
        for (const long pid : backends_->snapshot()) {
            try {
                (void)conn_->query("SELECT pg_terminate_backend($1)", {Value{static_cast<std::int64_t>(pid)}});
                ++terminated_;
            } catch (const Error& e) {
                throw FaultFailure(fmt::format("pg_terminate_backend({}): {}", pid, e.what()));
            }
        }
    }

    std::chrono::milliseconds every_;
    std::shared_ptr<BackendRegistry> backends_;
    std::unique_ptr<Connection> conn_;
    Clock::time_point next_;
    std::uint64_t terminated_ = 0, rounds_ = 0;
};

/// LOCK TABLES ... WRITE: other sessions' reads and writes of the table wait for its
/// metadata lock (up to their lock_wait_timeout, a day by default) until UNLOCK TABLES.
class MariaLockTable final : public ActiveFault {
public:
    MariaLockTable(const FaultSpec& spec, const FaultTargets& t, std::string table) : table_(std::move(table)) {
        conn_ = t.driver->connect(Clock::now() + spec.timeout);
        try {
            // Bounded: a lock that cannot be had (another session holds it) fails the fault
            // instead of blocking the fault clock. Whole seconds, at least one.
            const auto seconds = std::max<std::int64_t>(1, (spec.timeout.count() + 999) / 1000);
            conn_->execute(fmt::format("SET SESSION lock_wait_timeout = {}", seconds));
            conn_->execute(fmt::format("LOCK TABLES {} WRITE", table_));
        } catch (const Error& e) {
            throw FaultFailure(fmt::format("LOCK TABLES {} WRITE: {}", table_, e.what()));
        }
    }
    void stop() override {
        try {
            conn_->execute("UNLOCK TABLES");
        } catch (const Error& e) {
            // Closing the session releases its table locks all the same.
            conn_.reset();
            throw FaultFailure(fmt::format("UNLOCK TABLES ({}): {} (the connection was closed instead)", table_,
                                           e.what()));
        }
        conn_.reset();
    }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("WRITE lock (LOCK TABLES) on {} from a side connection", table_);
    }

private:
    std::string table_;
    std::unique_ptr<Connection> conn_;
};

/// KILL CONNECTION on the ids this run's own connections reported (CONNECTION_ID()).
class MariaKill final : public ActiveFault {
public:
    MariaKill(const FaultSpec& spec, const FaultTargets& t) : every_(spec.every), backends_(t.backends) {
        if (!backends_) throw FaultFailure("mariadb.kill_connections needs this run's connection registry");
        conn_ = t.driver->connect(Clock::now() + spec.timeout);
        kill();
        next_ = Clock::now() + every_;
    }
    void tick(Clock::time_point now) override {
        if (every_.count() == 0 || now < next_) return;
        kill();
        next_ = now + every_;
    }
    void stop() override { conn_.reset(); }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("killed {} connection{} of this run in {} round{}", killed_, killed_ == 1 ? "" : "s", rounds_,
                           rounds_ == 1 ? "" : "s");
    }

private:
    void kill() {
        ++rounds_;
        for (const long id : backends_->snapshot()) {
            try {
                conn_->execute(fmt::format("KILL CONNECTION {}", id));
                ++killed_;
            } catch (const QueryError& e) {
                // ER_NO_SUCH_THREAD: it closed between the snapshot and now (as
                // pg_terminate_backend returns false for a PID that is gone).
                if (e.code() == "1094") continue;
                throw FaultFailure(fmt::format("KILL CONNECTION {}: {}", id, e.what()));
            } catch (const Error& e) {
                throw FaultFailure(fmt::format("KILL CONNECTION {}: {}", id, e.what()));
            }
        }
    }

    std::chrono::milliseconds every_;
    std::shared_ptr<BackendRegistry> backends_;
    std::unique_ptr<Connection> conn_;
    Clock::time_point next_;
    std::uint64_t killed_ = 0, rounds_ = 0;
};

}  // namespace

std::unique_ptr<ActiveFault> start_fault(const FaultSpec& spec, FaultTargets& targets, const std::string& default_table) {
    const std::string& table = spec.table.empty() ? default_table : spec.table;
    try {
        switch (spec.kind) {
            case FaultKind::sqlite_lock: return std::make_unique<SqliteLock>(spec, targets);
            case FaultKind::pg_lock_table: return std::make_unique<PgLockTable>(spec, targets, table);
            case FaultKind::pg_terminate_backends: return std::make_unique<PgTerminate>(spec, targets);
            case FaultKind::pg_restart:
            case FaultKind::mariadb_restart:
            case FaultKind::server_restart: return std::make_unique<ServerRestart>(spec, targets);
            case FaultKind::mariadb_lock_table: return std::make_unique<MariaLockTable>(spec, targets, table);
            case FaultKind::mariadb_kill_connections: return std::make_unique<MariaKill>(spec, targets);
            case FaultKind::connection_storm:
            case FaultKind::latency:
            case FaultKind::lost_replies: return start_process_fault(spec, targets);
            case FaultKind::leak: return start_leak_fault(spec, targets);
            case FaultKind::replica_stop:
            case FaultKind::replica_promote: return start_node_fault(spec, targets);
        }
    } catch (const FaultFailure&) {
        throw;
    } catch (const std::exception& e) {
        throw FaultFailure(e.what());
    }
    throw FaultFailure("unknown fault kind");
}

int hold_sqlite_lock(const std::string& url, const std::string& mode, std::chrono::milliseconds timeout) {
    // Dies with poolbench: the lock must never outlive the run that asked for it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) return 1;
    try {
        const DbUrl db = parse_db_url(url);
        if (db.backend != Backend::sqlite) {
            std::fputs("error: sqlite.lock needs a SQLite database\n", stdout);
            return 2;
        }
        auto driver = make_driver(db);
        auto conn = driver->connect(Clock::now() + std::chrono::seconds(30));
        // SQLite's busy handler is not fair: against writers that keep the lock busy it
        // can wait for as long as they run. Asking in a tight loop finds the gaps between
        // their transactions within microseconds to milliseconds.
        conn->execute("PRAGMA busy_timeout=0");
        const auto give_up = Clock::now() + timeout;
        auto begin = [&](const char* sql) {
            while (true) {
                try {
                    conn->execute(sql);
                    return;
                } catch (const QueryError& e) {
                    if (!e.is_busy()) throw;
                    if (Clock::now() >= give_up) {
                        throw FaultFailure(std::string(e.what()) +
                                           (mode == "all" ? "; on a WAL database the 'all' lock needs a moment with no "
                                                            "reader, which a continuous read load may never leave"
                                                          : ""));
                    }
                    std::this_thread::yield();
                }
            }
        };
        if (mode == "all") {
            // Readers block too: an exclusive locking mode keeps every lock this connection
            // takes, and EXCLUSIVE with a write takes them all (rollback journal: the
            // EXCLUSIVE file lock; WAL: the exclusive WAL-index locks).
            conn->execute("PRAGMA locking_mode=EXCLUSIVE");
            begin("BEGIN EXCLUSIVE");
            conn->execute("CREATE TABLE IF NOT EXISTS poolbench_lock_probe (x INTEGER)");
            conn->execute("INSERT INTO poolbench_lock_probe VALUES (1)");
        } else {
            begin("BEGIN IMMEDIATE");
        }
        std::fputs("locked\n", stdout);
        std::fflush(stdout);
        char buffer[256];
        while (::read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
        }
        conn->execute("ROLLBACK");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stdout, "error: %s\n", e.what());
        std::fflush(stdout);
        return 3;
    }
}

}  // namespace poolbench::cli
