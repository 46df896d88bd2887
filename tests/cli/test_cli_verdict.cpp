// test_cli_verdict.cpp — the run's built-in checks: what fails a run that asked nothing.
#include "cli_support.hpp"

using namespace clitest;  // NOLINT(google-build-using-namespace): test file

TEST_CASE("run: a phase in which every operation failed fails the run, with or without expectations", "[cli][run]") {
    // A user's phase whose every write MariaDB refused passed: nothing asked otherwise.
    TempDir dir;
    write_file(dir.path() / "dead.toml", "[[phase]]\nname = \"load\"\nthreads = 2\nduration = \"600ms\"\n"
                                         "[[phase.fault]]\nkind = \"lost_replies\"\nprobability = 1.0\nfor = \"600ms\"\n");
    const auto r = run_in(dir.path(), {"run", "./dead.toml", "--db", "sqlite://x.db", "--no-progress", "--json", "-"});
    INFO(r.err);
    CHECK(r.code == 1);
    const json j = parse_json(r.out);
    REQUIRE(j.at("phases").at(0).at("ops").at("ok") == 0);
    bool judged = false;
    for (const auto& e : j.at("expectations")) {
        if (e.at("name") != "ops.ok > 0") continue;
        judged = true;
        CHECK(e.at("passed") == false);
        CHECK(e.at("scope") == "phase load");
        CHECK_THAT(e.at("note").get<std::string>(), Catch::Contains("operations failed"));
    }
    CHECK(judged);
}
