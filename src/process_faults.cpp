// process_faults.cpp — the in-process faults: what FaultDriver injects in front of the
// run's own driver (connections dropped and refused, latency, lost replies).
#include "faults.hpp"

#include <poolbench/drivers.hpp>

#include <fmt/format.h>

#include <cmath>

namespace poolbench::cli {

namespace {

class ConnectionStorm final : public ActiveFault {
public:
    explicit ConnectionStorm(const FaultTargets& t) : settings_(t.settings) {
        // Dropping first: once anything fails, nothing succeeds until the fault ends.
        settings_->drop_probability = 1.0;
        settings_->refuse_connect = true;
        if (t.pool != nullptr) t.pool->evict_all();
    }
    void stop() override {
        settings_->drop_probability = 0.0;
        settings_->refuse_connect = false;
    }
    [[nodiscard]] std::string detail() const override {
        return "every pooled connection dropped on its next statement, idle ones evicted, new connections refused";
    }

private:
    std::shared_ptr<FaultSettings> settings_;
};

class Latency final : public ActiveFault {
public:
    Latency(const FaultSpec& spec, const FaultTargets& t) : settings_(t.settings), spec_(spec) {
        settings_->query_latency_us = static_cast<std::uint32_t>(spec.latency.count() * 1000);
        settings_->query_jitter_us = static_cast<std::uint32_t>(spec.jitter.count() * 1000);
    }
    void stop() override {
        settings_->query_latency_us = 0;
        settings_->query_jitter_us = 0;
    }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("{} ms + 0..{} ms added to each statement", spec_.latency.count(), spec_.jitter.count());
    }

private:
    std::shared_ptr<FaultSettings> settings_;
    FaultSpec spec_;
};

class LostReplies final : public ActiveFault {
public:
    LostReplies(const FaultSpec& spec, const FaultTargets& t) : settings_(t.settings), probability_(spec.probability) {
        settings_->lose_reply_probability = probability_;
    }
    void stop() override { settings_->lose_reply_probability = 0.0; }
    [[nodiscard]] std::string detail() const override {
        return fmt::format("{:g}% of statements ran, then lost their reply with their connection (a COMMIT's "
                           "outcome in doubt)",
                           std::round(probability_ * 1000.0) / 10.0);
    }

private:
    std::shared_ptr<FaultSettings> settings_;
    double probability_;
};

}  // namespace

std::unique_ptr<ActiveFault> start_process_fault(const FaultSpec& spec, FaultTargets& targets) {
    if (!targets.settings) throw FaultFailure(fmt::format("{} needs the run's fault driver", to_string(spec.kind)));
    switch (spec.kind) {
        case FaultKind::connection_storm: return std::make_unique<ConnectionStorm>(targets);
        case FaultKind::latency: return std::make_unique<Latency>(spec, targets);
        case FaultKind::lost_replies: return std::make_unique<LostReplies>(spec, targets);
        default: break;
    }
    throw FaultFailure(fmt::format("{} is not an in-process fault", to_string(spec.kind)));
}

}  // namespace poolbench::cli
