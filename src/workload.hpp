// workload.hpp — what one operation does on a leased connection.
//
// SQL is written once for SQLite and PostgreSQL: `$1`-style placeholders (SQLite binds
// them by position too) and tables prefixed `poolbench_` so they cannot collide with a
// user's. On the null backend statements run through the null connection and return no
// rows, so seeding and write verification are skipped (WritesSection::checked = false).
//
// Thread-safety: a Workload is immutable after setup(); run_op() may be called from any
// number of threads at once, each with its own WorkerState and its own connection.
#pragma once

#include <poolbench/connection.hpp>
#include <poolbench/url.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

/// select1: SELECT 1 (on null://, through execute(): no result row to build). read: a point select. write: one INSERT per transaction (IMMEDIATE
/// on SQLite). mixed: read or write by write_ratio. read_write: a DEFERRED transaction
/// that reads an account, then inserts — on SQLite the shape whose lock upgrade fails
/// with SQLITE_BUSY at once under contention (what a WriterGate prevents).
/// The workload's tables cannot be created or seeded with this role's privileges; the
/// message names what is missing and the SQL a DBA would run.
class SetupRefused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class WorkloadKind { select1, read, write, mixed, read_write };

[[nodiscard]] std::string_view to_string(WorkloadKind kind) noexcept;
/// Parses "select1", "read", "write", "mixed", "read_write"; nullopt otherwise.
[[nodiscard]] std::optional<WorkloadKind> parse_workload(std::string_view text) noexcept;

struct WorkloadSpec {
    WorkloadKind kind = WorkloadKind::select1;
    double write_ratio = 0.2;    ///< mixed only: probability that an operation writes
    std::uint64_t rows = 10'000; ///< read / mixed: rows seeded in poolbench_accounts
};

/// Per-thread state: the PRNG and the worker's write sequence.
struct WorkerState {
    std::uint32_t worker = 0;
    std::uint64_t seq = 0;
    std::mt19937_64 rng;
    /// The seq of the write whose COMMIT is under way, from just before it is sent until
    /// it returns: when the COMMIT throws, that write may or may not be in the database
    /// (commit_in_doubt says which failures leave it so). Reset by the caller that reads it.
    std::optional<std::uint64_t> committing;
};

/// One row of poolbench_writes by its key within a run.
struct WriteKey {
    std::uint32_t worker = 0;
    std::uint64_t seq = 0;
};

/// Whether a COMMIT that threw `e` may still have committed: the connection broke (or the
/// failure is not a database answer at all) before the server's answer arrived. A
/// QueryError on an intact connection is the server's answer that it did not commit.
[[nodiscard]] bool commit_in_doubt(const std::exception& e) noexcept;

/// What counting a run's rows found: all of its rows, and how many of the writes whose
/// COMMIT was in doubt are among them.
struct WrittenRows {
    std::uint64_t rows = 0;
    std::uint64_t in_doubt_committed = 0;
};

class Workload;
/// A phase that wrote, for verification: its workload and its writes in doubt.
struct WritingPhase {
    const Workload* workload = nullptr;
    std::span<const WriteKey> in_doubt;
};

/// What one operation did (the runner counts it).
struct OpOutcome {
    bool wrote = false;  ///< a write transaction was committed and acknowledged
};

struct WorkloadSql;

class Workload {
public:
    /// `run_id` tags every row this run writes, so verification counts only its own rows.
    Workload(WorkloadSpec spec, Backend backend, std::string run_id);

    /// Creates the tables the workload needs and seeds poolbench_accounts (in one
    /// transaction) when it holds fewer than spec.rows rows. Throws poolbench::Error.
    void setup(Connection& conn) const;

    /// One shard of N (topology.hpp): creates the tables as setup() does and seeds the
    /// accounts among 1..spec.rows whose id maps to this shard (shard_for_key). Throws
    /// poolbench::Error.
    void setup_shard(Connection& conn, std::size_t shard, std::size_t shards) const;
    /// How many of the accounts 1..spec.rows map to `shard` of `shards`.
    [[nodiscard]] std::uint64_t accounts_on_shard(std::size_t shard, std::size_t shards) const;

