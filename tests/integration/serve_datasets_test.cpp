// Bulk upload through the API on a real server: a class-folder dataset sent as many multipart files (their
// names are paths) becomes a stored version; the same content as one .zip is the same version (200,
// unchanged); hostile uploads (a traversing file name, an archive entry with "..", a zip bomb, a body that is
// not multipart) are refused with 4xx naming what is wrong, and nothing is written outside the workspace.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "integration/serve_util.h"
#include "tests_util.h"

namespace vigil::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

TEST(ServeDatasets, UploadsFilesOrAnArchiveAsAVersionAndRefusesHostileInput) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  for (const char* cls : {"with_mask", "without_mask"})
    for (int i = 0; i < 5; ++i)
      write_image(tmp / "masks" / cls / fmt::format("{}.jpg", i), 64, 48, i + (cls[7] == 'm' ? 0 : 20));
  ASSERT_EQ(
      run_shell(fmt::format("cd '{}' && python3 -c \"import shutil; shutil.make_archive('masks', 'zip', '.', "
                            "'masks')\"",
                            tmp.path().string()))
          .first,
      0);
  const fs::path model = make_model_file(tmp / "m.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 1);
  ServerProcess s(fmt::format("--model '{}'", model.string()), tmp / "run", "serve", ws);
  ASSERT_TRUE(s.running()) << s.log();
  httplib::Client c("127.0.0.1", s.port());

  httplib::MultipartFormDataItems parts;
  for (const char* cls : {"with_mask", "without_mask"})
    for (int i = 0; i < 5; ++i)
      parts.push_back({"files", read_file(tmp / "masks" / cls / fmt::format("{}.jpg", i)),
                       fmt::format("{}/{}.jpg", cls, i), "image/jpeg"});
  auto r = c.Post("/v1/datasets/masks/upload", parts);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const json first = json::parse(r->body);
  EXPECT_EQ(first["images"], 10);
  EXPECT_EQ(first["classes"], 2);
  EXPECT_EQ(first["task"], "classification");
  EXPECT_EQ(first["uploaded_files"], 10);

  r = c.Post("/v1/datasets/masks/upload",
             httplib::MultipartFormDataItems{
                 {"archive", read_file(tmp / "masks.zip"), "masks.zip", "application/zip"}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["id"], first["id"]) << "the same content is the same version";
  EXPECT_TRUE(json::parse(r->body)["unchanged"]);
  const json listed = json::parse(c.Get("/v1/datasets")->body);
  ASSERT_EQ(listed["datasets"].size(), 1u);
  EXPECT_EQ(json::parse(c.Get("/v1/datasets/masks")->body)["versions"].size(), 1u);
  EXPECT_EQ(c.Get("/v1/datasets/nothere")->status, 404);

  // Hostile: a file name that climbs out, an archive entry that does, a bomb, no multipart.
  r = c.Post("/v1/datasets/evil/upload",
             httplib::MultipartFormDataItems{{"files", "x", "../../outside.jpg", "image/jpeg"}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_THAT(r->body, HasSubstr("path traversal"));
  ASSERT_EQ(run_shell(fmt::format(
                          "python3 -c \"import zipfile; z = zipfile.ZipFile('{}', 'w'); "
                          "z.writestr('a/ok.jpg', 'x'); z.writestr('../../../outside.txt', 'x'); z.close()\"",
                          (tmp / "evil.zip").string()))
                .first,
            0);
  r = c.Post("/v1/datasets/evil/upload",
             httplib::MultipartFormDataItems{
                 {"archive", read_file(tmp / "evil.zip"), "evil.zip", "application/zip"}});
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_THAT(r->body, HasSubstr("'../../../outside.txt'"));
  ASSERT_EQ(
      run_shell(
          fmt::format("python3 -c \"import zipfile; z = zipfile.ZipFile('{}', 'w', zipfile.ZIP_DEFLATED); "
                      "z.writestr('zeros.jpg', bytes(200 << 20)); z.close()\"",
                      (tmp / "bomb.zip").string()))
          .first,
      0);
  r = c.Post("/v1/datasets/bomb/upload",
             httplib::MultipartFormDataItems{
                 {"archive", read_file(tmp / "bomb.zip"), "bomb.zip", "application/zip"}});
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_THAT(r->body, HasSubstr("zip bomb"));
  r = c.Post("/v1/datasets/x/upload", "just text", "text/plain");
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(fs::exists(tmp / "outside.jpg"));
  EXPECT_FALSE(fs::exists(tmp / "outside.txt"));
  EXPECT_FALSE(fs::exists(tmp.path().parent_path() / "outside.txt"));
  // Refused uploads leave no scratch behind and create no dataset.
  EXPECT_TRUE(!fs::exists(ws / "tmp") || fs::is_empty(ws / "tmp"));
  EXPECT_EQ(json::parse(c.Get("/v1/datasets")->body)["datasets"].size(), 1u);
}

}  // namespace
}  // namespace vigil::testing
