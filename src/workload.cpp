// workload.cpp — the SQL behind each workload kind.
#include "workload.hpp"

#include "workload_sql.hpp"

#include <poolbench/shard_map.hpp>

#include <poolbench/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <utility>

namespace poolbench::cli {

namespace {

/// `sql` with its one parameter ($1 or ?) written out: the statement a DBA can run.
std::string with_count(std::string_view sql, std::uint64_t n) {
    std::string out(sql);
    std::size_t at = out.find("$1");
    std::size_t len = 2;
    if (at == std::string::npos) {
        at = out.find('?');
        len = 1;
    }
    if (at != std::string::npos) out.replace(at, len, std::to_string(n));
    return out;
}

bool needs_accounts(WorkloadKind k) {
    return k == WorkloadKind::read || k == WorkloadKind::mixed || k == WorkloadKind::read_write;
}
bool needs_writes(WorkloadKind k) {
    return k == WorkloadKind::write || k == WorkloadKind::mixed || k == WorkloadKind::read_write;
}

}  // namespace

std::string_view to_string(WorkloadKind kind) noexcept {
    switch (kind) {
        case WorkloadKind::select1: return "select1";
        case WorkloadKind::read: return "read";
        case WorkloadKind::write: return "write";
        case WorkloadKind::mixed: return "mixed";
        case WorkloadKind::read_write: return "read_write";
    }
    return "?";
}

std::optional<WorkloadKind> parse_workload(std::string_view text) noexcept {
    for (auto k : {WorkloadKind::select1, WorkloadKind::read, WorkloadKind::write, WorkloadKind::mixed,
                   WorkloadKind::read_write}) {
        if (text == to_string(k)) return k;
    }
    return std::nullopt;
}

Workload::Workload(WorkloadSpec spec, Backend backend, std::string run_id)
    : spec_(spec), backend_(backend), run_id_(std::move(run_id)),
      sql_(&workload_sql(backend)) {}

Workload Workload::with_run_id(std::string run_id) const {
    return Workload(spec_, backend_, std::move(run_id));
}

bool Workload::writes() const noexcept {
    return spec_.kind == WorkloadKind::write || spec_.kind == WorkloadKind::read_write ||
           (spec_.kind == WorkloadKind::mixed && spec_.write_ratio > 0);
}

WorkerState Workload::make_worker_state(std::uint32_t worker, std::uint64_t seed) const {
    WorkerState s;
    s.worker = worker;
    s.rng.seed(seed ^ (0x9e3779b97f4a7c15ULL * (std::uint64_t{worker} + 1)));
    return s;
}

namespace {

/// Whether `table` exists and is visible (PostgreSQL: on the search path; MariaDB: in the
/// URL's database).
bool table_exists(Connection& conn, Backend backend, std::string_view table) {
    const Rows r = conn.query(workload_sql(backend).table_exists, {Value{std::string(table)}});
    return !r.empty() && r.int_at(0) > 0;
}

std::string current_role(Connection& conn, Backend backend) {
    const std::string_view sql = workload_sql(backend).current_role;
    if (sql.empty()) return "the application's role";
    try {
        const Rows r = conn.query(sql);
        if (!r.empty()) {
            if (const auto* s = std::get_if<std::string>(&r.rows[0][0])) return *s;
        }
    } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the name only decorates the advice
    }
    return "the application's role";
}

/// The error when `sql` is refused for want of a privilege; none when it runs, when there
/// is nothing to check, or when it fails otherwise (a read-only server refusing a probe's
/// INSERT is the load's to meet).
std::optional<std::string> refused(Connection& conn, Backend backend, std::string_view sql) {
    if (sql.empty()) return std::nullopt;
    try {
        (void)conn.query(sql);
    } catch (const QueryError& e) {
        if (workload_sql(backend).permission_denied(e.code())) return std::string(e.what());
    }
    return std::nullopt;
}

/// "USE `db`; " where a DBA's statements need the database chosen first, else "".
std::string dba_context(Connection& conn, Backend backend) {
    const std::string_view sql = workload_sql(backend).current_database;
    if (sql.empty()) return {};
    try {
        const Rows r = conn.query(sql);
        if (!r.empty()) {
            if (const auto* s = std::get_if<std::string>(&r.rows[0][0])) {
                std::string quoted;
                for (const char c : *s) quoted += c == '`' ? std::string("``") : std::string(1, c);
                return fmt::format("USE `{}`; ", quoted);
            }
        }
    } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the USE only helps the advice
    }
    return {};
}

}  // namespace

