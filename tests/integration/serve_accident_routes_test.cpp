// The accident-detection seed's routes on a real `vigil serve` (routes_accident.cpp): a tiny classifier
// trained on generated "Accident" / "Non Accident" folders, served as acc@production with a retrain config.
// POST /predict answers the mean of the frames' Accident probabilities (checked against /v1/predict of each
// frame), the statistics and history come from the prediction log and survive a restart, /upload makes the
// version `vigil data ingest` makes of the same files in a class folder, /retrain?wait=true ends with a
// history, --positive-class names another class, and every bad request or unsuitable model is a 4xx naming
// what is wrong.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <map>

#include "integration/serve_util.h"
#include "integration/tiny_train.h"
#include "tests_util.h"

namespace vigil::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

/// 60 generated 48x48 images in class folders "Accident" and "Non Accident", ingested as "accidents" with a
/// 30% validation split; returns the source folder.
fs::path make_accident_folders(const fs::path& dir, const fs::path& ws) {
  const fs::path src = dir / "src";
  auto r = run_vigil("data synth '" + src.string() +
                         "' --task classification --images 60 --width 48 --height 48 --classes 2 --seed 2",
                     ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(src))
    if (e.is_directory()) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  EXPECT_EQ(classes.size(), 2u);
  fs::rename(classes.at(0), src / "Accident");
  fs::rename(classes.at(1), src / "Non Accident");
  fs::remove(src / "synth.yaml");
  r = run_vigil("data ingest '" + src.string() + "' --name accidents", ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_vigil("data split accidents --val 0.3 --seed 1", ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return src;
}

std::vector<fs::path> images_in(const fs::path& dir, size_t n) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  files.resize(std::min(n, files.size()));
  return files;
}

httplib::MultipartFormDataItems frames_of(const std::vector<fs::path>& files) {
  httplib::MultipartFormDataItems items;
  for (const auto& f : files) items.push_back({"files", read_file(f), f.filename().string(), "image/jpeg"});
  return items;
}

json post_sequence(httplib::Client& c, const std::vector<fs::path>& files) {
  auto r = c.Post("/predict", frames_of(files));
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body);
}

/// The Accident probability /v1/predict answers for one image alone.
double v1_probability(httplib::Client& c, const fs::path& file) {
  auto r = c.Post("/v1/predict",
                  httplib::MultipartFormDataItems{{"file", read_file(file), "f.jpg", "image/jpeg"}});
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body)["classification"]["probs"]["Accident"].get<double>();
}

/// The id `vigil data ingest` prints ("id <hex>").
std::string ingested_id(const std::string& out) {
  const auto pos = out.find("id ");
  return pos == std::string::npos ? "" : out.substr(pos + 3, 64);
}

