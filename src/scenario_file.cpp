// scenario_file.cpp — TOML → ScenarioSpec (toml++). Unknown keys, wrong types and
// impossible values are errors at their file:line:column; nothing here runs anything.
// The --set overrides are scenario_set.cpp's, finding shipped scenarios scenario_find.cpp's.
#include "scenario_file.hpp"

#include "scenario_set.hpp"

#include "cli.hpp"
#include "expectation.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <unistd.h>

namespace poolbench::cli {

namespace fs = std::filesystem;

namespace {

/// Reads one scenario; `place()` turns a node into "file:line:col" (or the --set it came from).
class Reader {
public:
    Reader(std::string file, std::map<const toml::node*, std::string> from_set)
        : file_(std::move(file)), from_set_(std::move(from_set)) {}

    [[noreturn]] void fail(const toml::node& node, const std::string& what) const {
        throw UsageFailure(fmt::format("{}: {}", place(node), what));
    }

    [[nodiscard]] std::string place(const toml::node& node) const {
        if (auto it = from_set_.find(&node); it != from_set_.end()) return fmt::format("--set {}", it->second);
        const auto& src = node.source();
        if (src.begin.line == 0) return file_;
        return fmt::format("{}:{}:{}", file_, src.begin.line, src.begin.column);
    }

    /// Fails on any key of `table` not in `allowed`.
    void only(const toml::table& table, std::string_view where, std::initializer_list<std::string_view> allowed) const {
        for (auto&& [key, node] : table) {
            if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
            std::string list, nearest;
            std::size_t best = 3;  // at most 2 edits away, as for options
            for (auto a : allowed) {
                list += (list.empty() ? "" : ", ") + std::string(a);
                if (const std::size_t d = edit_distance(key.str(), a); d < best) {
                    best = d;
                    nearest = a;
                }
            }
            const auto& src = key.source();
            const std::string at = from_set_.count(&node) != 0 || src.begin.line == 0
                                       ? place(node)
                                       : fmt::format("{}:{}:{}", file_, src.begin.line, src.begin.column);
            throw UsageFailure(fmt::format("{}: unknown key '{}' in {}{} (expected one of: {})", at, key.str(), where,
                                           nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest), list));
        }
    }

    std::string text(const toml::node& n, std::string_view key) const {
        if (const auto* s = n.as_string()) return s->get();
        fail(n, fmt::format("{} must be text (in quotes), not {}", key, type_name(n)));
    }

    bool boolean(const toml::node& n, std::string_view key) const {
        if (const auto* b = n.as_boolean()) return b->get();
        fail(n, fmt::format("{} must be true or false, not {}", key, type_name(n)));
    }

    std::int64_t integer(const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi) const {
        const auto* i = n.as_integer();
        if (i == nullptr) {
            // TOML reads 1e3 and 1000.0 as floats: say so, or "(got 1000)" reads as a contradiction.
            fail(n, n.is_floating_point() ? fmt::format("{} must be a whole number written without a decimal point or "
                                                        "exponent (got the float {})",
                                                        key, n.as_floating_point()->get())
                                          : fmt::format("{} must be a whole number, not {}", key, type_name(n)));
        }
        if (i->get() < lo || i->get() > hi) fail(n, fmt::format("{} must be between {} and {} (got {})", key, lo, hi, i->get()));
        return i->get();
    }

    double number(const toml::node& n, std::string_view key, double lo, double hi) const {
        double v = 0;
        if (const auto* i = n.as_integer()) {
            v = static_cast<double>(i->get());
        } else if (const auto* f = n.as_floating_point()) {
            v = f->get();
        } else {
            fail(n, fmt::format("{} must be a number, not {}", key, type_name(n)));
        }
        if (!std::isfinite(v) || v < lo || v > hi) fail(n, fmt::format("{} must be between {} and {} (got {})", key, lo, hi, v));
        return v;
    }

    std::chrono::milliseconds duration(const toml::node& n, std::string_view key, bool allow_zero) const {
        const std::string t = n.is_string() ? n.as_string()->get() : std::string();
        if (!n.is_string()) {
            if (allow_zero && n.is_integer() && n.as_integer()->get() == 0) return std::chrono::milliseconds{0};
            fail(n, fmt::format("{} must be a duration in quotes, such as \"250ms\", \"1.5s\", \"10m\" (not {})", key,
                                type_name(n)));
        }
        std::chrono::milliseconds out{0};
        if (auto error = parse_duration_into(t, out, allow_zero); !error.empty()) fail(n, fmt::format("{}: {}", key, error));
        return out;
    }

