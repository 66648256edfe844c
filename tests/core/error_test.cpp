#include "unimem/core/error.hpp"

#include <gtest/gtest.h>

#include <string>

namespace unimem {
namespace {

TEST(Error, HierarchyDerivesFromError) {
  EXPECT_THROW(throw InvalidArgument("x"), Error);
  EXPECT_THROW(throw TypeMismatch("x"), Error);
  EXPECT_THROW(throw NotSupported("x"), Error);
  EXPECT_THROW(throw BackendError("opencl", -5, "CL_OUT_OF_RESOURCES", "clEnqueueWriteBuffer"), Error);
  EXPECT_THROW(throw OutOfMemory(1, "sim:0", 0, 0), Error);
}

TEST(Error, BackendErrorCarriesCodeAndName) {
  const BackendError e("cuda", 2, "cudaErrorMemoryAllocation", "cudaMalloc");
  EXPECT_EQ(e.backend(), "cuda");
  EXPECT_EQ(e.code(), 2);
  EXPECT_EQ(e.code_name(), "cudaErrorMemoryAllocation");
  const std::string what = e.what();
  EXPECT_NE(what.find("cudaMalloc"), std::string::npos) << what;
  EXPECT_NE(what.find("cudaErrorMemoryAllocation"), std::string::npos) << what;
  EXPECT_NE(what.find("(2)"), std::string::npos) << what;
}

TEST(Error, OutOfMemoryNamesRequestAndDeviceState) {
  const OutOfMemory e(3000, "cuda:1", 1024, 4096, "fragmented");
  EXPECT_EQ(e.requested(), 3000U);
  EXPECT_EQ(e.device(), "cuda:1");
  EXPECT_EQ(e.free_bytes(), 1024U);
  EXPECT_EQ(e.total_bytes(), 4096U);
  const std::string what = e.what();
  EXPECT_NE(what.find("3000"), std::string::npos) << what;
  EXPECT_NE(what.find("cuda:1"), std::string::npos) << what;
  EXPECT_NE(what.find("1.00 KiB"), std::string::npos) << what;
  EXPECT_NE(what.find("4.00 KiB"), std::string::npos) << what;
  EXPECT_NE(what.find("fragmented"), std::string::npos) << what;
}

TEST(Error, QuotedEscapesBytesAndCutsLongText) {
  EXPECT_EQ(quoted("sim:1GiB"), "'sim:1GiB'");
  EXPECT_EQ(quoted(std::string_view("a\xff\nb\\", 5)), "'a\\xff\\x0ab\\x5c'");
  const std::string cut = quoted(std::string(100000, 'x'), 10);
  EXPECT_EQ(cut, "'xxxxxxxxxx' (cut, 100000 bytes in all)");
}

TEST(Error, QuotedPathKeepsALongPathWhole) {
  const std::string path = "/tmp/" + std::string(300, 'd') + "/trace.csv";
  EXPECT_EQ(quoted_path(path), "'" + path + "'");
  EXPECT_NE(unimem::quoted(path), "'" + path + "'");  // the default limit would cut it
  EXPECT_EQ(quoted_path("a\nb"), "'a\\x0ab'");
}

}  // namespace
}  // namespace unimem
