// Bulk upload through the API on a real server: a class-folder dataset sent as many multipart files (their
// names are paths) becomes a stored version; the same content as one .zip is the same version (200,
// unchanged); hostile uploads (a traversing file name, an archive entry with "..", a zip bomb, a body that is
// not multipart) are refused with 4xx naming what is wrong, and nothing is written outside the workspace.
// A version's page data (statistics, validation report, samples) and its images are served; an image name
// that climbs out of the dataset, or names a file that is not one of its samples, is refused.

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

  // One version for the UI: statistics, validation report, samples; then a sample's bytes by its name.
  const std::string id = first["id"];
  const std::string version = "/v1/datasets/masks/versions/" + id.substr(0, 12);
  r = c.Get(version + "?samples=4");
  ASSERT_EQ(r->status, 200) << r->body;
  const json detail = json::parse(r->body);
  EXPECT_EQ(detail["id"], id);
  EXPECT_EQ(detail["class_names"], json({"with_mask", "without_mask"}));
  ASSERT_EQ(detail["stats"]["classes"].size(), 2u);
  EXPECT_EQ(detail["stats"]["classes"][1]["images"], 5);
  EXPECT_EQ(detail["validation"]["summary"]["errors"], 0) << detail["validation"].dump();
  ASSERT_EQ(detail["samples"].size(), 4u);
  EXPECT_EQ(detail["samples"][0]["label"], "with_mask");
  EXPECT_EQ(detail["samples"][3]["label"], "without_mask") << "spread over the classes";
  const std::string sample = detail["samples"][3]["file"];
  r = c.Get(version + "/image?file=" + httplib::detail::encode_query_param(sample));
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(r->body, read_file(tmp / "masks" / sample)) << "the stored bytes of " << sample;
  EXPECT_FALSE(r->has_header("Cache-Control")) << "an id prefix may come to mean another version";
  r = c.Get("/v1/datasets/masks/versions/" + id +
            "/image?file=" + httplib::detail::encode_query_param(sample));
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->get_header_value("Cache-Control"), HasSubstr("immutable")) << "a full id names fixed bytes";
  EXPECT_EQ(c.Get("/v1/datasets/masks/versions/ffffff")->status, 404);
  // A stored split: its sides' sizes and their class counts.
  const auto split_run = run_vigil("data split masks --val 0.4 --seed 1", ws);
  ASSERT_EQ(split_run.exit_code, 0) << split_run.err;
  const json split = json::parse(c.Get(version + "?samples=0")->body)["splits"]["default"];
  ASSERT_TRUE(split.is_object()) << split.dump();
  EXPECT_EQ(split["train"].get<int>() + split["val"].get<int>(), 10);
  for (const char* side : {"train", "val"}) {
    const auto counts = split["classes"][side].get<std::vector<int>>();
    ASSERT_EQ(counts.size(), 2u) << side;
    EXPECT_EQ(counts[0] + counts[1], split[side].get<int>()) << side << ": " << split.dump();
  }

  // Image names that climb out of the dataset or the store, absolute ones, and files that are not samples.
  write_text(tmp / "secret.txt", "not for clients");
  for (const char* bad :
       {"../../secret.txt", "with_mask/../../../secret.txt", "/etc/passwd", "a\\..\\b.jpg"}) {
    r = c.Get(version + "/image?file=" + httplib::detail::encode_query_param(bad));
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
    EXPECT_THAT(r->body, HasSubstr("file:")) << bad;
  }
  r = c.Get(version + "/image?file=" + httplib::detail::encode_query_param("manifest.json"));
  EXPECT_EQ(r->status, 404) << "only the version's samples: " << r->body;
  EXPECT_EQ(c.Get(version + "/image")->status, 400);

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
