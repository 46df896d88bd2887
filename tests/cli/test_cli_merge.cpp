// `poolbench merge`: reports of several agents merged exactly (counts, histograms), the
// span rule for throughput, expectations on the merged figures, refusals, and the
// Kubernetes manifest that runs agents and the merge.
#include "cli_support.hpp"

#include "../../src/report_json.hpp"
#include "../../src/report_merge.hpp"
#include "../../src/report_read.hpp"

#include <poolbench/histogram.hpp>

#include <cmath>
#include <map>
#include <random>

using namespace clitest;
using poolbench::Histogram;

namespace {

/// Summed buckets of the reports' op latency, by upper bound in ns (an independent reading).
std::map<std::uint64_t, std::uint64_t> summed_buckets(const std::vector<json>& reports, const char* kind = "op") {
    std::map<std::uint64_t, std::uint64_t> out;
    for (const auto& r : reports) {
        for (const auto& b : r.at("latency_us").at(kind).at("buckets")) {
            out[static_cast<std::uint64_t>(std::llround(b[0].get<double>() * 1000))] += b[1].get<std::uint64_t>();
        }
    }
    return out;
}

/// The bucket [low, high] in ns holding the q-th value of `buckets` (rank ceil(q * n)).
std::pair<double, double> bucket_of_quantile(const std::map<std::uint64_t, std::uint64_t>& buckets, double q) {
    std::uint64_t n = 0;
    for (const auto& [high, c] : buckets) n += c;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n))));
    std::uint64_t seen = 0;
    for (const auto& [high, c] : buckets) {
        seen += c;
        if (seen >= rank) {
            const std::size_t index = Histogram::bucket_of(high);
            return {static_cast<double>(Histogram::bucket_low(index)), static_cast<double>(high)};
        }
    }
    return {0, 0};
}

json read_json(const fs::path& p) { return parse_json(slurp(p)); }

void check_merged(const json& merged, const std::vector<json>& agents) {
    std::uint64_t total = 0, ok = 0, count = 0;
    double start = INFINITY, end = -INFINITY;
    for (const auto& a : agents) {
        total += a.at("ops").at("total").get<std::uint64_t>();
        ok += a.at("ops").at("ok").get<std::uint64_t>();
        count += a.at("latency_us").at("op").at("count").get<std::uint64_t>();
        start = std::min(start, a.at("load_started_at_unix_ms").get<double>());
        end = std::max(end, a.at("load_ended_at_unix_ms").get<double>());
        CHECK(a.at("load_ended_at_unix_ms").get<double>() >= a.at("load_started_at_unix_ms").get<double>());
    }
    CHECK(merged.at("ops").at("total").get<std::uint64_t>() == total);
    CHECK(merged.at("ops").at("ok").get<std::uint64_t>() == ok);
    CHECK(merged.at("latency_us").at("op").at("count").get<std::uint64_t>() == count);
    CHECK(merged.at("merged_from").size() == agents.size());
    // Exactly the buckets one run of all the operations would have filled.
    CHECK(summed_buckets({merged}) == summed_buckets(agents));
    CHECK(summed_buckets({merged}, "acquire") == summed_buckets(agents, "acquire"));
    // Percentiles from the union's buckets: the merged p50/p99 lie in the same bucket.
    for (const auto& [q, key] : std::vector<std::pair<double, const char*>>{{0.5, "p50"}, {0.99, "p99"}, {0.999, "p999"}}) {
        const auto [low, high] = bucket_of_quantile(summed_buckets(agents), q);
        const double got = merged.at("latency_us").at("op").at(key).get<double>() * 1000;
        INFO(key << " " << got << " ns, bucket [" << low << ", " << high << "]");
        CHECK(got >= low - 1);
        CHECK(got <= high + 1);
    }
    // Throughput: every successful operation over the earliest load start to the latest end.
    const double span_s = (end - start) / 1000;
    REQUIRE(span_s > 0);
    CHECK(merged.at("load_duration_s").get<double>() == Approx(span_s).margin(0.002));
    CHECK(merged.at("throughput_ops_s").get<double>() == Approx(static_cast<double>(ok) / span_s).epsilon(0.005));
    // The merged timeline holds the operations (binned; rates kept to 3 decimals, times to
    // the millisecond: a check for runs long enough for that to be small).
    if (span_s < 0.5) return;
    double timeline_ops = 0;
    double previous = (merged.at("load_started_at_unix_ms").get<double>() - merged.at("started_at_unix_ms").get<double>()) / 1000;
    for (const auto& p : merged.at("timeline")) {
        timeline_ops += p.at("ops_s").get<double>() * (p.at("t_s").get<double>() - previous);
        previous = p.at("t_s").get<double>();
    }
    CHECK(timeline_ops == Approx(static_cast<double>(ok)).epsilon(0.05));
}

}  // namespace

