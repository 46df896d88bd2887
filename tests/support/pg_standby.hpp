// pg_standby.hpp — a streaming standby of the test's own (scripts/pg_sandbox.sh
// start-standby), for tests that end it as a standby (promote it): the shared one stays as
// it is. Started from the primary at POOLBENCH_PG_DIR (FAILS without it), stopped and
// removed by the destructor.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace pbtest {

/// scripts/pg_sandbox.sh in the source tree this file belongs to.
inline std::string pg_sandbox_script() {
    std::string here = __FILE__;
    return here.substr(0, here.rfind("/tests/")) + "/scripts/pg_sandbox.sh";
}

struct OwnStandby {
    std::string url, dir;

    OwnStandby() {
        const char* primary = std::getenv("POOLBENCH_PG_DIR");
        if (primary == nullptr || *primary == '\0') {
            FAIL("POOLBENCH_PG_DIR is not set: start the server with scripts/pg_sandbox.sh start (scripts/test.sh does)");
        }
        FILE* out = ::popen((pg_sandbox_script() + " start-standby " + primary).c_str(), "r");
        REQUIRE(out != nullptr);
        std::string text;
        char buf[512];
        while (std::fgets(buf, sizeof buf, out) != nullptr) text += buf;
        REQUIRE(::pclose(out) == 0);
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            const std::string url_key = "export POOLBENCH_PG_STANDBY_URL=";
            const std::string dir_key = "export POOLBENCH_PG_STANDBY_DIR=";
            if (line.rfind(url_key, 0) == 0) url = line.substr(url_key.size());
            if (line.rfind(dir_key, 0) == 0) dir = line.substr(dir_key.size());
        }
        REQUIRE_FALSE(url.empty());
        REQUIRE_FALSE(dir.empty());
    }
    OwnStandby(const OwnStandby&) = delete;
    OwnStandby& operator=(const OwnStandby&) = delete;
    ~OwnStandby() {
        if (!dir.empty()) (void)std::system((pg_sandbox_script() + " stop " + dir + " >/dev/null 2>&1").c_str());
    }
};

}  // namespace pbtest
