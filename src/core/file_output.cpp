#include "unimem/core/file_output.hpp"

#include <fstream>
#include <string>
#include <system_error>

#include "unimem/core/error.hpp"

namespace unimem {

void write_file_replacing(const std::filesystem::path& path, std::string_view text, std::string_view who) {
  if (path.empty()) {
    throw InvalidArgument(std::string(who) + ": empty output path");
  }
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw InvalidArgument(std::string(who) + ": cannot write " + quoted_path(path.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw InvalidArgument(std::string(who) + ": cannot write " + quoted_path(path.string()) + ": " +
                          error.message());
  }
}

}  // namespace unimem
