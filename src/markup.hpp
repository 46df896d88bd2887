// markup.hpp — text made safe for the XML (JUnit) and HTML renderers.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <string>
#include <string_view>

namespace poolbench::cli {

/// `text` with every byte sequence that is not valid UTF-8 replaced by U+FFFD, and the
/// noncharacters U+FFFE/U+FFFF too (XML cannot carry them): file paths are bytes.
[[nodiscard]] std::string valid_utf8(std::string_view text);

/// `text` made safe for XML and HTML attribute values and character data: valid UTF-8
/// (valid_utf8), & < > " ' escaped, and the control characters XML 1.0 cannot carry
/// dropped (tab, newline and carriage return are kept).
[[nodiscard]] std::string markup_escape(std::string_view text);

}  // namespace poolbench::cli
