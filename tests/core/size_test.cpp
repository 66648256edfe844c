#include "unimem/core/size.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace unimem {
namespace {

constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();

TEST(CheckedSize, AddAndMultiplyInRange) {
  EXPECT_EQ(checked_add(kMax - 1, 1), kMax);
  EXPECT_EQ(checked_mul(kMax / 2, 2), kMax - 1);
  EXPECT_EQ(bytes_for<double>(1000), 8000U);
  EXPECT_EQ(bytes_for<std::uint8_t>(kMax), kMax);
}

TEST(CheckedSize, OverflowIsInvalidArgumentNamingOperands) {
  try {
    (void)bytes_for<std::uint64_t>(kMax / 4);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(kMax / 4)), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)checked_add(kMax, 1), InvalidArgument);
  EXPECT_THROW((void)checked_mul(kMax, 2), InvalidArgument);
}

TEST(CheckedSize, CheckRange) {
  EXPECT_NO_THROW(check_range("buf", 0, 10, 10));
  EXPECT_NO_THROW(check_range("buf", 10, 0, 10));
  EXPECT_THROW(check_range("buf", 1, 10, 10), InvalidArgument);
  EXPECT_THROW(check_range("buf", 11, 0, 10), InvalidArgument);
  EXPECT_THROW(check_range("buf", kMax, 2, 10), InvalidArgument);  // offset + bytes wraps
}

TEST(CheckedSize, ParseBytes) {
  EXPECT_EQ(parse_bytes("4096"), 4096U);
  EXPECT_EQ(parse_bytes("80GiB"), 80 * GiB);
  EXPECT_EQ(parse_bytes("512MiB"), 512 * MiB);
  EXPECT_EQ(parse_bytes("64k"), 64 * KiB);
  EXPECT_EQ(parse_bytes(" 2 GB "), 2 * GiB);
  EXPECT_EQ(parse_bytes("1.5GiB"), GiB + GiB / 2);
  EXPECT_EQ(parse_bytes("17179869184"), 16 * GiB);
}

TEST(CheckedSize, ParseBytesRejectsBadText) {
  for (const char* text : {"", "GiB", "0", "-5", "12XB", "1.2.3", "99999999999PiB", "0.1"}) {
    EXPECT_THROW((void)parse_bytes(text), InvalidArgument) << text;
  }
  try {
    (void)parse_bytes("12XB");
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("12XB"), std::string::npos) << e.what();
  }
}

// Regressions: "." and a 400-digit number threw std::invalid_argument / std::out_of_range, and a fraction
// past 2^63 came back as 2^63 after the rounding overflowed.
TEST(CheckedSize, ParseBytesThrowsOnlyTypedErrorsAndNeverRoundsWrong) {
  const std::string huge(400, '9');
  for (const std::string& text : {std::string("."), std::string(".KiB"), huge, huge + ".5",
                                  "1" + huge + "GiB", std::string("18446744073709551616"),
                                  std::string("16384PiB"), std::string("0.4"), std::string("0.0000001KiB")}) {
    try {
      (void)parse_bytes(text);
      ADD_FAILURE() << "no error for '" << text << "'";
    } catch (const InvalidArgument& e) {
      EXPECT_LE(std::string(e.what()).size(), 200U) << "a long input makes a long message: " << e.what();
    }
  }
  EXPECT_EQ(parse_bytes("10000000000000000000.5"), 10000000000000000001ULL);
  EXPECT_EQ(parse_bytes("18446744073709551615"), 18446744073709551615ULL);
  EXPECT_EQ(parse_bytes("16383.999PiB"), 16383 * (std::size_t{1} << 50U) + 1125899906842624ULL * 999 / 1000);
  EXPECT_EQ(parse_bytes("0.5KiB"), 512U);
  EXPECT_EQ(parse_bytes("1.5"), 2U);
  EXPECT_EQ(parse_bytes(".5MiB"), MiB / 2);
  EXPECT_EQ(parse_bytes("0.1GiB"), 107374182U);  // 107374182.4 rounds down
  EXPECT_EQ(parse_bytes("2."), 2U);
}

TEST(CheckedSize, FormatBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(80 * GiB), "80.00 GiB");
}

}  // namespace
}  // namespace unimem