/// /predict, its statistics and history on the served acc@production.
void check_predictions(httplib::Client& c, const fs::path& src) {
  EXPECT_EQ(json::parse(c.Get("/health")->body),
            json({{"live", true}, {"status", "Model is up and running"}}));

  const auto accident = images_in(src / "Accident", 3);
  const auto other = images_in(src / "Non Accident", 2);
  const json first = post_sequence(c, accident);
  double mean = 0;
  for (const auto& f : accident) mean += v1_probability(c, f) / 3;
  EXPECT_NEAR(first["prediction"].get<double>(), mean, 1e-5) << "the mean of the frames' probabilities";
  EXPECT_EQ(first["stored_in_mongodb"], false);
  EXPECT_EQ(first["images_stored"], 3) << "log_images=1 keeps every frame";
  EXPECT_EQ(first["prediction_ids"].size(), 3u);
  EXPECT_EQ(first["positive_class"], "Accident");
  EXPECT_EQ(first["label"], first["prediction"].get<double>() >= 0.5 ? "Accident" : "Non Accident");
  EXPECT_EQ(first["model"]["name"], "acc");
  const json second = post_sequence(c, {other[0]});
  const json third = post_sequence(c, {other[1], accident[0]});
  std::vector<json> answers = {first, second, third};

  const json stats = json::parse(c.Get("/prediction-stats")->body);
  int positive = 0;
  double sum = 0;
  for (const auto& a : answers) {
    positive += a["prediction"].get<double>() >= 0.5 ? 1 : 0;
    sum += a["prediction"].get<double>();
  }
  EXPECT_EQ(stats["total_predictions"], 3) << stats.dump();
  EXPECT_EQ(stats["accident_predictions"], positive);
  EXPECT_EQ(stats["no_accident_predictions"], 3 - positive);
  EXPECT_NEAR(stats["accident_rate"].get<double>(), 100.0 * positive / 3, 1e-3);
  EXPECT_NEAR(stats["average_prediction"].get<double>(), sum / 3, 1e-5);
  EXPECT_EQ(stats["total_frames"], 6);

  const json history = json::parse(c.Get("/prediction-history?limit=2")->body);
  ASSERT_EQ(history["prediction_history"].size(), 2u) << history.dump();
  EXPECT_EQ(history["total_records"], 2);
  EXPECT_EQ(history["total_sequences"], 3);
  const json& newest = history["prediction_history"][0];
  EXPECT_EQ(newest["prediction_id"], third["sequence_id"]) << "newest first";
  EXPECT_EQ(newest["prediction_ids"], third["prediction_ids"]) << "frames in request order";
  EXPECT_EQ(newest["image_count"], 2);
  EXPECT_NEAR(newest["prediction_result"].get<double>(), third["prediction"].get<double>(), 1e-6);
  EXPECT_EQ(c.Get("/prediction-history?limit=0")->status, 400);

  // Bad sequences: nothing to predict, not an image, the wrong method.
  auto none = c.Post("/predict", httplib::MultipartFormDataItems{{"other", "x", "a.jpg", "image/jpeg"}});
  EXPECT_EQ(none->status, 400);
  EXPECT_THAT(none->body, HasSubstr("files"));
  auto text =
      c.Post("/predict", httplib::MultipartFormDataItems{{"files", "not an image", "a.jpg", "image/jpeg"}});
  EXPECT_EQ(text->status, 415);
  EXPECT_THAT(text->body, HasSubstr("a.jpg"));
  auto get = c.Get("/predict");
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  EXPECT_EQ(json::parse(c.Get("/prediction-stats")->body)["total_predictions"], 3)
      << "refusals are not logged";
}

/// The data sources and /upload on the served acc@production.
void check_data(httplib::Client& c, const fs::path& src, const fs::path& tmp, const fs::path& ws) {
  const auto other = images_in(src / "Non Accident", 2);
  const json sources = json::parse(c.Get("/training-data-sources")->body);
  EXPECT_EQ(sources["dataset"]["name"], "accidents") << sources.dump();
  EXPECT_EQ(sources["file_based"]["train"].get<int>() + sources["file_based"]["val"].get<int>(), 60);
  EXPECT_EQ(sources["file_based"]["val"], 18) << "the stored 30% split";
  EXPECT_EQ(sources["split_source"], "split:default");
  EXPECT_EQ(
      sources["classes"]["train"]["Accident"].get<int>() + sources["classes"]["val"]["Accident"].get<int>(),
      static_cast<int>(std::distance(fs::directory_iterator(src / "Accident"), fs::directory_iterator())));
  EXPECT_EQ(sources["mongodb"]["connected"], false);

  // /upload: the version `vigil data ingest` makes of the same files under Accident/.
  auto items = frames_of(other);
  items.push_back({"label", "Accident", "", ""});
  auto up = c.Post("/upload", items);
  ASSERT_EQ(up->status, 200) << up->body;
  const json uploaded = json::parse(up->body);
  EXPECT_EQ(uploaded["status"], "Files uploaded successfully");
  EXPECT_EQ(uploaded["saved_to_disk"], true);
  EXPECT_EQ(uploaded["files_count"], 2);
  EXPECT_EQ(uploaded["dataset"], "uploads") << "never the training dataset the retrain config names";
  for (const auto& f : other) fs::copy_file(f, tmp / "same" / "Accident" / f.filename());
  const auto ingest = run_vigil("data ingest '" + (tmp / "same").string() + "' --name same", ws);
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  EXPECT_EQ(uploaded["version"], ingested_id(ingest.out)) << ingest.out;

  auto no_label = c.Post("/upload", frames_of(other));
  EXPECT_EQ(no_label->status, 400);
  EXPECT_THAT(no_label->body, HasSubstr("label"));
  for (const std::string bad : {"../x", "Acident"}) {
    auto items2 = frames_of(other);
    items2.push_back({"label", bad, "", ""});
    auto r = c.Post("/upload", items2);
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_THAT(r->body, HasSubstr("label")) << bad;
  }
  auto no_files = c.Post("/upload", httplib::MultipartFormDataItems{{"label", "Accident", "", ""}});
  EXPECT_EQ(no_files->status, 400);
  EXPECT_THAT(no_files->body, HasSubstr("files"));
  auto traversal =
      c.Post("/upload", httplib::MultipartFormDataItems{{"files", "x", "../../evil.jpg", "image/jpeg"},
                                                        {"label", "Accident", "", ""}});
  EXPECT_EQ(traversal->status, 400) << traversal->body;
}

