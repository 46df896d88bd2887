// MariaDB connections that fail: a server that accepts TCP but never greets, wrong
// credentials, a missing database, nothing listening, TLS the server does not offer; and
// URL option values refused before anything is opened.
#include "mariadb_support.hpp"

#include <filesystem>
#include <random>
#include <string>

using namespace poolbench;
using namespace mtest;

TEST_CASE("mariadb: connect gives up at its deadline when the server never greets", "[mariadb]") {
    LoopbackSocket silent(true);  // accepts TCP (in the kernel backlog), never speaks
    const std::string url = url_at("127.0.0.1:" + std::to_string(silent.port()));
    SECTION("the deadline passed to connect") {
        auto driver = driver_for(url);  // made first: under a sanitizer it alone can take tens of ms
        const auto start = Clock::now();
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(start + 300ms); });
        const auto took = Clock::now() - start;
        INFO(e.what());
        CHECK(took >= 290ms);
        CHECK(took < 1500ms);
        // The budget counts from when connect() started, a moment after `start` (the first
        // connect of a process also initialises Connector/C: some ms).
        CHECK_THAT(e.what(), Catch::Matches(".* timed out after (2[5-9][0-9]|300) ms"));
        CHECK_FALSE(contains(e.what(), "connect_timeout"));
        CHECK_FALSE(contains(e.what(), server_password()));
        CHECK(contains(e.what(), "***@127.0.0.1:" + std::to_string(silent.port())));
    }
    SECTION("connect_timeout=1s from the URL, when shorter") {
        auto driver = driver_for(url + "?connect_timeout=1s");
        const auto start = Clock::now();
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(start + 30s); });
        const auto took = Clock::now() - start;
        INFO(e.what());
        CHECK(took >= 950ms);
        CHECK(took < 2500ms);
        CHECK(contains(e.what(), "timed out after 1000 ms (connect_timeout)"));
        CHECK_FALSE(contains(e.what(), server_password()));
    }
    SECTION("a bare connect_timeout is seconds, and the earlier deadline wins") {
        auto driver = driver_for(url + "?connect_timeout=20");
        const auto start = Clock::now();
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(start + 400ms); });
        CHECK(Clock::now() - start < 2s);
        CHECK_THAT(e.what(), Catch::Matches(".* timed out after (3[5-9][0-9]|400) ms"));
        CHECK_FALSE(contains(e.what(), "(connect_timeout)"));
    }
    SECTION("a deadline already past") {
        auto driver = driver_for(url);
        const auto e = thrown<ConnectError>([&] { (void)driver->connect(Clock::now() - 1s); });
        CHECK(contains(e.what(), "timed out after"));
    }
}

TEST_CASE("mariadb: connection errors are one clear line each and never show the password", "[mariadb]") {
    const std::string pw = server_password();
    const auto connect_error = [&](const std::string& url) {
        const auto e = thrown<ConnectError>([&] { (void)driver_for(url)->connect(Clock::now() + 10s); });
        const std::string message = e.what();
        INFO(message);
        CHECK_FALSE(contains(message, pw));
        CHECK(message.find('\n') == std::string::npos);
        CHECK(contains(message, "cannot connect to mariadb://"));
        return message;
    };
    const std::string wrong_pw = "not-the-" + pw;
    const std::string bad_password = connect_error(url_with_password(wrong_pw));
    CHECK(contains(bad_password, "access denied for user \"poolbench\" (check the user name and password in the URL)"));
    CHECK_FALSE(contains(bad_password, wrong_pw));
    CHECK(contains(bad_password, "***@"));  // names the redacted URL

    // poolbench may use only its own database: the server will not say whether another exists.
    const std::string forbidden_db = connect_error(url_with_db("pb_no_such_db"));
    CHECK(contains(forbidden_db, "user \"poolbench\" may not use database \"pb_no_such_db\", or it does not exist"));
    // An account with every privilege learns that it does not exist.
    std::string admin_no_db = admin_url();
    admin_no_db = admin_no_db.substr(0, admin_no_db.rfind('/') + 1) + "pb_no_such_db";
    const std::string missing_db = connect_error(admin_no_db);
    CHECK(contains(missing_db, "database \"pb_no_such_db\" does not exist"));
    CHECK_FALSE(contains(missing_db, "may not use"));

    LoopbackSocket closed(false);
    const int port = closed.port();
    closed.close();  // nothing listens there now
    const std::string refused = connect_error(url_at("127.0.0.1:" + std::to_string(port)));
    CHECK(contains(refused, "connection refused: is MariaDB running on 127.0.0.1:" + std::to_string(port) + "?"));

    const std::string bad_host = connect_error(url_at("pb-no-such-host.invalid:3306"));
    CHECK(contains(bad_host, "could not resolve host \"pb-no-such-host.invalid\""));

    std::random_device rd;
    const std::string socket = (std::filesystem::temp_directory_path() / ("pb-no-sock-" + std::to_string(rd()))).string();
    const std::string no_socket = connect_error(url_with("socket=" + socket));
    CHECK(contains(no_socket, "the socket file " + socket + " does not exist: is MariaDB running"));
    CHECK_FALSE(contains(no_socket, "refused"));
    // A path that is there but is no socket (a regular file, here the server's log).
    const std::string log = required_env("POOLBENCH_MARIADB_DIR") + "/server.log";
    REQUIRE(std::filesystem::is_regular_file(log));
    CHECK(contains(connect_error(url_with("socket=" + log)), log + " is not a socket"));

    CHECK(bad_password != forbidden_db);
    CHECK(forbidden_db != refused);
    CHECK(refused != bad_password);
}

