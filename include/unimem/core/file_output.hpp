#pragma once
// Writing a whole file so that a reader never sees half of it: the text goes to PATH.tmp, which is renamed
// over PATH only once it is complete; on failure the temporary file is removed and PATH is left as it was.

#include <filesystem>
#include <string_view>

namespace unimem {

// Throws InvalidArgument naming `who` and the path when the path is empty or cannot be written.
void write_file_replacing(const std::filesystem::path& path, std::string_view text, std::string_view who);

}  // namespace unimem