    std::vector<ExpectText> expectations(const toml::node& n, std::string_view key) const {
        const auto* array = n.as_array();
        if (array == nullptr) fail(n, fmt::format("{} must be a list of strings, e.g. [\"writes.lost == 0\"]", key));
        std::vector<ExpectText> out;
        for (const auto& item : *array) {
            ExpectText e{text(item, key), {place(item)}};
            std::string error;
            if (!parse_expectation(e.text, error)) fail(item, error);
            out.push_back(std::move(e));
        }
        return out;
    }

    static std::string type_name(const toml::node& n) {
        switch (n.type()) {
            case toml::node_type::string: return "text";
            case toml::node_type::integer: return "a whole number";
            case toml::node_type::floating_point: return "a number";
            case toml::node_type::boolean: return "true/false";
            case toml::node_type::array: return "a list";
            case toml::node_type::table: return "a table";
            default: return "a date or time";
        }
    }

    const std::string& file() const noexcept { return file_; }

private:
    std::string file_;
    std::map<const toml::node*, std::string> from_set_;
};

void read_scenario_table(const Reader& r, const toml::table& t, ScenarioSpec& s) {
    r.only(t, "[scenario]", {"name", "description", "backends", "expect", "abort_on_fail", "abort_grace", "error_backoff"});
    if (const auto* n = t.get("name")) s.name = r.text(*n, "name");
    if (const auto* n = t.get("description")) s.description = r.text(*n, "description");
    if (const auto* n = t.get("backends")) {
        const auto* array = n->as_array();
        if (array == nullptr || array->empty()) r.fail(*n, "backends must be a list such as [\"sqlite\", \"postgresql\"]");
        s.backends.clear();
        for (const auto& item : *array) {
            const std::string name = r.text(item, "backends");
            if (name == "sqlite") s.backends.push_back(Backend::sqlite);
            else if (name == "postgresql") s.backends.push_back(Backend::postgresql);
            else if (name == "mariadb" || name == "mysql") s.backends.push_back(Backend::mariadb);
            else if (name == "null") s.backends.push_back(Backend::null);
            else r.fail(item, fmt::format("unknown backend '{}' (expected sqlite, postgresql, mariadb or null)", name));
        }
    }
    if (const auto* n = t.get("expect")) s.expect = r.expectations(*n, "expect");
    if (const auto* n = t.get("abort_on_fail")) s.abort_on_fail = r.expectations(*n, "abort_on_fail");
    if (const auto* n = t.get("abort_grace")) s.abort_grace = r.duration(*n, "abort_grace", true);
    if (const auto* n = t.get("error_backoff")) s.error_backoff = r.duration(*n, "error_backoff", true);
}

void read_pool_table(const Reader& r, const toml::table& t, PoolConfig& p, bool& writer_gate) {
    r.only(t, "[pool]",
           {"max_size", "min_idle", "core_size", "max_waiting", "max_connecting", "acquire_timeout",
            "validation_interval", "starvation_threshold", "idle_timeout", "max_lifetime", "max_lifetime_jitter",
            "keepalive_interval", "connect_attempts", "connect_backoff_base", "connect_backoff_max",
            "breaker_failures", "breaker_cooldown", "reset_on_release", "idle_order", "leak_threshold",
            "leak_reclaim_after", "leak_trace_every", "housekeeping_interval", "writer_gate"});
    if (const auto* n = t.get("writer_gate")) writer_gate = r.boolean(*n, "writer_gate");
    auto size = [&](const char* key, std::size_t& out, std::int64_t lo) {
        if (const auto* n = t.get(key)) out = static_cast<std::size_t>(r.integer(*n, key, lo, 10'000));
    };
    auto dur = [&](const char* key, std::chrono::milliseconds& out, bool zero) {
        if (const auto* n = t.get(key)) out = r.duration(*n, key, zero);
    };
    size("max_size", p.max_size, 1);
    size("min_idle", p.min_idle, 0);
    size("core_size", p.core_size, 0);
    size("max_waiting", p.max_waiting, 0);
    size("max_connecting", p.max_connecting, 1);
    dur("acquire_timeout", p.acquire_timeout, false);
    dur("validation_interval", p.validation_interval, true);
    if (const auto* n = t.get("starvation_threshold")) {
        p.starvation_threshold = std::chrono::duration_cast<std::chrono::microseconds>(r.duration(*n, "starvation_threshold", true));
    }
    dur("idle_timeout", p.idle_timeout, true);
    dur("max_lifetime", p.max_lifetime, true);
    if (const auto* n = t.get("max_lifetime_jitter")) p.max_lifetime_jitter = r.number(*n, "max_lifetime_jitter", 0, 1);
    dur("keepalive_interval", p.keepalive_interval, true);
    // The file's keys name PoolConfig::connect_retry's fields (a RetryPolicy).
    if (const auto* n = t.get("connect_attempts")) {
        p.connect_retry.max_attempts = static_cast<int>(r.integer(*n, "connect_attempts", 1, 100));
    }
    dur("connect_backoff_base", p.connect_retry.base, true);
    dur("connect_backoff_max", p.connect_retry.max, true);
    if (const auto* n = t.get("breaker_failures")) p.breaker_failures = static_cast<int>(r.integer(*n, "breaker_failures", 0, 1000));
    dur("breaker_cooldown", p.breaker_cooldown, false);
    if (const auto* n = t.get("reset_on_release")) p.reset_on_release = r.boolean(*n, "reset_on_release");
    if (const auto* n = t.get("idle_order")) {
        const std::string order = r.text(*n, "idle_order");
        if (order == "lifo") p.idle_order = IdleOrder::lifo;
        else if (order == "fifo") p.idle_order = IdleOrder::fifo;
        else r.fail(*n, fmt::format("idle_order must be \"lifo\" or \"fifo\" (got \"{}\")", order));
    }
    dur("leak_threshold", p.leak_threshold, true);
    dur("leak_reclaim_after", p.leak_reclaim_after, true);
    if (const auto* n = t.get("leak_trace_every")) p.leak_trace_every = static_cast<std::uint32_t>(r.integer(*n, "leak_trace_every", 0, 1'000'000));
    dur("housekeeping_interval", p.housekeeping_interval, false);
    try {
        p.validate();
    } catch (const ConfigError& e) {
        throw UsageFailure(fmt::format("{}: [pool]: {}", r.place(t), e.what()));
    }
}

FaultSpec read_fault(const Reader& r, const toml::table& t, const std::string& phase) {
    r.only(t, fmt::format("a [[phase.fault]] of phase '{}'", phase),
           {"kind", "at", "for", "mode", "table", "every", "latency", "jitter", "probability", "leaks", "holds", "hold_for", "node",
            "timeout", "expect"});
    FaultSpec f;
    f.where = {r.place(t)};
    const auto* kind = t.get("kind");
    if (kind == nullptr) r.fail(t, fmt::format("a fault of phase '{}' has no kind (one of: {})", phase, fault_kind_list()));
    const std::string kind_text = r.text(*kind, "kind");
    const auto k = parse_fault_kind(kind_text);
    if (!k) r.fail(*kind, fmt::format("unknown fault kind '{}' (one of: {})", kind_text, fault_kind_list()));
    f.kind = *k;
    if (const auto* n = t.get("at")) f.at = r.duration(*n, "at", true);
    if (const auto* n = t.get("for")) {
        if (ends_by_itself(f.kind)) {
            r.fail(*n, fmt::format("{} has no 'for': it ends when {}", kind_text,
                                   is_restart(f.kind) ? "--restart-command exits" : "the standby is promoted"));
        }
        f.duration = r.duration(*n, "for", false);
    } else if (!ends_by_itself(f.kind)) {
        r.fail(t, fmt::format("the {} fault of phase '{}' needs 'for' (how long it lasts, e.g. for = \"5s\")", kind_text, phase));
    }
    auto only_for = [&](const char* key, std::initializer_list<FaultKind> owners) -> const toml::node* {
        const auto* n = t.get(key);
        if (n != nullptr && std::find(owners.begin(), owners.end(), f.kind) == owners.end()) {
            std::string names;
            for (auto o : owners) names += (names.empty() ? "" : " and ") + std::string(to_string(o));
            r.fail(*n, fmt::format("'{}' applies to {} faults, not {}", key, names, kind_text));
        }
        return n;
    };
    if (const auto* n = only_for("mode", {FaultKind::sqlite_lock})) {
        f.mode = r.text(*n, "mode");
        if (f.mode != "write" && f.mode != "all") r.fail(*n, fmt::format("mode must be \"write\" or \"all\" (got \"{}\")", f.mode));
    }
    if (const auto* n = only_for("table", {FaultKind::pg_lock_table, FaultKind::mariadb_lock_table})) f.table = r.text(*n, "table");
    if (const auto* n = only_for("every", {FaultKind::pg_terminate_backends, FaultKind::mariadb_kill_connections})) f.every = r.duration(*n, "every", false);
    if (const auto* n = only_for("latency", {FaultKind::latency})) f.latency = r.duration(*n, "latency", true);
    if (const auto* n = only_for("jitter", {FaultKind::latency})) f.jitter = r.duration(*n, "jitter", true);
    if (f.kind == FaultKind::latency && f.latency.count() == 0 && f.jitter.count() == 0) {
        r.fail(t, "a latency fault needs latency (and optionally jitter), e.g. latency = \"50ms\"");
    }
    if (const auto* n = only_for("probability", {FaultKind::lost_replies})) {
        f.probability = r.number(*n, "probability", 0, 1);
        if (f.probability <= 0) r.fail(*n, "probability must be above 0 (the share of statements whose reply is lost, e.g. 0.1)");
    }
    if (const auto* n = only_for("leaks", {FaultKind::leak})) f.leaks = static_cast<std::uint32_t>(r.integer(*n, "leaks", 1, 1000));
    if (const auto* n = only_for("holds", {FaultKind::leak})) f.holds = static_cast<std::uint32_t>(r.integer(*n, "holds", 0, 1000));
    if (const auto* n = only_for("hold_for", {FaultKind::leak})) {
        f.hold_for = r.duration(*n, "hold_for", false);
        if (f.holds == 0) r.fail(*n, "hold_for applies only with holds (how long each legitimate hold lasts); add holds = N");
    }
    if (const auto* n = only_for("node", {FaultKind::replica_stop, FaultKind::replica_promote})) f.node = r.text(*n, "node");
    // Starting or reverting: 10 s, but a command (a restart, a replica stopped or started,
    // a promotion) gets a minute.
    f.timeout = is_restart(f.kind) || is_replica_fault(f.kind) ? std::chrono::milliseconds{60'000}
                                                               : std::chrono::milliseconds{10'000};
    if (const auto* n = t.get("timeout")) f.timeout = r.duration(*n, "timeout", false);
    if (const auto* n = t.get("expect")) f.expect = r.expectations(*n, "expect");
    // Where each key was set, so a check across keys (scenario_check.cpp) names the right one.
    for (auto&& [key, node] : t) f.key_where.emplace_back(std::string(key.str()), SourcePlace{r.place(node)});
    return f;
}

PhaseSpec read_phase(const Reader& r, const toml::table& t, std::size_t index) {
    r.only(t, "[[phase]]",
           {"name", "threads", "duration", "ops", "rate", "workload", "mix", "write_ratio", "rows", "writer_gate",
            "check_stalls", "expect", "fault"});
    PhaseSpec p;
    p.where = {r.place(t)};
    p.name = fmt::format("phase{}", index + 1);
    if (const auto* n = t.get("name")) p.name = r.text(*n, "name");
    if (p.name.empty() || p.name.find_first_of(". \t") != std::string::npos) {
        r.fail(t.get("name") != nullptr ? *t.get("name") : static_cast<const toml::node&>(t),
               fmt::format("phase name '{}' must be a non-empty word without dots or spaces (--set uses it)", p.name));
    }
    // The rows a phase writes carry RUN_ID-NAME (20 + 1 + name characters) in a key column
    // MariaDB bounds at 64: a longer name failed every write there (a user test).
    if (constexpr std::size_t max_name = 40; p.name.size() > max_name) {
        r.fail(*t.get("name"), fmt::format("phase name '{}' is {} characters long; use at most {} (it becomes part of "
                                           "the key of the rows the phase writes)",
                                           p.name, p.name.size(), max_name));
    }
    if (const auto* n = t.get("threads")) p.threads = static_cast<std::size_t>(r.integer(*n, "threads", 1, 10'000));
    const auto* duration = t.get("duration");
    const auto* ops = t.get("ops");
    if (duration != nullptr && ops != nullptr) r.fail(*ops, fmt::format("phase '{}' has both duration and ops; give one", p.name));
    if (duration == nullptr && ops == nullptr) {
        r.fail(t, fmt::format("phase '{}' has neither duration nor ops (e.g. duration = \"10s\" or ops = 10000)", p.name));
    }
    if (duration != nullptr) p.duration = r.duration(*duration, "duration", false);
    if (ops != nullptr) p.ops = static_cast<std::uint64_t>(r.integer(*ops, "ops", 1, 1'000'000'000'000));
    if (const auto* n = t.get("rate")) p.rate = r.number(*n, "rate", 0, 100'000'000);
    const auto* workload = t.get("workload");
    const auto* mix = t.get("mix");
    if (workload != nullptr && mix != nullptr) r.fail(*mix, fmt::format("phase '{}' has both workload and mix; give one", p.name));
    if (workload != nullptr) {
        const std::string w = r.text(*workload, "workload");
        const auto kind = parse_workload(w);
        if (!kind) {
            r.fail(*workload, fmt::format("unknown workload '{}' (one of: select1, read, write, mixed, read_write)", w));
        }
        p.workload.kind = *kind;
    }
    if (mix != nullptr) {
        const auto* table = mix->as_table();
        if (table == nullptr) r.fail(*mix, "mix must be a table of weights, e.g. mix = { read = 8, write = 2 }");
        r.only(*table, "mix", {"read", "write"});
        double read = 0, write = 0;
        if (const auto* n = table->get("read")) read = r.number(*n, "mix.read", 0, 1e9);
        if (const auto* n = table->get("write")) write = r.number(*n, "mix.write", 0, 1e9);
        if (read + write <= 0) r.fail(*mix, "mix needs a positive weight, e.g. mix = { read = 8, write = 2 }");
        p.workload.kind = write == 0 ? WorkloadKind::read : read == 0 ? WorkloadKind::write : WorkloadKind::mixed;
        p.workload.write_ratio = write / (read + write);
    }
    if (const auto* n = t.get("write_ratio")) {
        if (p.workload.kind != WorkloadKind::mixed || mix != nullptr) r.fail(*n, "write_ratio applies only to workload = \"mixed\"");
        p.workload.write_ratio = r.number(*n, "write_ratio", 0, 1);
    }
    if (const auto* n = t.get("writer_gate")) p.writer_gate = r.boolean(*n, "writer_gate");
    if (const auto* n = t.get("check_stalls")) p.check_stalls = r.boolean(*n, "check_stalls");
    if (const auto* n = t.get("rows")) p.workload.rows = static_cast<std::uint64_t>(r.integer(*n, "rows", 1, 100'000'000));
    if (const auto* n = t.get("expect")) p.expect = r.expectations(*n, "expect");
    if (const auto* n = t.get("fault")) {
        const auto* faults = n->as_array();
        if (faults == nullptr || !faults->is_array_of_tables()) r.fail(*n, "fault must be written as [[phase.fault]] tables");
        for (const auto& item : *faults) p.faults.push_back(read_fault(r, *item.as_table(), p.name));
    }
    // Where a fault outside its phase was made so: a --set of its times or of the phase's
    // duration first (the file was fine before it), else the fault's own keys.
    const toml::node* duration_node = t.get("duration");
    const std::string duration_place = duration_node != nullptr ? r.place(*duration_node) : std::string();
    const auto outside = [&](const FaultSpec& f) {
        const std::string& times = f.place_of({"at", "for"}).text;
        if (times.rfind("--set ", 0) != 0 && duration_place.rfind("--set ", 0) == 0) return duration_place;
        return times;
    };
    for (const auto& f : p.faults) {
        if (p.duration && f.at >= *p.duration) {
            throw UsageFailure(fmt::format("{}: the {} fault starts at {} ms, {} phase '{}' ends ({} ms); move 'at' "
                                           "into the phase or lengthen it",
                                           outside(f), to_string(f.kind), f.at.count(),
                                           f.at == *p.duration ? "as" : "after", p.name, p.duration->count()));
        }
        // A fault cut short by its phase's end would measure nothing after it.
        if (p.duration && !is_restart(f.kind) && f.at + f.duration > *p.duration) {
            throw UsageFailure(fmt::format("{}: the {} fault ends at {} ms, after phase '{}' ends ({} ms); shorten "
                                           "'for' or lengthen the phase",
                                           outside(f), to_string(f.kind), (f.at + f.duration).count(), p.name,
                                           p.duration->count()));
        }
    }
    return p;
}

}  // namespace

ScenarioSpec load_scenario(const fs::path& path, const std::vector<std::string>& sets) {
    const std::string file = path.string();
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw UsageFailure(fmt::format("scenario {} is a directory; give a .toml file", file));
    if (!fs::exists(path, ec)) throw UsageFailure(fmt::format("scenario file {} does not exist", file));
    toml::table root;
    try {
        root = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
        std::string why(e.description());
        // toml++'s words for a [[phase.fault]] above its [[phase]] (the first [[phase]]
        // then finds "phase" already a table): say what to move.
        if (why.find("'phase' as array-of-tables") != std::string::npos) {
            why += " (a [[phase.fault]] belongs to the [[phase]] above it: put each fault after its phase)";
        }
        throw UsageFailure(fmt::format("{}:{}:{}: {}", file, e.source().begin.line, e.source().begin.column, why));
    }
    std::map<const toml::node*, std::string> from_set = apply_sets(root, sets);

    const Reader r(file, std::move(from_set));
    r.only(root, "the file", {"scenario", "database", "pool", "phase"});
    ScenarioSpec s;
    s.source = file;
    s.name = path.stem().string();
    if (const auto* n = root.get("scenario")) {
        if (!n->is_table()) r.fail(*n, "[scenario] must be a table");
        read_scenario_table(r, *n->as_table(), s);
    }
    if (const auto* n = root.get("database")) {
        if (!n->is_table()) r.fail(*n, "[database] must be a table");
        const toml::table& db = *n->as_table();
        r.only(db, "[database]", {"url", "replicas", "shards", "shard_urls", "read_strategy"});
        if (const auto* u = db.get("url")) s.db_url = r.text(*u, "url");
        // Several pools (topology.hpp): read replicas of the url, or shards.
        auto urls = [&](const toml::node& list, std::string_view key) {
            const auto* a = list.as_array();
            if (a == nullptr || a->empty()) r.fail(list, fmt::format("{} must be a list of URLs, e.g. {} = [\"postgresql://...\"]", key, key));
            std::vector<std::string> out;
            for (const auto& item : *a) out.push_back(r.text(item, key));
            return out;
        };
        s.topology.origin = "file";
        if (const auto* v = db.get("replicas")) s.topology.replicas = urls(*v, "replicas");
        if (const auto* v = db.get("shards")) s.topology.shards = static_cast<std::size_t>(r.integer(*v, "shards", 1, max_shards));
        if (const auto* v = db.get("shard_urls")) s.topology.shard_urls = urls(*v, "shard_urls");
        if (const auto* v = db.get("read_strategy")) {
            const std::string text = r.text(*v, "read_strategy");
            s.topology.read_strategy = parse_read_strategy(text);
            if (!s.topology.read_strategy) r.fail(*v, fmt::format("unknown read_strategy '{}' (one of: round_robin, random, least_active)", text));
        }
    }
    s.pool.name = "poolbench";
    if (const auto* n = root.get("pool")) {
        if (!n->is_table()) r.fail(*n, "[pool] must be a table");
        read_pool_table(r, *n->as_table(), s.pool, s.writer_gate);
    }
    const bool backends_given = root.get("scenario") != nullptr && root.get("scenario")->as_table() != nullptr &&
                                root.get("scenario")->as_table()->get("backends") != nullptr;
    const auto* phases = root.get("phase");
    if (phases == nullptr) throw UsageFailure(fmt::format("{}: the scenario has no [[phase]]; add at least one", file));
    if (!phases->is_array_of_tables()) r.fail(*phases, "phases must be written as [[phase]] tables");
    std::size_t index = 0;
    for (const auto& node : *phases->as_array()) {
        PhaseSpec p = read_phase(r, *node.as_table(), index++);
        for (const auto& other : s.phases) {
            if (other.name == p.name) throw UsageFailure(fmt::format("{}: a second phase is named '{}'", p.where.text, p.name));
        }
        s.phases.push_back(std::move(p));
    }
    // The backends: as listed, each able to run every fault; or, unlisted, those that can.
    for (const auto& p : s.phases) {
        for (const auto& f : p.faults) {
            const auto can = fault_backends(f.kind);
            std::vector<Backend> kept;
            for (auto b : s.backends) {
                if (std::find(can.begin(), can.end(), b) != can.end()) {
                    kept.push_back(b);
                } else if (backends_given) {
                    throw UsageFailure(fmt::format("{}: [scenario] backends lists {}, but a {} fault cannot run there",
                                                   f.where.text, to_string(b), to_string(f.kind)));
                }
            }
            s.backends = std::move(kept);
        }
    }
    if (s.backends.empty()) {
        throw UsageFailure(fmt::format("{}: no backend can run all of this scenario's faults; split it into one "
                                       "scenario per backend",
                                       file));
    }
    return s;
}

}  // namespace poolbench::cli
