// Database URL parsing, validation and redaction.
#include <catch2/catch.hpp>

#include "poolbench/error.hpp"
#include "poolbench/url.hpp"

#include <string>

using namespace poolbench;

namespace {

/// The ConfigError message parse_db_url throws for `url` ("" if it does not throw).
std::string parse_error(std::string_view url) {
    try {
        (void)parse_db_url(url);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("sqlite file URLs: absolute and relative paths", "[unit][url]") {
    const auto abs = parse_db_url("sqlite:///abs/path.db");
    CHECK(abs.backend == Backend::sqlite);
    CHECK(abs.path == "/abs/path.db");
    CHECK_FALSE(abs.memory);
    CHECK(abs.original == "sqlite:///abs/path.db");
    CHECK(abs.redacted == "sqlite:///abs/path.db");
    CHECK(abs.params.empty());

    const auto rel = parse_db_url("sqlite://rel/path.db");
    CHECK(rel.backend == Backend::sqlite);
    CHECK(rel.path == "rel/path.db");
    CHECK_FALSE(rel.memory);

    const auto one = parse_db_url("sqlite://x.db");
    CHECK(one.path == "x.db");
}

TEST_CASE("sqlite in-memory URLs", "[unit][url]") {
    const auto mem = parse_db_url("sqlite::memory:");
    CHECK(mem.backend == Backend::sqlite);
    CHECK(mem.memory);
    CHECK(mem.path.empty());

    const auto alias = parse_db_url("sqlite://:memory:");
    CHECK(alias.memory);
    CHECK(alias.path.empty());

    const auto with_opts = parse_db_url("sqlite::memory:?cache_size=-2000");
    CHECK(with_opts.memory);
    REQUIRE(with_opts.params.size() == 1);
    CHECK(with_opts.params[0] == std::pair<std::string, std::string>{"cache_size", "-2000"});
}

TEST_CASE("query parameters are kept in order and percent-decoded", "[unit][url]") {
    const auto u = parse_db_url("sqlite:///tmp/x.db?busy_timeout=250&journal_size_limit=1048576&a=b%20c%26d");
    CHECK(u.path == "/tmp/x.db");
    REQUIRE(u.params.size() == 3);
    CHECK(u.params[0].first == "busy_timeout");
    CHECK(u.params[0].second == "250");
    CHECK(u.params[1].first == "journal_size_limit");
    CHECK(u.params[1].second == "1048576");
    CHECK(u.params[2].first == "a");
    CHECK(u.params[2].second == "b c&d");

    const auto empty_value = parse_db_url("sqlite:///tmp/x.db?a=");
    REQUIRE(empty_value.params.size() == 1);
    CHECK(empty_value.params[0].second.empty());

    const auto trailing_q = parse_db_url("sqlite:///tmp/x.db?");
    CHECK(trailing_q.path == "/tmp/x.db");
    CHECK(trailing_q.params.empty());
}

TEST_CASE("postgresql URLs keep the full URL as conninfo", "[unit][url]") {
    const std::string url = "postgresql://bob:secret@db.example.com:5433/app?sslmode=require&application_name=pb";
    const auto u = parse_db_url(url);
    CHECK(u.backend == Backend::postgresql);
    CHECK(u.conninfo == url);
    CHECK(u.original == url);
    CHECK(u.redacted == "postgresql://bob:***@db.example.com:5433/app?sslmode=require&application_name=pb");
    REQUIRE(u.params.size() == 2);
    CHECK(u.params[0] == std::pair<std::string, std::string>{"sslmode", "require"});
    CHECK(u.params[1] == std::pair<std::string, std::string>{"application_name", "pb"});

    const auto short_scheme = parse_db_url("postgres://localhost/app");
    CHECK(short_scheme.backend == Backend::postgresql);
    CHECK(short_scheme.conninfo == "postgres://localhost/app");
    CHECK(short_scheme.params.empty());

    CHECK(parse_db_url("postgresql://").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql:///app").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql://h1:5432,h2:5433/app").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql://[::1]:5432/app").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql://u@h:1/app").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql://u@h:65535/app").backend == Backend::postgresql);
    // A ':' in the password is not a port.
    CHECK(parse_db_url("postgresql://u:p:x@h/app").backend == Backend::postgresql);
}

TEST_CASE("null URL and backend names", "[unit][url]") {
    const auto u = parse_db_url("null://");
    CHECK(u.backend == Backend::null);
    CHECK(u.redacted == "null://");
    CHECK(to_string(Backend::sqlite) == "sqlite");
    CHECK(to_string(Backend::postgresql) == "postgresql");
    CHECK(to_string(Backend::null) == "null");
}

TEST_CASE("surrounding whitespace is ignored, the original is kept", "[unit][url]") {
    const auto u = parse_db_url("  sqlite::memory:\n");
    CHECK(u.memory);
    CHECK(u.original == "  sqlite::memory:\n");
}

TEST_CASE("bad URLs throw ConfigError naming the problem and the valid forms", "[unit][url]") {
    const std::string forms = "sqlite:///abs/path.db, sqlite://rel/path.db, sqlite::memory:";

    SECTION("empty") {
        const auto msg = parse_error("");
        CHECK(contains(msg, "empty database URL"));
        CHECK(contains(msg, forms));
        CHECK(contains(parse_error("   "), "empty database URL"));
    }
    SECTION("unknown scheme") {
        const auto msg = parse_error("oracle://x");
        CHECK(contains(msg, "unsupported database URL 'oracle://x'"));
        CHECK(contains(msg, forms));
        CHECK(contains(msg, "null://"));
        CHECK(contains(parse_error("/just/a/path.db"), "unsupported database URL '/just/a/path.db'"));
    }
    SECTION("unknown scheme with a password is redacted") {
        const auto msg = parse_error("oracle://root:hunter2@db/x");
        CHECK(contains(msg, "oracle://root:***@db/x"));
        CHECK_FALSE(contains(msg, "hunter2"));
    }
    SECTION("empty sqlite path") {
        CHECK(contains(parse_error("sqlite://"), "SQLite file path is empty"));
        CHECK(contains(parse_error("sqlite://?busy_timeout=1"), "SQLite file path is empty"));
        CHECK(contains(parse_error("sqlite:///tmp/"), "names a directory"));
    }
    SECTION("sqlite without //") {
        const auto msg = parse_error("sqlite:x.db");
        CHECK(contains(msg, "'sqlite:x.db'"));
        CHECK(contains(msg, "needs '//'"));
        CHECK(contains(parse_error("sqlite::memory:x"), "unexpected text after sqlite::memory:"));
    }
    SECTION("malformed query parameters") {
        CHECK(contains(parse_error("sqlite:///a.db?novalue"), "query parameter 'novalue' has no value"));
        CHECK(contains(parse_error("sqlite:///a.db?a=1&&b=2"), "query parameter #2 is empty"));
        CHECK(contains(parse_error("sqlite:///a.db?a=1&"), "query parameter #2 is empty"));
        CHECK(contains(parse_error("sqlite:///a.db?=1"), "empty name"));
        CHECK(contains(parse_error("sqlite:///a.db?a=%zz"), "'a' has a malformed %-escape"));
        CHECK(contains(parse_error("sqlite:///a.db?a=%4"), "'a' has a malformed %-escape"));
        CHECK(contains(parse_error("null://?x"), "query parameter 'x' has no value"));
        CHECK(contains(parse_error("postgresql://h/db?sslmode"), "query parameter 'sslmode' has no value"));
    }
    SECTION("postgres ports") {
        CHECK(contains(parse_error("postgresql://h:abc/db"), "port 'abc' is not a number from 1 to 65535"));
        CHECK(contains(parse_error("postgresql://h:0/db"), "port '0'"));
        CHECK(contains(parse_error("postgresql://h:65536/db"), "port '65536'"));
        CHECK(contains(parse_error("postgresql://h:99999999999/db"), "port '99999999999'"));
        CHECK(contains(parse_error("postgresql://h:/db"), "port ''"));
        CHECK(contains(parse_error("postgresql://u:pw@h:-1/db"), "port '-1'"));
        CHECK(contains(parse_error("postgresql://h1:5432,h2:x/db"), "port 'x'"));
        CHECK(contains(parse_error("postgresql://[::1]:z/db"), "port 'z'"));
        CHECK(contains(parse_error("postgresql://[::1/db"), "closing ']'"));
    }
    SECTION("null with a path") {
        CHECK(contains(parse_error("null://host"), "null:// takes no host or path"));
        CHECK(contains(parse_error("null:"), "written null://"));
    }
    SECTION("every message is one line") {
        for (const auto* url : {"", "oracle://x", "mysql://a,b/x", "mariadb://h:0/db", "sqlite://", "sqlite:///a.db?x", "postgresql://h:0/db",
                                "sqlite:x\ny", "bad\nscheme://u:p@h"}) {
            const auto msg = parse_error(url);
            INFO(url);
            CHECK_FALSE(msg.empty());
            CHECK(msg.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("PostgreSQL URLs: the first host and its port", "[unit][url]") {
    const auto u = parse_db_url("postgresql://u:pw@[::1]:5433,h2:5434/db");
    CHECK(u.host == "::1");
    CHECK(u.port == 5433);
    const auto v = parse_db_url("postgresql://127.0.0.1/db");
    CHECK(v.host == "127.0.0.1");
    CHECK(v.port == 0);
}

TEST_CASE("MariaDB URLs: parts percent-decoded, one host, default port", "[unit][url]") {
    const DbUrl u = parse_db_url("mariadb://bob:p%40ss%2Fw@db.example:3307/my%20db?ssl_mode=disabled&charset=latin1");
    CHECK(u.backend == Backend::mariadb);
    CHECK(u.user == "bob");
    CHECK(u.password == "p@ss/w");
    CHECK(u.host == "db.example");
    CHECK(u.port == 3307);
    CHECK(u.database == "my db");
    REQUIRE(u.params.size() == 2);
    CHECK(u.params[0] == std::pair<std::string, std::string>{"ssl_mode", "disabled"});
    CHECK(u.redacted == "mariadb://bob:***@db.example:3307/my%20db?ssl_mode=disabled&charset=latin1");

    const DbUrl m = parse_db_url("MySQL://root@[::1]/app");
    CHECK(m.backend == Backend::mariadb);
    CHECK(m.user == "root");
    CHECK(m.password.empty());
    CHECK(m.host == "::1");
    CHECK(m.port == 0);
    CHECK(m.database == "app");

    const DbUrl bare = parse_db_url("mariadb://localhost");
    CHECK(bare.host == "localhost");
    CHECK(bare.database.empty());
    CHECK(bare.user.empty());

    CHECK(contains(parse_error("mariadb://h1,h2/db"), "names one host"));
    CHECK(contains(parse_error("mariadb://h:99999/db"), "port '99999'"));
    CHECK(contains(parse_error("mariadb://h/a/b"), "contains '/'"));
    CHECK(contains(parse_error("mariadb://u:a@b@h/db"), "unencoded '@'"));
    CHECK(contains(parse_error("mariadb://h/d%zz"), "database name has a malformed %-escape"));
}

TEST_CASE("errors never show the password", "[unit][url]") {
    for (const auto* url : {"postgresql://bob:s3cretpw@h:abc/db", "postgresql://bob:s3cretpw@h/db?bad",
                            "postgresql://bob:s3cretpw@h/db?password=x&y", "postgresql://h/db?password=s3cretpw&y",
                            "postgresql://h/db?password=s3cretpw%zz", "oracle://bob:s3cretpw@h/db",
                            "mysql://bob:s3cretpw@h:abc/db", "mariadb://bob:s3cretpw@h/db?x", "mariadb://bob:s3cretpw@h/a/b",
                            "mariadb://bob:s3cr@tpw@h/db", "mariadb://bob:s3cretpw%zz@h/db",
                            "postgresql://bob:s3cretpw@h:0/db"}) {
        const auto msg = parse_error(url);
        INFO(url);
        CHECK_FALSE(msg.empty());
        CHECK_FALSE(contains(msg, "s3cretpw"));
    }
}

TEST_CASE("redaction replaces the password and nothing else", "[unit][url][redact]") {
    CHECK(redact_url("postgresql://bob:secret@h/db") == "postgresql://bob:***@h/db");
    CHECK(redact_url("postgres://bob:secret@h:5432/db") == "postgres://bob:***@h:5432/db");
    CHECK(redact_url("postgresql://bob@h/db") == "postgresql://bob@h/db");
    CHECK(redact_url("postgresql://h:5432/db") == "postgresql://h:5432/db");
    CHECK(redact_url("postgresql://h/db?sslmode=require") == "postgresql://h/db?sslmode=require");
    CHECK(redact_url("postgresql://h:5432/db?application_name=a@b") == "postgresql://h:5432/db?application_name=a@b");
    CHECK(redact_url("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db");
    CHECK(redact_url("sqlite::memory:") == "sqlite::memory:");
    CHECK(redact_url("null://") == "null://");
    CHECK(redact_url("") == "");
    CHECK(redact_url("postgresql://bob:secret@h/db?password=other&sslmode=disable") ==
          "postgresql://bob:***@h/db?password=***&sslmode=disable");
    CHECK(redact_url("host=h password=secret dbname=x") == "host=h password=*** dbname=x");
    CHECK(redact_url("host=h password = 'se cret' dbname=x") == "host=h password = *** dbname=x");
    CHECK(redact_url("host=h PASSWORD=secret") == "host=h PASSWORD=***");
    CHECK(redact_url("Server=h;Pwd=secret;") == "Server=h;Pwd=***");
}

TEST_CASE("redaction never leaks the password", "[unit][url][redact]") {
    struct Case {
        const char* url;
        const char* secret;
    };
    const Case cases[] = {
        {"postgresql://bob:hunter2@h/db", "hunter2"},
        {"postgresql://bob:hunter2@h", "hunter2"},
        {"postgresql://bob:hunter2@", "hunter2"},
        {"postgresql://bob:hunter2@h1:5432,h2:5433/db?sslmode=require", "hunter2"},
        {"postgres://bob:p%40ss%3Aw0rd%2F@h/db", "p%40ss%3Aw0rd%2F"},
        {"postgresql://bob:p@ss@h/db", "p@ss"},
        {"postgresql://bob:pa:ss@h/db", "pa:ss"},
        {"postgresql://bob:pa?ss@h/db", "pa?ss"},
        {"postgresql://bob:pa#ss@h/db", "pa#ss"},
        {"postgresql://bob:pa/ss@h/db", "pa/ss"},
        {"postgresql://bob:pa/ss/x@h/db", "ss/x"},
        {"postgresql://bob:!$&'()*+,;=@h/db", "!$&'()*+,;="},
        {"postgresql://bob:ünï©ødé@h/db", "ünï©ødé"},
        {"postgresql://bob:hunter2@[::1]:5432/db", "hunter2"},
        {"postgresql:///db?user=bob&password=hunter2", "hunter2"},
        {"postgresql:///db?password=hunter2", "hunter2"},
        {"postgresql:///db?pass%77ord=hunter2", "hunter2"},
        {"postgresql:///db?user=bob&password=hun%20ter2&sslmode=disable", "hun%20ter2"},
        {"postgresql:///db?sslpassword=hunter2", "hunter2"},
        {"mysql://root:hunter2@h/db", "hunter2"},
        {"host=h user=bob password=hunter2", "hunter2"},
        {"password=hunter2", "hunter2"},
        {"host=h password='hun ter2' port=5432", "hun ter2"},
        {"host=h password='hun\\'ter2' port=5432", "ter2"},
        {"host=h\tpassword=hunter2\tport=5432", "hunter2"},
    };
    for (const auto& c : cases) {
        const auto r = redact_url(c.url);
        INFO(c.url << " -> " << r);
        CHECK_FALSE(contains(r, c.secret));
        CHECK(contains(r, "***"));
    }
}

TEST_CASE("DbUrl::redacted never contains the password", "[unit][url][redact]") {
    for (const auto* url :
         {"postgresql://bob:hunter2@h/db", "postgres://bob:hunter2@h:5432/db?sslmode=require",
          "postgresql://bob:hun%3Fter2@h/db", "postgresql:///db?password=hunter2", "postgresql://bob:hunter2@/db"}) {
        const auto u = parse_db_url(url);
        INFO(url << " -> " << u.redacted);
        CHECK_FALSE(contains(u.redacted, "hunter2"));
        CHECK_FALSE(contains(u.redacted, "hun%3Fter2"));
        CHECK(contains(u.redacted, "***"));
        CHECK(u.conninfo == url);  // libpq still gets the password
    }
}

TEST_CASE("postgresql: an unencoded '@' or '/' in the password is refused without showing it", "[unit][url]") {
    // libpq splits these URLs differently from the redaction, and its error would quote
    // part of the password; poolbench refuses them first.
    const std::string at = parse_error("postgresql://u:pa@ssQQQ@127.0.0.1:1/db");
    CHECK(contains(at, "unencoded '@'"));
    CHECK(contains(at, "%40"));
    CHECK_FALSE(contains(at, "ssQQQ"));
    CHECK_FALSE(contains(at, "pa@"));
    const std::string slash = parse_error("postgresql://u:pa/ssQQQ@127.0.0.1:1/db");
    CHECK(contains(slash, "%2F"));
    CHECK_FALSE(contains(slash, "ssQQQ"));
    CHECK_FALSE(contains(slash, "pa/"));
    // Both at once: nothing before the last '@' may show.
    const std::string both = parse_error("postgresql://u:pa@ss/QQQ@127.0.0.1:1/db");
    CHECK_FALSE(contains(both, "QQQ"));
    CHECK_FALSE(contains(both, "ss/"));
    CHECK(contains(both, "postgresql://***@127.0.0.1:1/db"));
    // Encoded, both are fine.
    CHECK(parse_db_url("postgresql://u:pa%40ss@127.0.0.1:1/db").backend == Backend::postgresql);
    CHECK(parse_db_url("postgresql://u:pa%2Fss@127.0.0.1:1/db").backend == Backend::postgresql);
    // An '@' in a query value is not in the password.
    CHECK(parse_db_url("postgresql://u:pw@h/db?application_name=a@b").backend == Backend::postgresql);
    // An '@' and then a '?' or '#' (found in a user test): the piece after the '?' read as
    // options ("has no value"), after the '#' as part of libpq's host name, and either
    // error quoted part of the password.
    for (const char* url : {"postgresql://u:Sec@ret?Leak23@127.0.0.1:43365/poolbench",
                            "postgresql://u:ab@cd#Leak5@127.0.0.1:43365/poolbench",
                            "postgresql://utsecret:S3cr@t:/?#x%y'z@127.0.0.1:43365/poolbench"}) {
        const std::string e = parse_error(url);
        INFO(e);
        CHECK(contains(e, "unencoded '@', '/', '?' or '#'"));
        CHECK(contains(e, "'postgresql://***@127.0.0.1:43365/poolbench'"));
        for (const char* piece : {"Leak", "ret", "cd", "S3cr", "x%y"}) CHECK_FALSE(contains(e, piece));
    }
}