void Workload::setup(Connection& conn) const {
    if (backend_ == Backend::null) return;
    create_tables(conn);
    if (!needs_accounts(spec_.kind)) return;
    const Rows have = conn.query(sql_->count_accounts);
    if (have.empty()) return;
    if (static_cast<std::uint64_t>(have.int_at(0)) >= spec_.rows) return;
    seed(conn, [&] { (void)conn.query(sql_->seed_accounts, {Value{static_cast<std::int64_t>(spec_.rows)}}); });
}

std::uint64_t Workload::accounts_on_shard(std::size_t shard, std::size_t shards) const {
    std::uint64_t n = 0;
    for (std::uint64_t id = 1; id <= spec_.rows; ++id) {
        if (shard_for_key(static_cast<std::int64_t>(id), shards) == shard) ++n;
    }
    return n;
}

void Workload::setup_shard(Connection& conn, std::size_t shard, std::size_t shards) const {
    if (backend_ == Backend::null) return;
    create_tables(conn);
    if (!needs_accounts(spec_.kind)) return;
    const Rows have = conn.query(sql_->count_accounts);
    if (have.empty()) return;
    if (static_cast<std::uint64_t>(have.int_at(0)) >= accounts_on_shard(shard, shards)) return;
    seed(conn, [&] {
        for (std::uint64_t id = 1; id <= spec_.rows; ++id) {
            const auto key = static_cast<std::int64_t>(id);
            if (shard_for_key(key, shards) != shard) continue;
            (void)conn.query(sql_->seed_account,
                             {Value{key}, Value{1000 + key % 100}, Value{fmt::format("poolbench filler row {}", id)}});
        }
    });
}

void Workload::create_tables(Connection& conn) const {
    // Tables a DBA created are used as they are: a role with SELECT and INSERT on them
    // needs no CREATE privilege. Only what is missing is created, and when that is not
    // allowed the error says what a DBA would run.
    struct Needed {
        std::string_view table, sql, grant;
    };
    std::vector<Needed> missing;
    if (needs_accounts(spec_.kind) && !table_exists(conn, backend_, "poolbench_accounts")) {
        missing.push_back({"poolbench_accounts", sql_->create_accounts, "SELECT"});
    }
    if (needs_writes(spec_.kind) && !table_exists(conn, backend_, "poolbench_writes")) {
        missing.push_back({"poolbench_writes", sql_->create_writes, "SELECT, INSERT"});
    }
    for (std::size_t i = 0; i < missing.size(); ++i) {
        try {
            conn.execute(missing[i].sql);
        } catch (const QueryError& e) {
            if (!sql_->permission_denied(e.code())) throw;
            // Everything a DBA has to do, in one message: each missing table, its grant, and
            // the seeding of a new accounts table.
            const std::string role = current_role(conn, backend_);
            std::string todo = dba_context(conn, backend_);
            for (std::size_t k = i; k < missing.size(); ++k) {
                todo += fmt::format("{}{}; GRANT {} ON {} TO {}", k == i ? "" : "; ", missing[k].sql,
                                    missing[k].grant, missing[k].table, role);
                if (missing[k].table == "poolbench_accounts") todo += "; " + with_count(sql_->seed_accounts, spec_.rows);
            }
            throw SetupRefused(fmt::format("{} cannot create table {} ({}); ask a DBA to run: {}", role,
                                           missing[i].table, e.what(), todo));
        }
    }
    // Tables that exist but this role may not use (a DBA created them and granted too
    // little): said now, with the GRANT, rather than as every operation failing.
    const auto read_denied = needs_accounts(spec_.kind) ? refused(conn, backend_, sql_->count_accounts) : std::nullopt;
    const auto write_denied = needs_writes(spec_.kind) ? refused(conn, backend_, sql_->probe_writes) : std::nullopt;
    if (read_denied || write_denied) {
        const std::string role = current_role(conn, backend_);
        std::string tables, why, todo = dba_context(conn, backend_);
        if (read_denied) {
            tables = "poolbench_accounts";
            why = *read_denied;
            todo += fmt::format("GRANT SELECT ON poolbench_accounts TO {}", role);
        }
        if (write_denied) {
            tables += std::string(read_denied ? " and " : "") + "poolbench_writes";
            why += (read_denied ? "; " : "") + *write_denied;
            todo += fmt::format("{}GRANT SELECT, INSERT ON poolbench_writes TO {}", read_denied ? "; " : "", role);
        }
        throw SetupRefused(fmt::format("{} may not use table {} ({}); ask a DBA to run: {}", role, tables, why, todo));
    }
}

