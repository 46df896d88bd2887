// node_faults.cpp — replica.stop and replica.promote (node_faults.hpp).
#include "node_faults.hpp"

#include "child_process.hpp"

#include <poolbench/error.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace poolbench::cli {

using Clock = std::chrono::steady_clock;

namespace {

const FaultTargets::NodeTarget& find_node(const FaultSpec& spec, const FaultTargets& t) {
    const std::string name = replica_fault_node(spec);
    for (const auto& n : t.nodes) {
        if (n.name == name && n.role == "replica") return n;
    }
    std::string replicas;
    for (const auto& n : t.nodes) {
        if (n.role == "replica") replicas += (replicas.empty() ? "" : ", ") + n.name;
    }
    throw FaultFailure(replicas.empty()
                           ? fmt::format("{} needs a run with replicas (--replica URL, or [database] replicas)",
                                         to_string(spec.kind))
                           : fmt::format("{}: no replica '{}' (this run's: {})", to_string(spec.kind), name, replicas));
}

std::vector<std::string> node_env(const FaultTargets::NodeTarget& n) {
    return {"POOLBENCH_NODE=" + n.name, "POOLBENCH_NODE_HOST=" + n.db.host,
            "POOLBENCH_NODE_PORT=" + (n.db.port != 0 ? std::to_string(n.db.port) : std::string())};
}

double ms_since(Clock::time_point from) {
    return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
}

/// Runs one of the node commands; throws FaultFailure naming its flag when it fails.
std::string run_node_command(const char* flag, const std::string& command, const FaultTargets::NodeTarget& n,
                             std::chrono::milliseconds timeout) {
    const auto began = Clock::now();
    const CommandOutcome out = run_command(command, node_env(n), timeout);
    if (!out.ok) {
        // Its last lines, on one line: the error is one line of the report.
        std::string said = last_lines(out.output, 3);
        std::replace(said.begin(), said.end(), '\n', ' ');
        throw FaultFailure(fmt::format("{} for {}: {}{}", flag, n.name, out.status, said.empty() ? "" : ": " + said));
    }
    return fmt::format("{} {} in {:.0f} ms", flag, out.status, ms_since(began));
}

class ReplicaStop final : public ActiveFault {
public:
    ReplicaStop(const FaultSpec& spec, const FaultTargets& t) : node_(find_node(spec, t)), commands_(t.node_commands), timeout_(spec.timeout) {
        if (commands_.stop.empty() || commands_.start.empty()) {
            throw FaultFailure("replica.stop needs --replica-stop-command CMD and --replica-start-command CMD (for the "
                               "throwaway standby: scripts/pg_sandbox.sh halt DIR and resume DIR)");
        }
        try {
            detail_ = run_node_command("--replica-stop-command", commands_.stop, node_, timeout_);
        } catch (const FaultFailure& e) {
            // A stop command that failed or hung may have stopped the server all the same
            // (it failed after stopping it, or was killed at its timeout): the fault did not
            // start, but what it may have done is undone, as every fault is.
            std::string revert;
            try {
                revert = "; started again: " + run_node_command("--replica-start-command", commands_.start, node_, timeout_);
            } catch (const FaultFailure& again) {
                revert = fmt::format("; {} may still be stopped: {}", node_.name, again.what());
            }
            throw FaultFailure(std::string(e.what()) + revert);
        }
    }
    void stop() override {
        try {
            detail_ += "; " + run_node_command("--replica-start-command", commands_.start, node_, timeout_);
        } catch (const FaultFailure& e) {
            throw FaultFailure(fmt::format("{}; {} may still be stopped: start it by hand", e.what(), node_.name));
        }
    }
    [[nodiscard]] std::string detail() const override { return node_.name + ": " + detail_; }
    [[nodiscard]] std::optional<Clock::time_point> started_at() const override { return began_; }

private:
    Clock::time_point began_ = Clock::now();
    FaultTargets::NodeTarget node_;
    NodeCommands commands_;
    std::chrono::milliseconds timeout_;
    std::string detail_;
};

class ReplicaPromote final : public ActiveFault {
public:
    ReplicaPromote(const FaultSpec& spec, const FaultTargets& t) : node_(find_node(spec, t)) {
        if (!t.node_commands.promote.empty()) {
            detail_ = run_node_command("--promote-command", t.node_commands.promote, node_, spec.timeout);
        } else {
            promote_by_sql(spec.timeout);
        }
        detail_ += "; it is a primary now: rebuild it as a standby (pg_basebackup -R) before it serves as a replica again";
    }
    [[nodiscard]] bool finished() override { return true; }
    void stop() override {}  // a promotion cannot be undone
    [[nodiscard]] std::string detail() const override { return node_.name + ": " + detail_; }
    [[nodiscard]] std::optional<Clock::time_point> started_at() const override { return began_; }

private:
    void promote_by_sql(std::chrono::milliseconds timeout) {
        if (!node_.driver) throw FaultFailure(fmt::format("replica.promote: no connection to {}", node_.name));
        const auto seconds = std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
        auto conn = node_.driver->connect(Clock::now() + timeout);
        try {
            const Rows r = conn->query(fmt::format("SELECT pg_promote(true, {})::int", seconds));
            if (r.int_at(0, 0) != 1) {
                throw FaultFailure(fmt::format("pg_promote() on {} did not finish within {} s", node_.name, seconds));
            }
        } catch (const QueryError& e) {
            if (e.code() == "42501") {
                throw FaultFailure(fmt::format(
                    "pg_promote() on {} was refused: {}; a superuser can GRANT EXECUTE ON FUNCTION pg_promote(boolean, "
                    "integer) TO {} on the primary (it replicates), or pass --promote-command CMD",
                    node_.name, e.what(), node_.db.user.empty() ? "the run's role" : node_.db.user));
            }
            throw;
        }
        detail_ = fmt::format("pg_promote() returned after {:.0f} ms", ms_since(began_));
    }

    Clock::time_point began_ = Clock::now();
    FaultTargets::NodeTarget node_;
    std::string detail_;
};

}  // namespace

std::unique_ptr<ActiveFault> start_node_fault(const FaultSpec& spec, FaultTargets& targets) {
    if (spec.kind == FaultKind::replica_stop) return std::make_unique<ReplicaStop>(spec, targets);
    return std::make_unique<ReplicaPromote>(spec, targets);
}

}  // namespace poolbench::cli
