// Dataset archives as hostile input, on archives made by the real tools (tar, Python's zipfile): a zipped
// class-folder dataset ingests like its folder (same version id) and leaves no scratch behind; path
// traversal, absolute names, symbolic links, duplicate names, too many entries and a zip bomb are refused
// naming the archive and the entry, nothing is written outside the destination, and a refused archive leaves
// nothing at all.

#include "vigil/data/archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/store.h"

namespace vigil::data {
namespace {

using ::testing::HasSubstr;
using vigil::testing::run_shell;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

/// Writes a zip with Python's zipfile: entries {name: text}; names are stored exactly as given.
fs::path make_zip(const fs::path& out, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string py = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n";
  for (const auto& [name, text] : entries) py += fmt::format("z.writestr({:?}, {:?})\n", name, text);
  py += "z.close()\n";
  vigil::testing::write_text(out.string() + ".py", py);
  const auto [rc, msg] = run_shell(fmt::format("python3 '{}.py' '{}'", out.string(), out.string()));
  EXPECT_EQ(rc, 0) << msg;
  return out;
}

std::string refusal(const fs::path& archive, const fs::path& dest, const ArchiveLimits& limits = {}) {
  try {
    extract_archive(archive, dest, limits);
  } catch (const DataError& e) {
    EXPECT_FALSE(fs::exists(dest)) << "a refused archive leaves nothing behind";
    return e.what();
  }
  ADD_FAILURE() << archive << " was not refused";
  return "";
}

TEST(Archive, AZippedDatasetIngestsLikeItsFolder) {
  TempDir tmp;
  for (const char* cls : {"with_mask", "without_mask"})
    for (int i = 0; i < 4; ++i)
      vigil::testing::write_image(tmp / "masks" / cls / fmt::format("{}.jpg", i), 48, 40,
                                  i + (cls[7] == 'm' ? 0 : 10));
  ASSERT_EQ(
      run_shell(
          fmt::format(
              "cd '{}' && python3 -c \"import shutil; shutil.make_archive('masks', 'zip', '.', 'masks')\"",
              tmp.path().string()))
          .first,
      0);
  ASSERT_EQ(run_shell(fmt::format("cd '{}' && tar czf masks.tar.gz masks", tmp.path().string())).first, 0);
  Workspace ws(tmp / "ws");
  DatasetStore store(ws);
  IngestOptions o;
  o.name = "masks";
  const IngestResult folder = store.ingest(tmp / "masks", o);
  const IngestResult zipped = store.ingest(tmp / "masks.zip", o);
  const IngestResult tarred = store.ingest(tmp / "masks.tar.gz", o);
  EXPECT_EQ(folder.version.images, 8u);
  EXPECT_EQ(zipped.version.id, folder.version.id) << "same content, same version";
  EXPECT_EQ(tarred.version.id, folder.version.id);
  EXPECT_TRUE(zipped.unchanged);
  EXPECT_FALSE(fs::exists(ws.root() / "tmp") && !fs::is_empty(ws.root() / "tmp")) << "scratch removed";
}

TEST(Archive, HostileEntriesAreRefusedAndNothingLandsOutside) {
  TempDir tmp;
  const fs::path dest = tmp / "out" / "dest";
  std::string why = refusal(make_zip(tmp / "up.zip", {{"ok/a.txt", "a"}, {"../../evil.txt", "x"}}), dest);
  EXPECT_THAT(why, HasSubstr("up.zip"));
  EXPECT_THAT(why, HasSubstr("'../../evil.txt'"));
  EXPECT_THAT(why, HasSubstr("path traversal"));
  EXPECT_FALSE(fs::exists(tmp / "evil.txt"));
  EXPECT_FALSE(fs::exists(tmp / "out" / "evil.txt"));

  why = refusal(make_zip(tmp / "abs.zip", {{"/tmp/vigil-abs-test.txt", "x"}}), dest);
  EXPECT_THAT(why, HasSubstr("an absolute path"));
  EXPECT_FALSE(fs::exists("/tmp/vigil-abs-test.txt"));

  why = refusal(make_zip(tmp / "dup.zip", {{"a/x.txt", "1"}, {"a//x.txt", "2"}}), dest);
  EXPECT_THAT(why, HasSubstr("a duplicate name"));

  // A symbolic link (to anywhere) is refused: a later entry could write through it.
  fs::create_directories(tmp / "linked");
  fs::create_symlink("/etc/passwd", tmp / "linked" / "passwd");
  ASSERT_EQ(run_shell(fmt::format("cd '{}' && tar cf link.tar linked", tmp.path().string())).first, 0);
  why = refusal(tmp / "link.tar", dest);
  EXPECT_THAT(why, HasSubstr("a symbolic link"));

  // Not an archive at all.
  vigil::testing::write_text(tmp / "fake.zip", "this is not a zip file");
  why = refusal(tmp / "fake.zip", dest);
  EXPECT_THAT(why, HasSubstr("fake.zip"));
}

TEST(Archive, BombsAndFloodsAreStoppedByWhatIsWrittenNotWhatHeadersSay) {
  TempDir tmp;
  const fs::path dest = tmp / "dest";
  // 300 MiB of zeros deflates to about 300 KiB: refused once 100x its size is unpacked, long before 300 MiB.
  ASSERT_EQ(
      run_shell(
          fmt::format("python3 -c \"import zipfile; z = zipfile.ZipFile('{}', 'w', zipfile.ZIP_DEFLATED); "
                      "z.writestr('zeros.bin', bytes(300 << 20)); z.close()\"",
                      (tmp / "bomb.zip").string()))
          .first,
      0);
  ASSERT_LT(fs::file_size(tmp / "bomb.zip"), 2u << 20);
  const std::string why = refusal(tmp / "bomb.zip", dest);
  EXPECT_THAT(why, HasSubstr("zip bomb"));

  // 100,000 tiny entries: refused by the default limit, before they are all written.
  ASSERT_EQ(run_shell(fmt::format("python3 -c \"import zipfile; z = zipfile.ZipFile('{}', 'w'); "
                                  "[z.writestr(f'd/{{i}}.txt', b'') for i in range(100000)]; z.close()\"",
                                  (tmp / "flood.zip").string()))
                .first,
            0);
  EXPECT_THAT(refusal(tmp / "flood.zip", dest), HasSubstr("more than 50000 entries"));
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 50; ++i) many.emplace_back(fmt::format("f/{}.txt", i), "x");
  ArchiveLimits few;
  few.max_entries = 20;
  EXPECT_THAT(refusal(make_zip(tmp / "many.zip", many), dest, few), HasSubstr("more than 20 entries"));
  ArchiveLimits small;
  small.max_total_bytes = 1000;
  EXPECT_THAT(refusal(make_zip(tmp / "big.zip", {{"a.txt", std::string(5000, 'a')}}), dest, small),
              HasSubstr("more than"));
  // OS metadata is left out, not refused; a lone top folder is the root.
  const ExtractResult ok = extract_archive(
      make_zip(tmp / "mac.zip", {{"data/a.txt", "a"}, {"__MACOSX/data/._a.txt", "junk"}}), dest);
  EXPECT_EQ(ok.files, 1u);
  EXPECT_EQ(ok.skipped.size(), 1u);
  EXPECT_EQ(ok.root, dest / "data");
}

TEST(Archive, SafeRelativePathsNormaliseOrRefuse) {
  EXPECT_EQ(safe_relative_path("./a//b/c.jpg"), fs::path("a/b/c.jpg"));
  EXPECT_THROW(safe_relative_path("a/../../b"), DataError);
  EXPECT_THROW(safe_relative_path("C:/x"), DataError);
  EXPECT_THROW(safe_relative_path("a\\b"), DataError);
  EXPECT_THROW(safe_relative_path(""), DataError);
  EXPECT_THROW(safe_relative_path("./"), DataError);
}

}  // namespace
}  // namespace vigil::data