TEST(ServeAccidentRoutes, TheSeedsRoutesAnswerFromVigilsOwnParts) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  const fs::path src = make_accident_folders(tmp.path(), ws);
  write_text(tmp / "train.yaml", tiny_classifier_config("accidents"));
  const std::string config = (tmp / "train.yaml").string();
  auto first = run_vigil("retrain --config '" + config + "' --model acc --run first", ws);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  fs::create_directories(tmp / "same" / "Accident");
  {
    ServerProcess s(fmt::format("--model acc@production --retrain-config '{}' --log-images 1", config),
                    tmp / "run1", "serve", ws);
    ASSERT_TRUE(s.running()) << s.log();
    httplib::Client c("127.0.0.1", s.port());
    c.set_read_timeout(300);
    check_predictions(c, src);
    check_data(c, src, tmp.path(), ws);

    auto started = c.Post("/retrain");
    ASSERT_EQ(started->status, 202) << started->body;
    const json job = json::parse(started->body);
    EXPECT_EQ(job["status"], "Retraining started");
    EXPECT_EQ(started->get_header_value("Location"), "/v1/jobs/" + job["job"]["id"].get<std::string>());
    EXPECT_EQ(c.Delete("/v1/jobs/" + job["job"]["id"].get<std::string>())->status, 202)
        << "one training is enough";
    auto waited = c.Post("/retrain?wait=true");
    ASSERT_EQ(waited->status, 200) << waited->body;
    const json done = json::parse(waited->body);
    EXPECT_EQ(done["status"], "Retraining completed") << done.dump(1);
    ASSERT_TRUE(done["history"].contains("loss")) << done.dump(1);
    EXPECT_EQ(done["history"]["loss"].size(), 1u) << "one epoch";
    EXPECT_EQ(done["history"]["epoch"].size(), 1u);
    EXPECT_TRUE(done["decision"]["state"] == "promoted" || done["decision"]["state"] == "kept")
        << done.dump(1);
    EXPECT_TRUE(done["decision"].contains("champion")) << done.dump(1);
  }
  // The statistics are the log's: a new server process answers the same.
  {
    ServerProcess s("--model acc@production", tmp / "run2", "serve", ws);
    ASSERT_TRUE(s.running()) << s.log();
    httplib::Client c("127.0.0.1", s.port());
    const json stats = json::parse(c.Get("/prediction-stats")->body);
    EXPECT_EQ(stats["total_predictions"], 3) << stats.dump();
    EXPECT_EQ(json::parse(c.Get("/prediction-history")->body)["total_records"], 3);
    auto retrain = c.Post("/retrain");
    EXPECT_EQ(retrain->status, 409) << "no retrain config";
    EXPECT_THAT(retrain->body, HasSubstr("retrain_config"));
  }
}