TEST_CASE("mariadb: TLS modes the sandbox server cannot meet fail to connect, the others connect", "[mariadb]") {
    // The sandbox server has no certificate: preferred falls back to plain TCP, disabled never asks.
    for (const char* ok : {"ssl_mode=disabled", "ssl_mode=preferred", "sslmode=prefer", ""}) {
        INFO(ok);
        auto c = connect(ok);
        CHECK(c->query("SELECT 1").int_at(0) == 1);
    }
    for (const char* refused : {"ssl_mode=required", "ssl_mode=verify_ca&ssl_ca=/nonexistent/ca.pem",
                                "ssl_mode=verify_identity"}) {
        INFO(refused);
        const auto e = thrown<ConnectError>([&] { (void)connect(refused); });
        CHECK_FALSE(contains(e.what(), server_password()));
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
    // required must not fall back to plain TCP (Connector/C would, unless it also verifies).
    const auto required = thrown<ConnectError>([&] { (void)connect("ssl_mode=required"); });
    CHECK(contains(required.what(), "the server does not offer TLS, and ssl_mode asks for it"));
}

TEST_CASE("mariadb: the Unix socket in the URL is used instead of TCP", "[mariadb]") {
    const std::string socket = required_env("POOLBENCH_MARIADB_SOCKET");
    auto d = driver("socket=" + socket);
    auto c = d->connect(Clock::now() + 10s);
    // Over the socket the server sees the client as localhost, not 127.0.0.1.
    CHECK(contains(text_at(c->query("SELECT USER()")), "@localhost"));
}

TEST_CASE("mariadb: bad URL option values are ConfigErrors naming the option, never the password", "[mariadb]") {
    const std::string pw = server_password();
    const auto config_error = [&](const std::string& params) {
        const auto e = thrown<ConfigError>([&] { (void)driver(params); });
        const std::string message = e.what();
        INFO(params << ": " << message);
        CHECK_FALSE(contains(message, pw));
        CHECK(message.find('\n') == std::string::npos);
        return message;
    };
    CHECK(contains(config_error("ssl_mode=bogus"),
                   "invalid ssl_mode 'bogus' in MariaDB URL 'mariadb://poolbench:***@"));
    CHECK(contains(config_error("ssl_mode=bogus"),
                   "use one of disabled, preferred, required, verify_ca, verify_identity"));
    CHECK(contains(config_error("ssl_ca="), "invalid ssl_ca ''"));
    CHECK(contains(config_error("ssl_ca=/tmp/ca.pem"), "ssl_ca is used only to verify the server"));
    CHECK(contains(config_error("connect_timeout=soon"), "invalid connect_timeout 'soon'"));
    CHECK(contains(config_error("connect_timeout=0"), "invalid connect_timeout '0'"));
    CHECK(contains(config_error("charset=klingon"), "invalid charset 'klingon'"));
    CHECK(contains(config_error("charset="), "invalid charset ''"));
    CHECK(contains(config_error("statement_timeout=fast"), "invalid statement_timeout 'fast'"));
    CHECK(contains(config_error("statement_timeout=-1s"), "invalid statement_timeout '-1s'"));
    CHECK(contains(config_error("socket=relative/path"), "invalid socket 'relative/path'"));
    CHECK(contains(config_error("autocommit=maybe"), "invalid autocommit 'maybe'"));
    CHECK(contains(config_error("reset_connection=2"), "invalid reset_connection '2'"));
    for (const char* list : {"12x", "", "0", "10000", "1290,", "1290,,1836"}) {
        CHECK(contains(config_error(std::string("broken_errors=") + list), "invalid broken_errors entry"));
    }
    CHECK(contains(config_error("password=" + pw), "give the password in the URL's user part"));
    CHECK(contains(config_error("sslmdoe=disabled"), "unknown parameter 'sslmdoe'"));
    CHECK(contains(config_error("sslmdoe=disabled"), "use ssl_mode, ssl_ca, connect_timeout"));
    // Not a MariaDB URL at all.
    CHECK_THROWS_WITH(driver_for("postgresql://u@h/d"),
                      Catch::Contains("is not a MariaDB URL (mariadb://user@host:port/db)"));

    // And the values that are fine.
    for (const char* ok :
         {"ssl_mode=DISABLED", "ssl-mode=required", "ssl_mode=verify-ca&ssl_ca=/tmp/ca.pem",
          "ssl_mode=verify-full", "connect_timeout=5", "connect_timeout=1500ms", "charset=latin1",
          "statement_timeout=250", "statement_timeout=1h", "autocommit=off", "autocommit=true",
          "reset_connection=on", "reset_connection=false", "reset_query=SELECT%201", "broken_errors=1927",
          "broken_errors=1290,1836,1205", "socket=/tmp/x.sock"}) {
        INFO(ok);
        CHECK(driver(ok)->backend() == Backend::mariadb);
    }
}

TEST_CASE("mariadb: the charset from the URL is the connection's", "[mariadb]") {
    auto c = connect("charset=latin1");
    CHECK(text_at(c->query("SELECT @@character_set_client")) == "latin1");
    auto d = connect();
    CHECK(text_at(d->query("SELECT @@character_set_client")) == "utf8mb4");
}

TEST_CASE("mariadb: a password with an unencoded @ : / ? # or % is refused without showing any of it", "[mariadb]") {
    // Each piece of these passwords is unique, so a message showing any part of one is caught.
    for (const char* url : {"mariadb://u:pwA1@pwB2:pwC3/pwD4?pwE5#pwF6%pwG7@127.0.0.1:3306/db",
                            "mariadb://u:pwA1@pwB2:pwC3/pwD4?pwE5%23pwF6%25pwG7@127.0.0.1:3306/db",
                            "mariadb://u:pwA1/pwB2@127.0.0.1:3306/db", "mariadb://u:pwA1?pwB2@127.0.0.1:3306/db",
                            "mariadb://u:12/pwB2@127.0.0.1/db", "mariadb://u:pwA1?charset=latin1@127.0.0.1:3306/db",
                            "mysql://u:pwA1@pwB2/pwC3@h/db", "mariadb://u:pwA1?pwB2%23pwC3@h:1/db",
                            "mariadb://u:pwA1/pwB2@h"}) {
        const auto e = thrown<ConfigError>([&] { (void)driver_for(url); });
        const std::string message = e.what();
        INFO(url << ": " << message);
        for (const char* piece : {"pwA1", "pwB2", "pwC3", "pwD4", "pwE5", "pwF6", "pwG7", "u:12"}) {
            CHECK_FALSE(contains(message, piece));
        }
        CHECK(contains(message, "percent-encode"));
        CHECK(message.find('\n') == std::string::npos);
    }
    // An '@' in an option's value is no password: still fine.
    CHECK(driver_for("mariadb://u:pw@h:3306/db?reset_query=SELECT%20@a")->backend() == Backend::mariadb);
    CHECK(driver_for("mariadb://h?reset_query=SELECT%20@a")->backend() == Backend::mariadb);
    CHECK(driver_for("mariadb://u:p%40ss%3Aw%2Frd%3Fx%23y%25z@h:3306/db")->backend() == Backend::mariadb);
}

TEST_CASE("mariadb: a reset_query the server refuses fails connect with the option and the server's error", "[mariadb]") {
    auto d = driver("reset_query=SELECT%20pb_no_such_fn()");
    for (int attempt = 0; attempt < 2; ++attempt) {  // checked again: never passed once failed
        INFO(attempt);
        const auto e = thrown<ConnectError>([&] { (void)d->connect(Clock::now() + 10s); });
        INFO(e.what());
        CHECK(contains(e.what(), "the URL's reset_query fails on "));
        CHECK(contains(e.what(), "pb_no_such_fn does not exist (1305)"));
        CHECK_FALSE(contains(e.what(), server_password()));
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
    // One that works is run as a release would, and leaves no transaction open.
    auto ok = driver("reset_query=SELECT%201&autocommit=0")->connect(Clock::now() + 10s);
    CHECK_FALSE(ok->in_transaction());
    CHECK(ok->query("SELECT 2").int_at(0) == 2);
}
