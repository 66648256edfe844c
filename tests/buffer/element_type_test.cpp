#include "unimem/buffer/element_type.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "unimem/core/error.hpp"

namespace unimem {
namespace {

struct Particle {
  float x;
  float y;
};

TEST(ElementType, NamesTypesAsTheCompilerSpellsThem) {
  EXPECT_EQ(type_name<float>(), "float");
  EXPECT_EQ(type_name<double>(), "double");
  EXPECT_EQ(type_name<std::byte>(), "std::byte");
  EXPECT_NE(type_name<Particle>().find("Particle"), std::string_view::npos) << type_name<Particle>();
  EXPECT_NE(type_name<std::vector<int>>().find("vector<int"), std::string_view::npos)
      << type_name<std::vector<int>>();
  static_assert(type_name<int>() == "int", "type names are compile-time constants");
}

TEST(ElementType, IdentityIgnoresConstAndTellsTypesApart) {
  static_assert(element_type_of<float>() == element_type_of<const float>());
  EXPECT_FALSE(element_type_of<float>() == element_type_of<std::int32_t>()) << "same size, other type";
  constexpr ElementType particle = element_type_of<Particle>();
  static_assert(particle.size == sizeof(Particle) && particle.alignment == alignof(Particle));
  EXPECT_TRUE(particle.known());
  EXPECT_FALSE(ElementType{}.known());
  EXPECT_TRUE(is_raw_bytes(element_type_of<std::byte>()));
  EXPECT_TRUE(is_raw_bytes(element_type_of<unsigned char>()));
  EXPECT_FALSE(is_raw_bytes(element_type_of<char>()));
  EXPECT_FALSE(is_raw_bytes(element_type_of<std::uint8_t*>()));
}

TEST(ElementType, MismatchNamesBothTypes) {
  EXPECT_NO_THROW(require_element_type(element_type_of<int>(), element_type_of<int>(), "slot 'a'"));
  try {
    require_element_type(element_type_of<double>(), element_type_of<Particle>(), "slot 'a'");
    FAIL() << "expected TypeMismatch";
  } catch (const TypeMismatch& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("slot 'a'"), std::string::npos) << message;
    EXPECT_NE(message.find("double"), std::string::npos) << message;
    EXPECT_NE(message.find("Particle"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace unimem
