#pragma once
// The HTML page of `unimem report`: a fixed template (inline CSS and JavaScript, no network loads, forbidden
// by its Content-Security-Policy) with the report's data embedded as JSON; the page's script draws it.

#include <nlohmann/json.hpp>
#include <string>

namespace unimem::cli {

// The whole page for `data` (report_command.hpp's report_data()).
[[nodiscard]] std::string report_page(const nlohmann::json& data);

}  // namespace unimem::cli