TEST_CASE("merge: two histograms merged from their JSON buckets equal one histogram of the union", "[cli][merge]") {
    std::mt19937_64 rng(42);
    std::lognormal_distribution<double> dist(11.0, 1.5);  // ~60 us median, a long tail
    std::vector<std::uint64_t> a, b, all;
    for (int i = 0; i < 50'000; ++i) {
        const auto v = static_cast<std::uint64_t>(dist(rng));
        (i % 3 == 0 ? a : b).push_back(v);
        all.push_back(v);
    }
    Histogram ha, hb, hu;
    for (auto v : a) ha.record(v);
    for (auto v : b) hb.record(v);
    for (auto v : all) hu.record(v);
    // Through the report's JSON, as two agents' files would carry them.
    const auto ja = poolbench::cli::latency_json(poolbench::cli::summarize_ns(ha));
    const auto jb = poolbench::cli::latency_json(poolbench::cli::summarize_ns(hb));
    Histogram merged = poolbench::cli::histogram_from_json(nlohmann::ordered_json::parse(ja.dump()), "a");
    merged.merge(poolbench::cli::histogram_from_json(nlohmann::ordered_json::parse(jb.dump()), "b"));
    REQUIRE(merged.count() == hu.count());
    for (std::size_t i = 0; i < Histogram::bucket_count; ++i) REQUIRE(merged.count_in(i) == hu.count_in(i));
    CHECK(merged.min() == hu.min());
    CHECK(merged.max() == hu.max());
    CHECK(merged.mean() == Approx(hu.mean()).margin(1.0));
    std::sort(all.begin(), all.end());
    for (const double q : {0.5, 0.9, 0.99, 0.999}) {
        CHECK(merged.percentile(q) == hu.percentile(q));
        // Within one bucket of the exact value from the union of the samples.
        const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(all.size())));
        const std::uint64_t exact = all[rank - 1];
        const std::size_t bucket = Histogram::bucket_of(exact);
        const auto width = Histogram::bucket_high(bucket) - Histogram::bucket_low(bucket) + 1;
        INFO("q " << q << " exact " << exact << " merged " << merged.percentile(q));
        CHECK(std::llabs(static_cast<long long>(merged.percentile(q)) - static_cast<long long>(exact)) <=
              static_cast<long long>(width));
    }
    // A count that the buckets do not hold is refused, not trusted.
    auto bad = nlohmann::ordered_json::parse(ja.dump());
    bad["count"] = bad["count"].get<std::uint64_t>() + 1;
    CHECK_THROWS_WITH(poolbench::cli::histogram_from_json(bad, "bad"), Catch::Contains("count says"));
}

TEST_CASE("merge: timeline bins sum the agents' operations on the common clock", "[cli][merge]") {
    using poolbench::cli::TimelinePoint;
    auto point = [](double t, double ops_s, std::size_t active) {
        TimelinePoint p;
        p.t_s = t;
        p.ops_s = ops_s;
        p.active = active;
        return p;
    };
    // Agent A from 0 s, agent B started 1 s later; 1 s samples, loads from their starts.
    const std::vector<poolbench::cli::TimelineSource> timelines{
        {{point(1, 100, 2), point(2, 100, 2), point(3, 100, 2)}, 0.0, {{0.0, 1.0}}},
        {{point(1, 50, 3), point(2, 50, 3)}, 1.0, {{0.0, 1.0}}}};
    const auto merged = poolbench::cli::merge_timeline(timelines, 1.0);
    REQUIRE(merged.size() == 3);
    CHECK(merged[0].ops_s == Approx(100));
    CHECK(merged[0].active == 2);
    CHECK(merged[1].ops_s == Approx(150));
    CHECK(merged[1].active == 5);
    CHECK(merged[2].ops_s == Approx(150));
    CHECK(merged[2].t_s == Approx(3));
}

