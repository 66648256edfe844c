#include "unimem/backend/platform.hpp"

#include <gtest/gtest.h>

namespace unimem {
namespace {

TEST(Platform, NativeLinux) {
  const auto info =
      classify_platform("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP\n");
  EXPECT_EQ(info.name, "native Linux");
  EXPECT_EQ(info.visibility, MemoryVisibility::SystemScope);
  EXPECT_EQ(info.kernel.find('\n'), std::string::npos);
}

TEST(Platform, Wsl2IsDeviceScopeOnly) {
  const auto info = classify_platform(
      "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0) #1 SMP");
  EXPECT_EQ(info.name, "WSL2");
  EXPECT_EQ(info.visibility, MemoryVisibility::DeviceScopeOnly);
  EXPECT_EQ(to_string(info.visibility), "device-scope-only");
}

TEST(Platform, UnknownIsExplicitDma) {
  EXPECT_EQ(classify_platform("").visibility, MemoryVisibility::ExplicitDma);
  EXPECT_EQ(classify_platform("Darwin Kernel Version 23.1.0").name, "other");
}

TEST(Platform, DetectsThisMachine) {
  const auto info = detect_platform();
  EXPECT_FALSE(info.name.empty());
  EXPECT_EQ(info.name, classify_platform(info.kernel).name);
}

}  // namespace
}  // namespace unimem
