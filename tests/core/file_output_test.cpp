#include "unimem/core/file_output.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "unimem/core/error.hpp"

namespace unimem {
namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class FileOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("unimem_file_output_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                  "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::filesystem::path directory_;
};

TEST_F(FileOutput, WritesAndReplacesWholeFilesLeavingNoTemporary) {
  const auto path = directory_ / "out.json";
  write_file_replacing(path, std::string("first\0with a zero byte", 22), "test");
  EXPECT_EQ(read_all(path), std::string("first\0with a zero byte", 22));
  write_file_replacing(path, "second", "test");
  EXPECT_EQ(read_all(path), "second");
  EXPECT_FALSE(std::filesystem::exists(directory_ / "out.json.tmp"));
}

TEST_F(FileOutput, AnUnwritablePathNamesItAndLeavesTheOldFile) {
  const auto path = directory_ / "missing" / "out.json";
  try {
    write_file_replacing(path, "x", "snapshot");
    FAIL() << "no error";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("snapshot: cannot write"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
  }
  // A directory in the way of the rename: the old content stays, the temporary file goes.
  const auto blocked = directory_ / "blocked";
  std::filesystem::create_directories(blocked / "child");
  EXPECT_THROW(write_file_replacing(blocked, "x", "report"), InvalidArgument);
  EXPECT_TRUE(std::filesystem::is_directory(blocked / "child"));
  EXPECT_FALSE(std::filesystem::exists(directory_ / "blocked.tmp"));
  EXPECT_THROW(write_file_replacing("", "x", "report"), InvalidArgument);
}

}  // namespace
}  // namespace unimem