TEST_CASE("merge: a run split into two agents equals the union of their samples", "[cli][merge]") {
    TempDir dir;
    const auto a = dir.path() / "a";
    const auto b = dir.path() / "b";
    fs::create_directories(a);
    fs::create_directories(b);
    // Long enough for the timeline (1 ms resolution) to hold the operations to a few percent.
    const std::vector<std::string> args{"stress", "--db", "null://", "--threads", "2", "--duration", "1s", "--no-progress"};
    auto with = [&](std::string json) {
        auto v = args;
        v.push_back("--json");
        v.push_back(std::move(json));
        return v;
    };
    const pid_t pa = spawn_in(a, with((dir.path() / "a.json").string()));
    const pid_t pb = spawn_in(b, with((dir.path() / "b.json").string()));
    const auto ra = finish(a, pa);
    const auto rb = finish(b, pb);
    REQUIRE(ra.code == 0);
    REQUIRE(rb.code == 0);
    const auto r = run_in(dir.path(), {"merge", "a.json", "b.json", "-o", "all.json", "--html", "all.html", "--junit",
                                       "all.xml"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("merged 2 reports") != std::string::npos);
    const json merged = read_json(dir.path() / "all.json");
    check_merged(merged, {read_json(dir.path() / "a.json"), read_json(dir.path() / "b.json")});
    CHECK(merged.at("config").at("threads") == 4);
    const auto total = std::to_string(merged.at("ops").at("total").get<std::uint64_t>());
    CHECK(merged.at("verdict") == "pass");
    CHECK(slurp(dir.path() / "all.xml").find("<testsuite") != std::string::npos);
    CHECK(slurp(dir.path() / "all.html").find("<html") != std::string::npos);
    // --expect adds an expectation on the merged report: a failing one is exit 1.
    const auto pass = run_in(dir.path(), {"merge", "a.json", "b.json", "-o", "two.json", "--expect", "ops.total == " + total});
    INFO(pass.out << pass.err);
    CHECK(pass.code == 0);
    const auto fail = run_in(dir.path(), {"merge", "a.json", "b.json", "-o", "two.json", "--expect", "ops.total < " + total});
    CHECK(fail.code == 1);
    CHECK(fail.out.find("FAILED: ops.total < " + total) != std::string::npos);
    CHECK(read_json(dir.path() / "two.json").at("verdict") == "fail");
}

TEST_CASE("merge: three concurrent agents on one SQLite file, expectations on the merged figures", "[cli][merge]") {
    TempDir dir;
    const std::string db = "sqlite://" + (dir.path() / "shared.db").string();
    // Each agent stays under 1500 operations; together they do not.
    write_file(dir.path() / "agents.toml", "[scenario]\ndescription = \"one agent's share\"\n"
                                          "expect = [\"ops.failed == 0\", \"ops.total <= 1500\"]\n"
                                          "[pool]\nmax_size = 2\n"
                                          "[[phase]]\nname = \"load\"\nthreads = 2\nops = 1000\nworkload = \"select1\"\n");
    std::vector<pid_t> pids;
    std::vector<fs::path> dirs;
    for (int i = 0; i < 3; ++i) {
        dirs.push_back(dir.path() / ("agent" + std::to_string(i)));
        fs::create_directories(dirs.back());
        pids.push_back(spawn_in(dirs.back(), {"run", (dir.path() / "agents.toml").string(), "--db", db, "--no-progress",
                                              "--json", (dir.path() / ("r" + std::to_string(i) + ".json")).string()}));
    }
    std::vector<json> agents;
    for (int i = 0; i < 3; ++i) {
        const auto r = finish(dirs[static_cast<std::size_t>(i)], pids[static_cast<std::size_t>(i)]);
        INFO(r.out << r.err);
        REQUIRE(r.code == 0);
        agents.push_back(read_json(dir.path() / ("r" + std::to_string(i) + ".json")));
    }
    const auto r = run_in(dir.path(), {"merge", "r0.json", "r1.json", "r2.json", "-o", "all.json"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);  // ops.total <= 1500 held in each agent's run, not in the merged one
    const json merged = read_json(dir.path() / "all.json");
    check_merged(merged, agents);
    CHECK(merged.at("ops").at("total") == 3000);
    CHECK(merged.at("verdict") == "fail");
    bool found = false;
    for (const auto& e : merged.at("expectations")) {
        if (e.at("name") == "ops.total <= 1500") {
            found = true;
            CHECK(e.at("actual") == 3000);
            CHECK(e.at("passed") == false);
        }
    }
    CHECK(found);
    REQUIRE(merged.at("phases").size() == 1);
    CHECK(merged.at("phases")[0].at("ops").at("total") == 3000);
}

TEST_CASE("merge: inputs that cannot be merged are refused with exit 2", "[cli][merge]") {
    TempDir dir;
    REQUIRE(run_in(dir.path(), {"stress", "--db", "null://", "--threads", "2", "--ops", "500", "--no-progress", "--json",
                                "good.json"})
                .code == 0);
    const json good = read_json(dir.path() / "good.json");
    auto variant = [&](const std::string& name, const std::function<void(json&)>& change) {
        json j = good;
        change(j);
        write_file(dir.path() / name, j.dump());
    };
    write_file(dir.path() / "text.json", "not json at all");
    write_file(dir.path() / "other.json", R"({"schema": "poolbench/compare@1"})");
    variant("v2.json", [](json& j) { j["schema"] = "poolbench/report@2"; });
    variant("error.json", [](json& j) {
        j["verdict"] = "error";
        j["error"] = {{"exit_code", 3}, {"message", "database unusable"}};
    });
    variant("old.json", [](json& j) {
        for (auto& [k, v] : j["latency_us"].items()) v.erase("buckets");
        j.erase("load_started_at_unix_ms");
    });
    variant("soak.json", [](json& j) { j["command"] = "soak"; });
    variant("scenario.json", [](json& j) { j["scenario"] = "another"; });
    variant("layout.json", [](json& j) { j["histogram"]["sub_bits"] = 5; });
    for (const auto& [file, says] : std::vector<std::pair<std::string, std::string>>{
             {"missing.json", "cannot read missing.json"},
             {"good.json", "is the same run as good.json"},
             {"text.json", "is not valid JSON"},
             {"other.json", "is not a poolbench report"},
             {"v2.json", "has schema 'poolbench/report@2'"},
             {"error.json", "is an error report"},
             {"old.json", "re-run that agent with this version"},
             {"soak.json", "merge reports of one command and scenario"},
             {"scenario.json", "merge reports of one command and scenario"},
             {"layout.json", "different histogram layouts"}}) {
        const auto r = run_in(dir.path(), {"merge", "good.json", file, "-o", "all.json"});
        INFO(file << ": " << r.err);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(says) != std::string::npos);
        // The output says the merge failed: no stale green file.
        CHECK(read_json(dir.path() / "all.json").at("verdict") == "error");
    }
    // An output naming an input would destroy an agent's report: refused, the input intact.
    const std::string before = slurp(dir.path() / "good.json");
    const auto r = run_in(dir.path(), {"merge", "good.json", "soak.json", "-o", "good.json"});
    CHECK(r.code == 2);
    CHECK(r.err.find("one of merge's inputs") != std::string::npos);
    CHECK(slurp(dir.path() / "good.json") == before);
    // A bad --expect is bad usage too.
    const auto e = run_in(dir.path(), {"merge", "good.json", "-o", "all.json", "--expect", "no.such.path > 1"});
    CHECK(e.code == 2);
}

TEST_CASE("merge: the Kubernetes Indexed Job manifest parses and runs agents then poolbench merge", "[cli][merge]") {
    const std::string manifest = std::string(POOLBENCH_SOURCE_DIR) + "/deploy/k8s/poolbench-agents.yaml";
    const std::string checker = std::string(POOLBENCH_SOURCE_DIR) + "/tests/cli/check_k8s_manifest.py";
    TempDir dir;
    const std::string cmd = "python3 '" + checker + "' '" + manifest + "' > '" + (dir.path() / "out.txt").string() + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    INFO(slurp(dir.path() / "out.txt"));
    CHECK(rc == 0);
}
