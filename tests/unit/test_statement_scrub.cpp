// test_statement_scrub.cpp — pg_statement_scrub: a statement that mentions a password
// keeps none of its constants, in every PostgreSQL quoting form; others stay as they are.
#include "pg_statement_scrub.hpp"

#include <catch2/catch.hpp>

using poolbench::internal::cut_statement;
using poolbench::internal::scrub_statement;

TEST_CASE("scrub_statement hides every quoted value of a statement that mentions a password", "[unit][diagnose]") {
    struct Case {
        const char* sql;
        const char* secret;
    };
    const Case cases[] = {
        {"ALTER ROLE a PASSWORD 'Plain1'", "Plain1"},
        {"ALTER ROLE a PASSWORD 'x''Doubled2'", "Doubled2"},
        {R"(SELECT E'a\'Escaped3' AS password)", "Escaped3"},
        {R"(SELECT e'a\\' || 'Escaped4' AS password)", "Escaped4"},
        {"ALTER ROLE a PASSWORD $$Dollar5$$", "Dollar5"},
        {"ALTER ROLE a PASSWORD $t_1$Tag6 $$ still$t_1$", "Tag6"},
        {"ALTER ROLE a password/**/'Comment7'", "Comment7"},
        {"ALTER ROLE a PASSWORD /* x */ 'Comment8'", "Comment8"},
        {"SELECT dblink_connect('host=h password=Conn9 dbname=d')", "Conn9"},
        {"SELECT 1 -- password Line10\n", "Line10"},
        {"SELECT /* password /* nested */ Nested11 */ 1", "Nested11"},
        {"ALTER ROLE a PASSWORD 'Unterminated12", "Unterminated12"},
        {"ALTER ROLE a PASSWORD U&'Uni13'", "Uni13"},
        {"SELECT \"it's\" AS password, 'Ident14'", "Ident14"},
    };
    for (const auto& c : cases) {
        INFO(c.sql);
        const std::string out = scrub_statement(c.sql);
        CHECK(out.find(c.secret) == std::string::npos);
        CHECK(out.find("***") != std::string::npos);
    }
    CHECK(scrub_statement("ALTER ROLE a PASSWORD 'x'") == "ALTER ROLE a PASSWORD '***'");
    CHECK(scrub_statement("SELECT $1, $2 FROM t WHERE password_hash = $1") == "SELECT $1, $2 FROM t WHERE password_hash = $1");
}

TEST_CASE("scrub_statement leaves statements without the word alone, and cut_statement keeps UTF-8 whole",
          "[unit][diagnose]") {
    CHECK(scrub_statement("SELECT 'keep' FROM t") == "SELECT 'keep' FROM t");
    CHECK(cut_statement("abcdef", 3) == "abc...");
    CHECK(cut_statement("abc", 3) == "abc");
    CHECK(cut_statement("ab\xc3\xa9z", 3) == "ab...");  // é is two bytes: not cut in half
}