    /// Whether the next operation of this worker writes (drawn before it acquires, so a
    /// writer can queue at a WriterGate). Advances the worker's random state for mixed.
    [[nodiscard]] bool next_writes(WorkerState& state) const {
        if (spec_.kind == WorkloadKind::mixed) return std::bernoulli_distribution(spec_.write_ratio)(state.rng);
        return spec_.kind == WorkloadKind::write || spec_.kind == WorkloadKind::read_write;
    }

    /// One operation; `write` as next_writes() said. Throws poolbench::Error (QueryError,
    /// ...); a failed write leaves its transaction open for the pool's reset to roll back.
    OpOutcome run_op(Connection& conn, WorkerState& state, bool write) const;

    /// Sharded runs: the key the next operation routes by, drawn before it acquires
    /// (topology.hpp says which: a plain write's row key (worker << 32) | seq, else an
    /// account id drawn here). Advances the worker's random state for reads.
    [[nodiscard]] std::int64_t draw_key(WorkerState& state, bool write) const;
    /// run_op for an operation whose key draw_key gave: a read reads that account.
    OpOutcome run_keyed_op(Connection& conn, WorkerState& state, bool write, std::int64_t key) const;

    /// The same workload writing under another run id (the baseline's rows must not be
    /// counted as the pooled run's).
    [[nodiscard]] Workload with_run_id(std::string run_id) const;

    /// Counts the rows this run wrote, and which of `in_doubt` (writes whose COMMIT got no
    /// answer) are among them: one primary-key lookup each. nullopt when the backend cannot
    /// count (null).
    [[nodiscard]] std::optional<WrittenRows> count_written(Connection& conn, std::span<const WriteKey> in_doubt) const;

    [[nodiscard]] bool writes() const noexcept;
    [[nodiscard]] const WorkloadSpec& spec() const noexcept { return spec_; }
    [[nodiscard]] const std::string& run_id() const noexcept { return run_id_; }
    [[nodiscard]] WorkerState make_worker_state(std::uint32_t worker, std::uint64_t seed) const;

private:
    void create_tables(Connection& conn) const;
    /// Runs `insert` in one write transaction; a refusal becomes SetupRefused with the SQL.
    void seed(Connection& conn, const std::function<void()>& insert) const;
    [[nodiscard]] std::int64_t pick_account(WorkerState& state) const;
    void read_account(Connection& conn, std::int64_t id) const;
    void read_one(Connection& conn, WorkerState& state) const { read_account(conn, pick_account(state)); }
    void write_one(Connection& conn, WorkerState& state) const;
    void read_then_write(Connection& conn, WorkerState& state, std::int64_t account) const;
    /// COMMITs the write `seq`, with state.committing set while the COMMIT is under way.
    static void commit(Connection& conn, WorkerState& state, std::uint64_t seq);

    WorkloadSpec spec_;
    Backend backend_;
    std::string run_id_;
    const WorkloadSql* sql_;  ///< this backend's statements (workload_sql.hpp)
};

/// One table the workloads left in a database, as `poolbench clean` found it.
struct WorkloadTable {
    std::string name;
    std::int64_t rows = 0;
};
/// The workloads' tables present in the database (poolbench_accounts, poolbench_writes,
/// poolbench_lock_probe), with their row counts. Throws poolbench::Error, and SetupRefused
/// (clean_refused's message) when counting is refused for want of a privilege.
[[nodiscard]] std::vector<WorkloadTable> workload_tables(Connection& conn, Backend backend);
/// Drops one of them (only those names: never a table of the user's). Throws poolbench::Error.
void drop_workload_table(Connection& conn, const std::string& name);
/// Why `poolbench clean` may not count or drop `tables` as this connection's role (`why`:
/// the server's error), and what a DBA would run: MariaDB's GRANT SELECT, DROP on each;
/// on PostgreSQL, where only a table's owner may drop it, its owner's name and ALTER TABLE
/// ... OWNER TO the role. One line.
[[nodiscard]] std::string clean_refused(Connection& conn, Backend backend, const std::vector<std::string>& tables,
                                        const std::string& why);

/// A fresh run id: time plus randomness, unique enough across concurrent runs.
[[nodiscard]] std::string make_run_id();

}  // namespace poolbench::cli