void Workload::seed(Connection& conn, const std::function<void()>& insert) const {
    conn.execute(sql_->begin_write);
    try {
        insert();
        conn.execute("COMMIT");
    } catch (const QueryError& e) {
        try {
            conn.execute("ROLLBACK");
        } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
        }
        if (!sql_->permission_denied(e.code())) throw;
        throw SetupRefused(fmt::format("{} cannot seed poolbench_accounts ({}); ask a DBA to run: {}{}",
                                       current_role(conn, backend_), e.what(), dba_context(conn, backend_),
                                       with_count(sql_->seed_accounts, spec_.rows)));
    } catch (...) {
        try {
            conn.execute("ROLLBACK");
        } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
        }
        throw;
    }
}

std::int64_t Workload::pick_account(WorkerState& state) const {
    std::uniform_int_distribution<std::int64_t> pick(1, static_cast<std::int64_t>(spec_.rows));
    return pick(state.rng);
}

void Workload::read_account(Connection& conn, std::int64_t id) const {
    const std::array<Value, 1> params{Value{id}};
    (void)conn.query(sql_->read, params);
}

void Workload::write_one(Connection& conn, WorkerState& state) const {
    const std::uint64_t seq = state.seq++;
    const std::array<Value, 4> params{
        Value{run_id_}, Value{static_cast<std::int64_t>(state.worker)}, Value{static_cast<std::int64_t>(seq)},
        Value{fmt::format("worker {} op {}", state.worker, seq)}};
    conn.execute(sql_->begin_write);
    (void)conn.query(sql_->insert, params);
    commit(conn, state, seq);
}

void Workload::read_then_write(Connection& conn, WorkerState& state, std::int64_t account) const {
    conn.execute(sql_->begin_read);  // DEFERRED on SQLite: the write lock is taken at the INSERT
    read_account(conn, account);
    const std::uint64_t seq = state.seq++;
    const std::array<Value, 4> params{
        Value{run_id_}, Value{static_cast<std::int64_t>(state.worker)}, Value{static_cast<std::int64_t>(seq)},
        Value{fmt::format("worker {} op {} (read, then write)", state.worker, seq)}};
    (void)conn.query(sql_->insert, params);
    commit(conn, state, seq);
}

void Workload::commit(Connection& conn, WorkerState& state, std::uint64_t seq) {
    state.committing = seq;
    conn.execute("COMMIT");
    state.committing.reset();
}

bool commit_in_doubt(const std::exception& e) noexcept {
    const auto* q = dynamic_cast<const QueryError*>(&e);
    return q == nullptr || q->broken();
}

OpOutcome Workload::run_op(Connection& conn, WorkerState& state, bool write) const {
    switch (spec_.kind) {
        case WorkloadKind::select1:
            // null:// measures the pool and the runner: its query() would build its one-row
            // result on the heap (two allocations and frees, as much as a quarter of the
            // runner's cost per operation), which is neither. A database returns the row.
            if (backend_ == Backend::null) {
                conn.execute("SELECT 1");
            } else {
                (void)conn.query("SELECT 1");
            }
            return {};
        case WorkloadKind::read:
            read_one(conn, state);
            return {};
        case WorkloadKind::write:
            write_one(conn, state);
            return {.wrote = true};
        case WorkloadKind::mixed:
            if (write) {
                write_one(conn, state);
                return {.wrote = true};
            }
            read_one(conn, state);
            return {};
        case WorkloadKind::read_write:
            read_then_write(conn, state, pick_account(state));
            return {.wrote = true};
    }
    return {};
}

std::int64_t Workload::draw_key(WorkerState& state, bool write) const {
    if (write && spec_.kind != WorkloadKind::read_write) {
        return static_cast<std::int64_t>((std::uint64_t{state.worker} << 32) | (state.seq & 0xffffffffULL));
    }
    return pick_account(state);
}

