// test_diagnose_sizing.cpp — diagnose's pool-size arithmetic (src/diagnose_sizing.cpp),
// tested directly: cores x 2 + spindles, shared by instances, bounded by free connections,
// min_idle from the connect cost, and the ladder's knee.
#include "../../src/diagnose.hpp"

#include <catch2/catch.hpp>

using namespace poolbench::cli;  // NOLINT(google-build-using-namespace): test file

namespace {

SizingInput input(std::optional<std::int64_t> cores, std::optional<std::int64_t> free, std::int64_t instances) {
    SizingInput in;
    in.server_cores = cores;
    in.cores_source = "--server-cores";
    in.free_connections = free;
    in.app_instances = instances;
    in.connect_ms = 3.0;
    in.round_trip_us = 60.0;
    return in;
}

bool says(const Sizing& s, const std::string& text) {
    for (const auto& r : s.reasoning) {
        if (r.find(text) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("pool size: cores x 2 + one spindle, for one instance with room", "[diagnose][sizing]") {
    const Sizing s = recommend_pool_size(input(4, 100, 1));
    CHECK(s.formula == 9);
    CHECK(s.per_instance == 9);
    CHECK(s.cap == 100);
    CHECK(s.max_size == 9);
    CHECK(says(s, "4 cores (--server-cores) x 2 + 1 effective spindle (assumed"));
    // 3 ms against 60 us is 50x: keep the connections.
    CHECK(s.min_idle == 9);
    CHECK(says(s, "50x"));
}

TEST_CASE("pool size: shared by instances, rounded up, and bounded by free connections / instances",
          "[diagnose][sizing]") {
    const Sizing shared = recommend_pool_size(input(8, 1000, 4));
    CHECK(shared.formula == 17);
    CHECK(shared.per_instance == 5);  // 17 / 4 rounded up
    CHECK(shared.max_size == 5);
    CHECK(says(shared, "shared by 4 application instances: 5 each"));

    const Sizing bounded = recommend_pool_size(input(8, 10, 4));
    CHECK(bounded.cap == 2);  // 10 / 4 rounded down
    CHECK(bounded.max_size == 2);
    CHECK(says(bounded, "bounded by the free connections: 2 instead of 5"));

    const Sizing none = recommend_pool_size(input(8, 0, 1));
    CHECK(none.max_size == 0);
    CHECK(says(none, "no connection is free"));
}

TEST_CASE("pool size: unknown cores give no size but the cap, and cheap connects let idle ones go", "[diagnose][sizing]") {
    const Sizing unknown = recommend_pool_size(input(std::nullopt, 50, 2));
    CHECK_FALSE(unknown.max_size);
    CHECK(unknown.cap == 25);
    CHECK(says(unknown, "--server-cores N"));

    SizingInput cheap = input(2, std::nullopt, 1);
    cheap.connect_ms = 0.1;
    cheap.round_trip_us = 20;  // 5x
    cheap.single_writer = true;
    const Sizing s = recommend_pool_size(cheap);
    CHECK(s.max_size == 5);
    CHECK_FALSE(s.cap);
    CHECK(s.min_idle == 1);
    CHECK(says(s, "one writer at a time"));
}

TEST_CASE("ladder knee: the last step before one that adds less than 10%", "[diagnose][sizing]") {
    CHECK(ladder_knee({{1, 1000}, {2, 1900}, {4, 3500}, {8, 3600}}) == 4);
    CHECK(ladder_knee({{1, 1000}, {2, 1050}}) == 1);
    CHECK_FALSE(ladder_knee({{1, 1000}, {2, 2000}, {4, 4000}}));
    CHECK_FALSE(ladder_knee({{1, 1000}}));
}

TEST_CASE("pool size: more instances than free connections is said, never a silent max_size 0", "[diagnose][sizing]") {
    DiagnoseResult r;
    r.db.backend = poolbench::Backend::postgresql;
    r.sizing_input = input(4, 5, 8);
    r.sizing = recommend_pool_size(r.sizing_input);
    CHECK(r.sizing.instances_exceed_free);
    CHECK_FALSE(r.sizing.max_size.has_value());
    CHECK(says(r.sizing, "8 instances need at least one connection each, but the server has only 5 free"));
    add_cli_findings(r);
    REQUIRE(r.diagnosis.findings.size() == 1);
    const auto& f = r.diagnosis.findings.front();
    CHECK(f.code == "instances_exceed_free_connections");
    CHECK(f.level == poolbench::FindingLevel::problem);
    CHECK(f.action.find("PgBouncer") != std::string::npos);
    CHECK(f.action.find("max_connections") != std::string::npos);
    CHECK(r.problems == 1);
}