json get_json(httplib::Client& c, const std::string& path) {
  auto r = c.Get(path);
  EXPECT_EQ(r->status, 200) << path << ": " << r->body;
  return json::parse(r->body);
}

/// /prediction-stats against the answers of the sequences posted (on any server of the store).
void expect_stats_of(const json& stats, const std::vector<json>& answers) {
  int positive = 0, frames = 0;
  double sum = 0;
  for (const auto& a : answers) {
    positive += a["prediction"].get<double>() >= 0.5 ? 1 : 0;
    frames += static_cast<int>(a["prediction_ids"].size());
    sum += a["prediction"].get<double>();
  }
  const auto n = static_cast<int>(answers.size());
  EXPECT_EQ(stats["total_predictions"], n) << stats.dump();
  EXPECT_EQ(stats["accident_predictions"], positive) << stats.dump();
  EXPECT_EQ(stats["total_frames"], frames) << stats.dump();
  EXPECT_NEAR(stats["average_prediction"].get<double>(), n > 0 ? sum / n : 0.0, 1e-5) << stats.dump();
}

/// /prediction-history against the answers: every sequence once, with its frames in request order.
void expect_history_of(const json& history, const std::vector<json>& answers) {
  ASSERT_EQ(history["total_sequences"], answers.size()) << history.dump();
  std::map<std::string, json> by_id;
  for (const auto& record : history["prediction_history"])
    by_id[record["prediction_id"].get<std::string>()] = record;
  ASSERT_EQ(by_id.size(), answers.size()) << history.dump();
  for (const auto& a : answers) {
    const json& record = by_id[a["sequence_id"].get<std::string>()];
    EXPECT_EQ(record["prediction_ids"], a["prediction_ids"]) << record.dump();
    EXPECT_NEAR(record["prediction_result"].get<double>(), a["prediction"].get<double>(), 1e-6);
  }
}

// The statistics are read from the log incrementally (each call reads the rows since the last one, less an
// overlap that re-reads recent rows): every frame counts once, whichever server of the store answered it, and
// a server started later (a restart: one full read) answers the very same JSON.
TEST(ServeAccidentRoutes, TheStatisticsAreReadIncrementallyAndAgreeAcrossServersOfOneStore) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  const fs::path model = make_model_file(tmp / "acc.vgm", "mask_small_cnn", {"Accident", "Non Accident"}, 5);
  std::vector<fs::path> images;
  for (int i = 0; i < 5; ++i) {
    images.push_back(tmp / fmt::format("f{}.jpg", i));
    write_image(images.back(), 64, 48, i + 1);
  }
  ServerProcess a("--model '" + model.string() + "'", tmp / "a", "serve", ws);
  ASSERT_TRUE(a.running()) << a.log();
  httplib::Client ca("127.0.0.1", a.port());
  std::vector<json> answers;
  expect_stats_of(get_json(ca, "/prediction-stats"), answers);  // an empty log: nothing to read yet
  answers.push_back(post_sequence(ca, {images[0], images[1], images[2]}));
  answers.push_back(post_sequence(ca, {images[3]}));
  expect_stats_of(get_json(ca, "/prediction-stats"), answers);
  answers.push_back(post_sequence(ca, {images[4], images[0]}));
  answers.push_back(post_sequence(ca, {images[1]}));
  expect_stats_of(get_json(ca, "/prediction-stats"), answers);  // the overlap re-read every earlier row
  expect_stats_of(get_json(ca, "/prediction-stats"), answers);  // nothing new: the same
  expect_history_of(get_json(ca, "/prediction-history?limit=100"), answers);

  // A server started after, on the same store: its first read is a whole one, and answers the same.
  ServerProcess b("--model '" + model.string() + "'", tmp / "b", "serve", ws);
  ASSERT_TRUE(b.running()) << b.log();
  httplib::Client cb("127.0.0.1", b.port());
  EXPECT_EQ(get_json(cb, "/prediction-stats"), get_json(ca, "/prediction-stats"));
  EXPECT_EQ(get_json(cb, "/prediction-history?limit=100"), get_json(ca, "/prediction-history?limit=100"));

  // Rows written by the other server reach the first one's incremental read (b's own read writes them).
  answers.push_back(post_sequence(cb, {images[2], images[3]}));
  expect_stats_of(get_json(cb, "/prediction-stats"), answers);
  expect_stats_of(get_json(ca, "/prediction-stats"), answers);
  expect_history_of(get_json(ca, "/prediction-history?limit=100"), answers);
  EXPECT_EQ(get_json(ca, "/prediction-stats"), get_json(cb, "/prediction-stats"));
  EXPECT_EQ(get_json(ca, "/prediction-history?limit=100"), get_json(cb, "/prediction-history?limit=100"));
  const json two = get_json(ca, "/prediction-history?limit=2");
  EXPECT_EQ(two["total_records"], 2);
  EXPECT_EQ(two["prediction_history"][0]["prediction_id"], answers.back()["sequence_id"]) << "newest first";
  EXPECT_EQ(two["total_sequences"], 5);
}