OpOutcome Workload::run_keyed_op(Connection& conn, WorkerState& state, bool write, std::int64_t key) const {
    switch (spec_.kind) {
        case WorkloadKind::read: read_account(conn, key); return {};
        case WorkloadKind::mixed:
            if (!write) {
                read_account(conn, key);
                return {};
            }
            break;
        case WorkloadKind::read_write:
            read_then_write(conn, state, key);
            return {.wrote = true};
        case WorkloadKind::select1:
        case WorkloadKind::write: break;
    }
    return run_op(conn, state, write);  // the key was the row's (write) or unused (select1)
}

std::optional<WrittenRows> Workload::count_written(Connection& conn, std::span<const WriteKey> in_doubt) const {
    if (backend_ == Backend::null) return std::nullopt;
    const Rows rows = conn.query(sql_->count_writes, {Value{run_id_}});
    if (rows.empty()) return std::nullopt;
    WrittenRows found{.rows = static_cast<std::uint64_t>(rows.int_at(0)), .in_doubt_committed = 0};
    for (const WriteKey& k : in_doubt) {
        const std::array<Value, 3> params{Value{run_id_}, Value{static_cast<std::int64_t>(k.worker)},
                                          Value{static_cast<std::int64_t>(k.seq)}};
        const Rows there = conn.query(sql_->write_exists, params);
        if (!there.empty() && there.int_at(0) > 0) ++found.in_doubt_committed;
    }
    return found;
}

namespace {
constexpr std::array<std::string_view, 3> workload_table_names{"poolbench_accounts", "poolbench_writes",
                                                               "poolbench_lock_probe"};
}  // namespace

std::vector<WorkloadTable> workload_tables(Connection& conn, Backend backend) {
    std::vector<WorkloadTable> out;
    if (backend == Backend::null) return out;
    for (const auto name : workload_table_names) {
        if (table_exists(conn, backend, name)) out.push_back({std::string(name), 0});
    }
    for (auto& t : out) {
        try {
            const Rows r = conn.query(fmt::format("SELECT count(*) FROM {}", t.name));
            t.rows = r.empty() ? 0 : r.int_at(0);
        } catch (const QueryError& e) {
            if (!workload_sql(backend).permission_denied(e.code())) throw;
            std::vector<std::string> names;
            for (const auto& each : out) names.push_back(each.name);
            throw SetupRefused(clean_refused(conn, backend, names, e.what()));
        }
    }
    return out;
}

void drop_workload_table(Connection& conn, const std::string& name) {
    if (std::find(workload_table_names.begin(), workload_table_names.end(), name) == workload_table_names.end()) {
        throw UsageError("drop_workload_table: '" + name + "' is not one of poolbench's tables");
    }
    conn.execute("DROP TABLE IF EXISTS " + name);
}

std::string clean_refused(Connection& conn, Backend backend, const std::vector<std::string>& tables,
                          const std::string& why) {
    const WorkloadSql& sql = workload_sql(backend);
    const std::string role = current_role(conn, backend);
    std::string list, todo = dba_context(conn, backend);
    for (std::size_t i = 0; i < tables.size(); ++i) {
        list += (i == 0 ? "" : ", ") + tables[i];
        todo += i == 0 ? "" : "; ";
        todo += sql.table_owner.empty() ? fmt::format("GRANT SELECT, DROP ON {} TO {}", tables[i], role)
                                        : fmt::format("ALTER TABLE {} OWNER TO {}", tables[i], role);
    }
    if (sql.table_owner.empty()) {
        return fmt::format("{} may not count and drop {} ({}); ask a DBA to run: {}", role, list, why, todo);
    }
    // PostgreSQL: no privilege lets a role drop another's table; its owner (or a member of
    // the owning role) may.
    std::string owner = "its owner";
    if (!tables.empty()) {
        try {
            const Rows r = conn.query(sql.table_owner, {Value{tables.front()}});
            if (!r.empty()) {
                if (const auto* s = std::get_if<std::string>(&r.rows[0][0])) owner = *s;
            }
        } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the owner's name only decorates the advice
        }
    }
    return fmt::format("{} may not count and drop {} ({}); only a table's owner may drop it: run clean as {}, "
                       "or ask a DBA to run: {}",
                       role, list, why, owner, todo);
}

std::string make_run_id() {
    std::random_device rd;
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
    return fmt::format("{:x}-{:08x}", ms, rd());
}

}  // namespace poolbench::cli
