#include <gtest/gtest.h>

#include <atomic>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"
#include "vigil/core/thread_pool.h"
#include "vigil/core/workspace.h"

namespace {

TEST(Hash, KnownVectors) {
  // FIPS 180-2 and RFC 1321 test vectors.
  EXPECT_EQ(vigil::hash_bytes("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(vigil::hash_bytes("", vigil::HashAlgo::kMd5), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(vigil::hash_bytes("abc", vigil::HashAlgo::kMd5), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Hash, FileMatchesBytesAndChangesWithOneByte) {
  vigil::testing::TempDir dir;
  std::string content(3 << 20, 'x');  // spans several read chunks
  vigil::write_file_atomic(dir / "f", content);
  EXPECT_EQ(vigil::hash_file(dir / "f"), vigil::hash_bytes(content));
  content[12345] = 'y';
  vigil::write_file_atomic(dir / "f", content);
  EXPECT_EQ(vigil::hash_file(dir / "f"), vigil::hash_bytes(content));
  EXPECT_THROW(vigil::hash_file(dir / "missing"), vigil::NotFound);
}

TEST(Fs, ReadMissingIsNotFoundAndListingIsSorted) {
  vigil::testing::TempDir dir;
  EXPECT_THROW(vigil::read_file(dir / "nope"), vigil::NotFound);
  vigil::testing::write_text(dir / "b/2.txt", "2");
  vigil::testing::write_text(dir / "a.txt", "1");
  vigil::testing::write_text(dir / "b/1.txt", "1");
  auto files = vigil::list_files_recursive(dir.path());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(vigil::to_utf8(files[0]), "a.txt");
  EXPECT_EQ(vigil::to_utf8(files[2]), "b/2.txt");
}

TEST(Strings, ClosestAndParsing) {
  EXPECT_EQ(vigil::levenshtein("kitten", "sitting"), 3u);
  EXPECT_EQ(vigil::closest_match("lrr", {"lr", "epochs"}).value(), "lr");
  EXPECT_FALSE(vigil::closest_match("zzzzzzzz", {"lr"}).has_value());
  EXPECT_EQ(vigil::parse_int("42").value(), 42);
  EXPECT_FALSE(vigil::parse_int("4x").has_value());
  EXPECT_FALSE(vigil::parse_double("").has_value());
  EXPECT_TRUE(std::isnan(vigil::parse_double("nan").value()));
  EXPECT_EQ(vigil::split_ws("  a  b\tc\n").size(), 3u);
}

TEST(Errors, ExitCodesAndResult) {
  EXPECT_EQ(vigil::exit_code_for(vigil::ErrorCode::kNotFound), vigil::ExitCode::kNotFound);
  EXPECT_EQ(vigil::exit_code_for(vigil::ErrorCode::kInvalidArgument), vigil::ExitCode::kUsage);
  vigil::Result<int> bad(vigil::Status(vigil::ErrorCode::kIo, "disk"));
  EXPECT_FALSE(bad.is_ok());
  EXPECT_THROW(bad.value(), vigil::IoError);
  vigil::Result<int> good(3);
  EXPECT_EQ(good.value(), 3);
  try {
    VIGIL_ASSERT(1 == 2, "math broke");
    FAIL();
  } catch (const vigil::InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("core_test.cpp:"), std::string::npos) << e.what();
  }
}

TEST(ThreadPool, ParallelForCoversAllAndRethrows) {
  std::vector<std::atomic<int>> hits(1000);
  vigil::parallel_for(hits.size(), 4, [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(vigil::parallel_for(10, 2,
                                   [](size_t i) {
                                     if (i == 5) throw vigil::DataError("x");
                                   }),
               vigil::DataError);
  vigil::ThreadPool pool(2);
  auto f = pool.submit([] { return 7; });
  EXPECT_EQ(f.get(), 7);
}

TEST(Workspace, ResolutionOrder) {
  setenv("VIGIL_WORKSPACE", "/tmp/from-env", 1);
  EXPECT_EQ(vigil::Workspace::resolve("").root(), "/tmp/from-env");
  EXPECT_EQ(vigil::Workspace::resolve("/tmp/from-cli").root(), "/tmp/from-cli");
  unsetenv("VIGIL_WORKSPACE");
  EXPECT_EQ(vigil::Workspace::resolve("").root().filename(), ".vigil");
}

}  // namespace
