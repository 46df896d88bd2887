// pg_statement_scrub.cpp — see pg_statement_scrub.hpp. A small lexer of PostgreSQL's
// quoting forms (scan.l: xq, xe, xus, xdolq, xc, comment); identifiers in double quotes
// are kept as they are, so a quote inside one does not start a constant.
#include "pg_statement_scrub.hpp"

#include <algorithm>
#include <cctype>

namespace poolbench::internal {

namespace {

bool ident_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || c == '_' || c == '$' || u >= 0x80;
}

std::string lower(const std::string& s) {
    std::string out(s.size(), ' ');
    std::transform(s.begin(), s.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// The end (one past) of the quoted constant whose opening quote is at `q`.
std::size_t constant_end(const std::string& sql, std::size_t q, bool backslash_escapes) {
    std::size_t i = q + 1;
    while (i < sql.size()) {
        if (backslash_escapes && sql[i] == '\\') {
            i += 2;
            continue;
        }
        if (sql[i] == '\'') {
            if (i + 1 < sql.size() && sql[i + 1] == '\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        ++i;
    }
    return sql.size();
}

/// The length of a dollar-quote tag ($tag$ or $$) starting at `i`, or 0.
std::size_t dollar_tag(const std::string& sql, std::size_t i) {
    if (sql[i] != '$' || (i > 0 && ident_char(sql[i - 1]))) return 0;
    std::size_t j = i + 1;
    if (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) return 0;  // $1: a parameter
    while (j < sql.size() && sql[j] != '$') {
        const auto u = static_cast<unsigned char>(sql[j]);
        if (std::isalnum(u) == 0 && sql[j] != '_' && u < 0x80) return 0;
        ++j;
    }
    return j < sql.size() ? j - i + 1 : 0;
}

/// Cuts password=VALUE (and password:VALUE) tokens in text outside constants.
std::string cut_password_tokens(std::string s) {
    std::string low = lower(s);
    std::size_t at = 0;
    while ((at = low.find("password", at)) != std::string::npos) {
        std::size_t v = at + 8;
        while (v < s.size() && s[v] == ' ') ++v;
        if (v < s.size() && (s[v] == '=' || s[v] == ':')) {
            std::size_t start = v + 1;
            while (start < s.size() && s[start] == ' ') ++start;
            std::size_t end = start;
            while (end < s.size() && std::isspace(static_cast<unsigned char>(s[end])) == 0 && s[end] != ',' &&
                   s[end] != ')' && s[end] != ';' && s[end] != '&') {
                ++end;
            }
            s.replace(start, end - start, "***");
            low.replace(start, end - start, "***");
        }
        at += 8;
    }
    return s;
}

}  // namespace

std::string scrub_statement(const std::string& sql) {
    if (lower(sql).find("password") == std::string::npos) return sql;
    std::string out;
    out.reserve(sql.size());
    std::size_t i = 0;
    while (i < sql.size()) {
        const char c = sql[i];
        if (c == '\'') {
            // E'..' / e'..': backslash escapes; the prefix letter was copied already.
            const bool escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i < 2 || !ident_char(sql[i - 2]));
            i = constant_end(sql, i, escapes);
            out += "'***'";
        } else if (c == '"') {
            std::size_t end = i + 1;
            while (end < sql.size()) {
                if (sql[end] == '"') {
                    if (end + 1 < sql.size() && sql[end + 1] == '"') {
                        end += 2;
                        continue;
                    }
                    ++end;
                    break;
                }
                ++end;
            }
            out.append(sql, i, std::min(end, sql.size()) - i);
            i = std::min(end, sql.size());
        } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
            while (i < sql.size() && sql[i] != '\n') ++i;
            out += "/***/";
        } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
            int depth = 0;
            while (i < sql.size()) {
                if (sql[i] == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
                    ++depth;
                    i += 2;
                } else if (sql[i] == '*' && i + 1 < sql.size() && sql[i + 1] == '/') {
                    i += 2;
                    if (--depth == 0) break;
                } else {
                    ++i;
                }
            }
            out += "/***/";
        } else if (const std::size_t tag = dollar_tag(sql, i); tag > 0) {
            const std::string delimiter = sql.substr(i, tag);
            const std::size_t close = sql.find(delimiter, i + tag);
            i = close == std::string::npos ? sql.size() : close + tag;
            out += "'***'";
        } else {
            out += c;
            ++i;
        }
    }
    return cut_password_tokens(std::move(out));
}

std::string cut_statement(const std::string& s, std::size_t chars) {
    if (s.size() <= chars) return s;
    std::size_t end = chars;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0U) == 0x80U) --end;
    return s.substr(0, end) + "...";
}

}  // namespace poolbench::internal