TEST(ServeAccidentRoutes, AModelWithoutThePositiveClassOrADetectorIsRefused) {
  TempDir tmp;
  const fs::path masks =
      make_model_file(tmp / "masks.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 3);
  const fs::path guns =
      make_model_file(tmp / "guns.vgm", "fasterrcnn_mobilenet_v3_large_320_fpn", {"gun"}, 1);
  ServerProcess a("--model '" + masks.string() + "'", tmp / "a");
  ServerProcess b("--model '" + guns.string() + "'", tmp / "b");
  ASSERT_TRUE(a.running()) << a.log();
  ASSERT_TRUE(b.running()) << b.log();
  const fs::path img = tmp / "x.jpg";
  write_image(img, 64, 48, 1);
  const httplib::MultipartFormDataItems frame = {{"files", read_file(img), "x.jpg", "image/jpeg"}};

  httplib::Client ca("127.0.0.1", a.port());
  auto r = ca.Post("/predict", frame);
  EXPECT_EQ(r->status, 409);
  EXPECT_THAT(r->body, HasSubstr("no class named like 'Accident'"));
  EXPECT_THAT(r->body, HasSubstr("positive_class"));
  auto up =
      ca.Post("/upload", httplib::MultipartFormDataItems{{"files", read_file(img), "x.jpg", "image/jpeg"},
                                                         {"label", "Accident", "", ""}});
  EXPECT_EQ(up->status, 400) << "not a class of the served model: " << up->body;
  EXPECT_THAT(up->body, HasSubstr("with_mask, without_mask"));

  // The same model with the class named: answered.
  ServerProcess named("--model '" + masks.string() + "' --positive-class without_mask", tmp / "named");
  ASSERT_TRUE(named.running()) << named.log();
  httplib::Client cn("127.0.0.1", named.port());
  r = cn.Post("/predict", frame);
  ASSERT_EQ(r->status, 200) << r->body;
  const json answer = json::parse(r->body);
  EXPECT_EQ(answer["positive_class"], "without_mask");
  EXPECT_EQ(answer["prediction"], answer["frames"][0]["probability"]) << "one frame: its own probability";

  httplib::Client cb("127.0.0.1", b.port());
  r = cb.Post("/predict", frame);
  EXPECT_EQ(r->status, 409);
  EXPECT_THAT(r->body, HasSubstr("detector"));
  EXPECT_EQ(json::parse(cb.Get("/prediction-stats")->body)["total_predictions"], 0);
}

}  // namespace
}  // namespace vigil::testing
