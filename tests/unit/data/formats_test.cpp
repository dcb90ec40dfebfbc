// Format readers and writers: layouts, malformed input per format, the registry, round trips, and the real
// shared datasets when present.

#include "vigil/data/formats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/validate.h"

namespace vigil::data {
namespace {

using vigil::testing::TempDir;
using vigil::testing::write_image;
using vigil::testing::write_text;

size_t count_issues(const Dataset& ds, const std::string& kind) {
  return std::count_if(ds.issues.begin(), ds.issues.end(), [&](const Issue& i) { return i.kind == kind; });
}

const Issue* find_issue(const Dataset& ds, const std::string& kind) {
  for (const auto& i : ds.issues) {
    if (i.kind == kind) return &i;
  }
  return nullptr;
}

const Sample* find_sample(const Dataset& ds, const std::string& file) {
  for (const auto& s : ds.samples) {
    if (s.file == file) return &s;
  }
  return nullptr;
}

std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919 + 13) % 251);
  return s;
}

Sample make_sample(std::string file, std::vector<Box> boxes = {}, int width = 0, int height = 0) {
  Sample s;
  s.file = std::move(file);
  s.boxes = std::move(boxes);
  s.width = width;
  s.height = height;
  return s;
}

ImageSource from_root(const Dataset& ds) {
  return [root = ds.root](const Sample& s) {
    return root / fs::path(std::u8string(s.file.begin(), s.file.end()));
  };
}

std::string voc_xml(const std::string& filename, const std::string& objects, int w = 100, int h = 80) {
  return "<annotation><folder>JPEGImages</folder><filename>" + filename + "</filename><size><width>" +
         std::to_string(w) + "</width><height>" + std::to_string(h) + "</height><depth>3</depth></size>" +
         objects + "</annotation>\n";
}

std::string voc_object(const std::string& name, const std::string& coords, int difficult = 0,
                       int truncated = 0) {
  auto c = split_ws(coords);
  return "<object><name>" + name + "</name><difficult>" + std::to_string(difficult) +
         "</difficult><truncated>" + std::to_string(truncated) + "</truncated><bndbox><xmin>" + c[0] +
         "</xmin><ymin>" + c[1] + "</ymin><xmax>" + c[2] + "</xmax><ymax>" + c[3] +
         "</ymax></bndbox></object>";
}

// ---------------------------------------------------------------- registry

TEST(FormatRegistry, ListsBuiltinsAndUnknownNameListsValidOnes) {
  auto names = format_names();
  for (const char* n : {"guns", "voc", "yolo", "coco", "imagefolder"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  try {
    find_format("pascal");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("coco"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pascal"), std::string::npos) << e.what();
  }
}

TEST(FormatRegistry, BuiltinRegistrationIsIdempotentAndThreadSafe) {
  const size_t before = format_names().size();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 50; ++i) {
        register_builtin_formats();
        (void)find_format("coco");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(format_names().size(), before);
}

TEST(FormatRegistry, CustomFormatAndReadOnlyWriteError) {
  register_format({"test_custom", "a test format",
                   [](const fs::path& root, const ReadOptions&) {
                     Dataset ds;
                     ds.classes = {"x"};
                     ds.samples.push_back(make_sample("b.jpg"));
                     ds.samples.push_back(make_sample("a.jpg"));
                     return ds;
                   },
                   nullptr});
  TempDir dir;
  auto ds = read_dataset(dir.path(), "test_custom");
  EXPECT_EQ(ds.format, "test_custom");
  EXPECT_EQ(ds.root, dir.path());
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].file, "a.jpg");  // sorted by file
  EXPECT_THROW(write_dataset(ds, from_root(ds), dir / "out", "guns"), InvalidArgument);
  EXPECT_THROW(register_format({"", "", nullptr, nullptr}), InvalidArgument);
}

TEST(FormatRegistry, MissingRootIsNotFound) {
  TempDir dir;
  EXPECT_THROW(read_dataset(dir / "nope", "guns"), NotFound);
  EXPECT_THROW(read_dataset(dir / "nope", "auto"), NotFound);
  EXPECT_THROW(read_dataset(dir.path(), "guns"), NotFound);  // no Images/ Labels/
}

TEST(FormatRegistry, DetectsEachLayout) {
  TempDir dir;
  write_text(dir / "guns/Images/1.jpeg", "x");
  write_text(dir / "guns/Labels/1.txt", "1\n1 2 3 4\n");
  write_text(dir / "yolo/images/1.jpg", "x");
  write_text(dir / "yolo/labels/1.txt", "0 0.5 0.5 0.1 0.1\n");
  write_text(dir / "yolo_split/images/train/1.jpg", "x");
  write_text(dir / "yolo_split/labels/train/1.txt", "");
  write_text(dir / "voc/Annotations/1.xml", voc_xml("1.jpg", ""));
  write_text(dir / "coco/annotations.json", "{}");
  write_text(dir / "coco_file.json", "{}");
  write_text(dir / "folder/cat/1.jpg", "x");
  write_text(dir / "split_folder/train/cat/1.jpg", "x");
  write_text(dir / "nothing/readme.md", "x");
  EXPECT_EQ(detect_format(dir / "guns"), "guns");
  EXPECT_EQ(detect_format(dir / "yolo"), "yolo");
  EXPECT_EQ(detect_format(dir / "yolo_split"), "yolo");
  EXPECT_EQ(detect_format(dir / "voc"), "voc");
  EXPECT_EQ(detect_format(dir / "coco"), "coco");
  EXPECT_EQ(detect_format(dir / "coco_file.json"), "coco");
  EXPECT_EQ(detect_format(dir / "folder"), "imagefolder");
  EXPECT_EQ(detect_format(dir / "split_folder"), "imagefolder");
  EXPECT_THROW(detect_format(dir / "nothing"), InvalidArgument);
  EXPECT_EQ(read_dataset(dir / "guns", "auto").format, "guns");
}

// ---------------------------------------------------------------- guns

TEST(GunsFormat, ReadsBoxesInNaturalOrder) {
  TempDir dir;
  write_image(dir / "Images/10.jpeg", 40, 30);
  write_image(dir / "Images/2.jpeg", 40, 30);
  write_text(dir / "Labels/10.txt", "2\r\n1 2 30 20\r\n5 6 7 8\r\n\r\n");
  write_text(dir / "Labels/2.txt", "1\n76 45 146 87\n");
  auto ds = read_dataset(dir.path(), "guns");
  EXPECT_EQ(ds.task, Task::kDetection);
  EXPECT_EQ(ds.classes, std::vector<std::string>{"gun"});
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].file, "Images/2.jpeg");
  EXPECT_EQ(ds.samples[0].label_file, "Labels/2.txt");
  EXPECT_GT(ds.samples[0].bytes, 0);
  ASSERT_EQ(ds.samples[1].boxes.size(), 2u);
  const Box& b = ds.samples[1].boxes[0];
  EXPECT_EQ(b.x1, 1);
  EXPECT_EQ(b.y1, 2);
  EXPECT_EQ(b.x2, 30);
  EXPECT_EQ(b.y2, 20);
  EXPECT_EQ(b.class_id, 0);
  EXPECT_TRUE(ds.issues.empty()) << ds.issues[0].kind;
}

TEST(GunsFormat, CountMismatchKeepsBoxesPresent) {
  TempDir dir;
  write_text(dir / "Images/1.jpeg", "x");
  write_text(dir / "Labels/1.txt", "2\n1 2 3 4\n5 6 7 8\n9 10 11 12\n");
  auto ds = read_dataset(dir.path(), "guns");
  ASSERT_EQ(ds.samples.size(), 1u);
  EXPECT_EQ(ds.samples[0].boxes.size(), 3u);
  const Issue* i = find_issue(ds, "count_mismatch");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->file, "Labels/1.txt");
  EXPECT_EQ(i->line, 1);
}

TEST(GunsFormat, ParseErrorsAndNonFiniteNumbersAreReportedWithLines) {
  TempDir dir;
  write_text(dir / "Images/1.jpeg", "x");
  write_text(dir / "Labels/1.txt", "4\n1 2 3 4\n1 2 x 4\nnan 2 3 4\n1 2 inf 4\n");
  write_text(dir / "Images/2.jpeg", "x");
  write_text(dir / "Labels/2.txt", "two\n1 2 3 4\n");
  auto ds = read_dataset(dir.path(), "guns");
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].boxes.size(), 1u);
  EXPECT_EQ(ds.samples[1].boxes.size(), 1u);
  EXPECT_EQ(count_issues(ds, "parse_error"), 2u);
  EXPECT_EQ(count_issues(ds, "bad_number"), 2u);
  EXPECT_EQ(count_issues(ds, "count_mismatch"), 0u);
  const Issue* p = find_issue(ds, "parse_error");
  EXPECT_EQ(p->file, "Labels/1.txt");
  EXPECT_EQ(p->line, 3);
  EXPECT_EQ(find_issue(ds, "bad_number")->line, 4);
}

TEST(GunsFormat, NegativeSizeBoxesAreKept) {
  TempDir dir;
  write_text(dir / "Images/1.jpeg", "x");
  write_text(dir / "Labels/1.txt", "1\n50 50 10 -10\n");
  auto ds = read_dataset(dir.path(), "guns");
  ASSERT_EQ(ds.box_count(), 1u);
  EXPECT_LT(ds.samples[0].boxes[0].width(), 0);
  EXPECT_LT(ds.samples[0].boxes[0].height(), 0);
}

TEST(GunsFormat, MissingPairsAreSkippedAndReported) {
  TempDir dir;
  write_text(dir / "Images/1.jpeg", "x");
  write_text(dir / "Labels/1.txt", "0\n");
  write_text(dir / "Images/2.jpeg", "x");            // no label
  write_text(dir / "Labels/3.txt", "1\n1 1 2 2\n");  // no image
  write_text(dir / "Images/4.jpeg", "x");
  write_text(dir / "Labels/4.txt", "");  // zero-byte label: not a statement of "no guns"
  auto ds = read_dataset(dir.path(), "guns");
  ASSERT_EQ(ds.samples.size(), 1u);
  EXPECT_EQ(ds.samples[0].file, "Images/1.jpeg");
  EXPECT_TRUE(ds.samples[0].boxes.empty());
  ASSERT_NE(find_issue(ds, "missing_label"), nullptr);
  EXPECT_EQ(find_issue(ds, "missing_label")->file, "Images/2.jpeg");
  ASSERT_NE(find_issue(ds, "missing_image"), nullptr);
  EXPECT_EQ(find_issue(ds, "missing_image")->file, "Labels/3.txt");
  ASSERT_NE(find_issue(ds, "parse_error"), nullptr);
  EXPECT_EQ(find_issue(ds, "parse_error")->file, "Labels/4.txt");
}

TEST(GunsFormat, OddImagesAreKeptForValidation) {
  TempDir dir;
  write_text(dir / "Images/random.jpg", random_bytes(300));
  write_text(dir / "Images/empty.png", "");
  write_image(dir / "Images/tiny.JPG", 1, 1);
  write_image(dir / "Images/café_ñ.jpg", 20, 10);
  for (const char* stem : {"random", "empty", "tiny", "café_ñ"}) {
    write_text(dir / (std::string("Labels/") + stem + ".txt"), "1\n0 0 1 1\n");
  }
  auto ds = read_dataset(dir.path(), "guns", ReadOptions{{"pistol"}});
  EXPECT_EQ(ds.classes, std::vector<std::string>{"pistol"});
  ASSERT_EQ(ds.samples.size(), 4u);
  EXPECT_EQ(ds.box_count(), 4u);
  ASSERT_NE(find_sample(ds, "Images/café_ñ.jpg"), nullptr);
  EXPECT_EQ(find_sample(ds, "Images/café_ñ.jpg")->label_file, "Labels/café_ñ.txt");
  EXPECT_EQ(find_sample(ds, "Images/random.jpg")->bytes, 300);
  EXPECT_EQ(find_sample(ds, "Images/empty.png")->bytes, 0);
  EXPECT_NE(find_sample(ds, "Images/tiny.JPG"), nullptr);
}

// ---------------------------------------------------------------- voc

TEST(VocFormat, ReadsObjectsWithFlagsAndSortedClasses) {
  TempDir dir;
  write_image(dir / "JPEGImages/a.jpg", 100, 80);
  write_image(dir / "JPEGImages/b.jpg", 100, 80);
  write_text(dir / "Annotations/a.xml", voc_xml("a.jpg", voc_object("pistol", "1 2 50 60", 1, 0) +
                                                             voc_object("knife", "10 10 20 20", 0, 1)));
  write_text(dir / "Annotations/b.xml", voc_xml("b.jpg", voc_object("card", "5 5 9 9")));
  auto ds = read_dataset(dir.path(), "voc");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"card", "knife", "pistol"}));
  ASSERT_EQ(ds.samples.size(), 2u);
  const Sample& a = ds.samples[0];
  EXPECT_EQ(a.file, "JPEGImages/a.jpg");
  EXPECT_EQ(a.label_file, "Annotations/a.xml");
  EXPECT_EQ(a.width, 100);
  EXPECT_EQ(a.height, 80);
  ASSERT_EQ(a.boxes.size(), 2u);
  // 1-based VOC coordinates are kept as written.
  EXPECT_EQ(a.boxes[0].x1, 1);
  EXPECT_EQ(a.boxes[0].y1, 2);
  EXPECT_EQ(a.boxes[0].x2, 50);
  EXPECT_EQ(a.boxes[0].y2, 60);
  EXPECT_EQ(a.boxes[0].class_id, 2);
  EXPECT_TRUE(a.boxes[0].difficult);
  EXPECT_FALSE(a.boxes[0].truncated);
  EXPECT_TRUE(a.boxes[1].truncated);
  EXPECT_EQ(a.boxes[1].class_id, 1);
  EXPECT_TRUE(ds.issues.empty());
}

TEST(VocFormat, TruncatedAndEmptyXmlAreParseErrors) {
  TempDir dir;
  write_image(dir / "JPEGImages/a.jpg", 10, 10);
  write_image(dir / "JPEGImages/b.jpg", 10, 10);
  write_image(dir / "JPEGImages/c.jpg", 10, 10);
  std::string full = voc_xml("a.jpg", voc_object("knife", "1 1 5 5"));
  write_text(dir / "Annotations/a.xml", full.substr(0, full.size() / 2));
  write_text(dir / "Annotations/b.xml", voc_xml("b.jpg", voc_object("knife", "1 1 5 5")));
  write_text(dir / "Annotations/c.xml", "");
  auto ds = read_dataset(dir.path(), "voc");
  ASSERT_EQ(ds.samples.size(), 1u);
  EXPECT_EQ(ds.samples[0].file, "JPEGImages/b.jpg");
  EXPECT_EQ(count_issues(ds, "parse_error"), 2u);
  const Issue* i = find_issue(ds, "parse_error");
  EXPECT_EQ(i->file, "Annotations/a.xml");
  EXPECT_NE(i->message.find("byte"), std::string::npos) << i->message;
  // The images of the unusable XMLs are reported as unlabelled.
  EXPECT_EQ(count_issues(ds, "missing_label"), 2u);
}

TEST(VocFormat, BadNumbersNegativeSizesAndMissingImages) {
  TempDir dir;
  write_image(dir / "JPEGImages/a.jpg", 10, 10);
  write_text(dir / "Annotations/a.xml",
             voc_xml("a.jpg", voc_object("knife", "nan 1 5 5") + voc_object("knife", "9 9 2 2") +
                                  voc_object("knife", "1 one 5 5")));
  write_text(dir / "Annotations/gone.xml", voc_xml("gone.jpg", voc_object("knife", "1 1 5 5")));
  auto ds = read_dataset(dir.path(), "voc");
  ASSERT_EQ(ds.samples.size(), 1u);
  ASSERT_EQ(ds.samples[0].boxes.size(), 1u);
  EXPECT_LT(ds.samples[0].boxes[0].width(), 0);
  ASSERT_NE(find_issue(ds, "bad_number"), nullptr);
  EXPECT_EQ(find_issue(ds, "bad_number")->file, "Annotations/a.xml");
  EXPECT_EQ(find_issue(ds, "bad_number")->line, 1);
  EXPECT_EQ(count_issues(ds, "parse_error"), 1u);
  ASSERT_NE(find_issue(ds, "missing_image"), nullptr);
  EXPECT_EQ(find_issue(ds, "missing_image")->file, "Annotations/gone.xml");
}

TEST(VocFormat, ExplicitClassesReportUnknownNames) {
  TempDir dir;
  write_image(dir / "JPEGImages/a.jpg", 10, 10);
  std::string objects =
      "\n" + voc_object("pistol", "1 1 5 5") + "\n" + voc_object("bazooka", "1 1 5 5") + "\n";
  write_text(dir / "Annotations/a.xml", voc_xml("a.jpg", objects));
  ReadOptions opts{{"knife", "banknote", "card", "smartphone", "pistol", "purse"}};
  auto ds = read_dataset(dir.path(), "voc", opts);
  EXPECT_EQ(ds.classes, opts.classes);
  ASSERT_EQ(ds.box_count(), 1u);
  EXPECT_EQ(ds.samples[0].boxes[0].class_id, 4);
  const Issue* i = find_issue(ds, "unknown_class");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->line, 3);
  EXPECT_NE(i->message.find("bazooka"), std::string::npos);
}

TEST(VocFormat, ImagesBesideXmlUtf8AndOddImages) {
  TempDir dir;
  write_image(dir / "café_ñ.jpg", 12, 8);
  write_text(dir / "café_ñ.xml", voc_xml("café_ñ.jpg", voc_object("card", "1 1 5 5")));
  write_text(dir / "random.jpg", random_bytes(64));
  write_text(dir / "random.xml", voc_xml("random.jpg", voc_object("card", "1 1 5 5")));
  write_text(dir / "zero.jpg", "");
  write_text(dir / "zero.xml",
             "<annotation><object><name>card</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
             "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>");  // no <filename>
  write_image(dir / "one.png", 1, 1);
  write_text(dir / "one.xml", voc_xml("one.png", voc_object("card", "1 1 1 1"), 1, 1));
  write_image(dir / "unlabelled.jpg", 4, 4);
  auto ds = read_dataset(dir.path(), "voc");
  ASSERT_EQ(ds.samples.size(), 4u);
  ASSERT_NE(find_sample(ds, "café_ñ.jpg"), nullptr);
  EXPECT_EQ(find_sample(ds, "café_ñ.jpg")->label_file, "café_ñ.xml");
  ASSERT_NE(find_sample(ds, "zero.jpg"), nullptr);
  EXPECT_EQ(find_sample(ds, "zero.jpg")->width, 0);
  EXPECT_EQ(find_sample(ds, "random.jpg")->bytes, 64);
  EXPECT_EQ(ds.box_count(), 4u);
  ASSERT_EQ(ds.issues.size(), 1u) << ds.issues[0].kind << " " << ds.issues[0].message;
  EXPECT_EQ(ds.issues[0].kind, "missing_label");
  EXPECT_EQ(ds.issues[0].file, "unlabelled.jpg");
}

TEST(VocFormat, PetLayoutAnnotationsXmlsWithImagesFolderIsDetectedAndRead) {
  // The weapons seed's dataset keeps VOC XMLs as the Oxford-IIIT Pet dataset does: annotations/xmls/*.xml
  // beside annotations/trimaps/ and list files, images in images/. Without the xmls/ rule it reads as an
  // image folder with the classes "annotations" and "images".
  TempDir dir;
  const fs::path pet = dir / "pet";
  write_image(pet / "images/knife_1.jpg", 100, 80);
  write_image(pet / "images/pistol_2.jpg", 100, 80);
  write_image(pet / "images/unlabelled.jpg", 100, 80);
  write_text(pet / "annotations/xmls/knife_1.xml", voc_xml("knife_1.jpg", voc_object("knife", "1 2 30 40")));
  write_text(pet / "annotations/xmls/pistol_2.xml",
             voc_xml("pistol_2.jpg", voc_object("pistol", "5 5 50 60") + voc_object("knife", "60 10 90 30")));
  write_text(pet / "annotations/list.txt", "#Image CLASS-ID\nknife_1 1\npistol_2 2\n");
  write_image(pet / "annotations/trimaps/knife_1.png", 100, 80);
  EXPECT_EQ(detect_format(pet), "voc");
  auto ds = read_dataset(pet, "auto");
  EXPECT_EQ(ds.format, "voc");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"knife", "pistol"}));
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].file, "images/knife_1.jpg");
  EXPECT_EQ(ds.samples[0].label_file, "annotations/xmls/knife_1.xml");
  ASSERT_EQ(ds.samples[1].boxes.size(), 2u);
  EXPECT_EQ(ds.samples[1].boxes[0].class_id, 1);
  EXPECT_EQ(ds.samples[1].boxes[0].x2, 50);
  // Only the image no XML names is reported; the trimaps are not images of the dataset.
  ASSERT_EQ(ds.issues.size(), 1u) << ds.issues[0].kind << " " << ds.issues[0].file;
  EXPECT_EQ(ds.issues[0].kind, "missing_label");
  EXPECT_EQ(ds.issues[0].file, "images/unlabelled.jpg");

  // The classic spelling with images/ instead of JPEGImages/ reads the same way.
  const fs::path voc = dir / "voc";
  write_image(voc / "images/a.jpg", 100, 80);
  write_text(voc / "Annotations/a.xml", voc_xml("a.jpg", voc_object("knife", "1 2 30 40")));
  auto classic = read_dataset(voc, "auto");
  EXPECT_EQ(classic.format, "voc");
  ASSERT_EQ(classic.samples.size(), 1u);
  EXPECT_EQ(classic.samples[0].file, "images/a.jpg");
  EXPECT_EQ(classic.samples[0].label_file, "Annotations/a.xml");
  EXPECT_TRUE(classic.issues.empty());
}

// ---------------------------------------------------------------- yolo

TEST(YoloFormat, ConvertsNormalisedBoxesWithNamesFromDataYamlList) {
  TempDir dir;
  write_image(dir / "images/a.jpg", 200, 100);
  write_text(dir / "labels/a.txt", "1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.2 0.2\n");
  write_text(dir / "data.yaml", "path: .\ntrain: images\nval: images\nnames: [knife, pistol]\n");
  auto ds = read_dataset(dir.path(), "yolo");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"knife", "pistol"}));
  ASSERT_EQ(ds.samples.size(), 1u);
  const Sample& s = ds.samples[0];
  EXPECT_EQ(s.file, "images/a.jpg");
  EXPECT_EQ(s.label_file, "labels/a.txt");
  EXPECT_EQ(s.width, 200);
  EXPECT_EQ(s.height, 100);
  ASSERT_EQ(s.boxes.size(), 2u);
  EXPECT_NEAR(s.boxes[0].x1, 80, 1e-4);
  EXPECT_NEAR(s.boxes[0].y1, 30, 1e-4);
  EXPECT_NEAR(s.boxes[0].x2, 120, 1e-4);
  EXPECT_NEAR(s.boxes[0].y2, 70, 1e-4);
  EXPECT_EQ(s.boxes[0].class_id, 1);
  EXPECT_NEAR(s.boxes[1].x1, 0, 1e-4);
  EXPECT_TRUE(ds.issues.empty());
}

TEST(YoloFormat, ClassNamesFromYamlMapClassesTxtOrFallback) {
  TempDir dir;
  write_image(dir / "images/a.jpg", 10, 10);
  write_text(dir / "labels/a.txt", "2 0.5 0.5 0.1 0.1\n");
  write_text(dir / "data.yaml", "names:\n  0: knife\n  1: 'Non Accident'\n  2: pistol\n");
  EXPECT_EQ(read_dataset(dir.path(), "yolo").classes,
            (std::vector<std::string>{"knife", "Non Accident", "pistol"}));
  fs::remove(dir / "data.yaml");
  write_text(dir / "classes.txt", "a\nb\nc\n\n");
  EXPECT_EQ(read_dataset(dir.path(), "yolo").classes, (std::vector<std::string>{"a", "b", "c"}));
  fs::remove(dir / "classes.txt");
  write_text(dir / "labels/classes.txt", "x\ny\nz\n");
  EXPECT_EQ(read_dataset(dir.path(), "yolo").classes, (std::vector<std::string>{"x", "y", "z"}));
  fs::remove(dir / "labels/classes.txt");
  auto ds = read_dataset(dir.path(), "yolo");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_NE(find_issue(ds, "no_class_names"), nullptr);
  EXPECT_EQ(find_issue(ds, "no_class_names")->severity, Severity::kInfo);
  EXPECT_EQ(ds.box_count(), 1u);
  EXPECT_EQ(read_dataset(dir.path(), "yolo", ReadOptions{{"p", "q", "r"}}).classes,
            (std::vector<std::string>{"p", "q", "r"}));
}

TEST(YoloFormat, UltralyticsSplitLayout) {
  TempDir dir;
  write_image(dir / "images/train/a.jpg", 10, 10);
  write_image(dir / "images/val/b.png", 10, 10);
  write_image(dir / "images/test/c.jpg", 10, 10);
  write_text(dir / "labels/train/a.txt", "0 0.5 0.5 0.5 0.5\n");
  write_text(dir / "labels/val/b.txt", "");  // explicitly empty: a background image
  write_text(dir / "labels/test/c.txt", "0 0.5 0.5 0.5 0.5\n");
  write_text(dir / "data.yaml", "names: {0: thing}\n");
  auto ds = read_dataset(dir.path(), "auto");
  EXPECT_EQ(ds.format, "yolo");
  ASSERT_EQ(ds.samples.size(), 3u);
  EXPECT_EQ(find_sample(ds, "images/train/a.jpg")->split, "train");
  EXPECT_EQ(find_sample(ds, "images/val/b.png")->split, "val");
  EXPECT_TRUE(find_sample(ds, "images/val/b.png")->boxes.empty());
  EXPECT_EQ(find_sample(ds, "images/test/c.jpg")->label_file, "labels/test/c.txt");
  EXPECT_TRUE(ds.issues.empty());
}

TEST(YoloFormat, RoboflowSplitLayoutAndDuplicateStems) {
  TempDir dir;
  write_image(dir / "train/images/a.jpg", 10, 10);
  write_image(dir / "train/images/a.png", 10, 10);  // same label file as a.jpg
  write_text(dir / "train/labels/a.txt", "0 0.5 0.5 0.5 0.5\n");
  write_image(dir / "valid/images/b.jpg", 10, 10);
  write_text(dir / "valid/labels/b.txt", "");
  write_text(dir / "data.yaml", "names: [thing]\n");
  EXPECT_EQ(detect_format(dir.path()), "yolo");
  auto ds = read_dataset(dir.path(), "yolo");
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].file, "train/images/a.jpg");
  EXPECT_EQ(ds.samples[0].split, "train");
  EXPECT_EQ(ds.samples[0].label_file, "train/labels/a.txt");
  EXPECT_EQ(ds.samples[1].split, "val");
  ASSERT_EQ(count_issues(ds, "duplicate_image"), 1u);
  EXPECT_EQ(find_issue(ds, "duplicate_image")->file, "train/images/a.png");
}

TEST(YoloFormat, MalformedLinesUnknownClassesAndOutOfRangeValues) {
  TempDir dir;
  write_image(dir / "images/a.jpg", 100, 100);
  write_text(dir / "labels/a.txt",
             "0 0.5 0.5 0.2 0.2\n"
             "5 0.5 0.5 0.2 0.2\n"
             "0 nan 0.5 0.2 0.2\n"
             "0 0.5 0.5\n"
             "x 0.5 0.5 0.2 0.2\n"
             "0 1.5 -0.5 -0.2 0.2\n"
             "-1 0.5 0.5 0.2 0.2\n");
  write_text(dir / "classes.txt", "a\nb\n");
  auto ds = read_dataset(dir.path(), "yolo");
  ASSERT_EQ(ds.samples.size(), 1u);
  ASSERT_EQ(ds.samples[0].boxes.size(), 2u);
  const Box& out = ds.samples[0].boxes[1];
  EXPECT_NEAR(out.x1, 160, 1e-3);  // outside the image and inverted: kept for validation
  EXPECT_LT(out.width(), 0);
  EXPECT_EQ(count_issues(ds, "unknown_class"), 2u);
  EXPECT_EQ(find_issue(ds, "unknown_class")->line, 2);
  EXPECT_EQ(find_issue(ds, "unknown_class")->file, "labels/a.txt");
  EXPECT_EQ(count_issues(ds, "bad_number"), 1u);
  EXPECT_EQ(find_issue(ds, "bad_number")->line, 3);
  EXPECT_EQ(count_issues(ds, "parse_error"), 2u);
}

TEST(YoloFormat, PolygonLinesAreReadAsTheirBoundingBoxLineByLineAndCounted) {
  TempDir dir;
  write_image(dir / "images/a.jpg", 200, 100);
  // A Roboflow file mixing a box and a polygon; then two lines that are neither (6 fields; 8 fields = an odd
  // number of coordinates).
  write_text(dir / "labels/a.txt",
             "0 0.5 0.5 0.2 0.4\n"
             "1 0.1 0.2 0.3 0.2 0.25 0.6 0.05 0.4\n"
             "1 0.1 0.1 0.2 0.2 0.3\n"
             "1 0.1 0.1 0.2 0.2 0.3 0.3 0.4\n");
  write_text(dir / "data.yaml", "names: [person, weapon]\n");
  auto ds = read_dataset(dir.path(), "yolo");
  ASSERT_EQ(ds.samples.size(), 1u);
  const auto& boxes = ds.samples[0].boxes;
  ASSERT_EQ(boxes.size(), 2u);
  // The box line stays a box (Ultralytics would read it as a 2-point polygon once any line is one).
  EXPECT_NEAR(boxes[0].x1, 80, 1e-4);
  EXPECT_NEAR(boxes[0].y2, 70, 1e-4);
  // The polygon's extent: x 0.05..0.3 of 200 px, y 0.2..0.6 of 100 px.
  EXPECT_EQ(boxes[1].class_id, 1);
  EXPECT_NEAR(boxes[1].x1, 10, 1e-4);
  EXPECT_NEAR(boxes[1].y1, 20, 1e-4);
  EXPECT_NEAR(boxes[1].x2, 60, 1e-4);
  EXPECT_NEAR(boxes[1].y2, 60, 1e-4);
  ASSERT_EQ(count_issues(ds, "polygon_label"), 1u);
  const Issue* poly = find_issue(ds, "polygon_label");
  EXPECT_EQ(poly->severity, Severity::kInfo);
  EXPECT_EQ(poly->file, "labels/a.txt");
  EXPECT_EQ(poly->line, 2);
  EXPECT_NE(poly->message.find("4 points"), std::string::npos) << poly->message;
  ASSERT_EQ(count_issues(ds, "parse_error"), 2u);
  EXPECT_EQ(find_issue(ds, "parse_error")->line, 3);
  // Validation counts them by kind, as it does every reader issue.
  const auto report = validate(ds, ValidateOptions{});
  EXPECT_EQ(report.counts.at("polygon_label").at("info"), 1u);
  EXPECT_EQ(report.boxes, 2u);
}

TEST(YoloFormat, EmptyLabelFilesAreNegativesAndAnNcMismatchIsAWarning) {
  TempDir dir;
  write_image(dir / "train/images/a.jpg", 40, 40);
  write_image(dir / "train/images/empty.jpg", 40, 40);
  write_image(dir / "valid/images/blank_lines.jpg", 40, 40);
  write_text(dir / "train/labels/a.txt", "1 0.5 0.5 0.5 0.5");  // no final newline, as Roboflow writes
  write_text(dir / "train/labels/empty.txt", "");
  write_text(dir / "valid/labels/blank_lines.txt", "\n  \r\n");
  write_text(dir / "data.yaml",
             "train: ../train/images\nval: ../valid/images\nnc: 3\nnames: ['person', 'weapon']\n");
  auto ds = read_dataset(dir.path(), "auto");
  EXPECT_EQ(ds.format, "yolo");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"person", "weapon"}));
  ASSERT_EQ(ds.samples.size(), 3u);
  EXPECT_EQ(find_sample(ds, "train/images/a.jpg")->boxes.size(), 1u);
  for (const char* f : {"train/images/empty.jpg", "valid/images/blank_lines.jpg"}) {
    const Sample* s = find_sample(ds, f);
    ASSERT_NE(s, nullptr) << f;
    EXPECT_TRUE(s->boxes.empty()) << f;
    EXPECT_EQ(s->width, 40) << f;
  }
  EXPECT_EQ(find_sample(ds, "valid/images/blank_lines.jpg")->split, "val");
  ASSERT_EQ(ds.issues.size(), 1u) << ds.issues[0].kind << " " << ds.issues[0].message;
  EXPECT_EQ(ds.issues[0].kind, "parse_error");
  EXPECT_EQ(ds.issues[0].severity, Severity::kWarning);
  EXPECT_EQ(ds.issues[0].file, "data.yaml");
  EXPECT_EQ(ds.issues[0].line, 3);
  const auto report = validate(ds, ValidateOptions{});
  EXPECT_EQ(report.empty_images, 2u);
}

TEST(YoloFormat, UnreadableImagesAreKeptWithoutBoxes) {
  TempDir dir;
  write_text(dir / "images/random.jpg", random_bytes(500));
  write_text(dir / "images/zero.jpg", "");
  write_image(dir / "images/one.png", 1, 1);
  write_image(dir / "images/café_ñ.jpg", 20, 10);
  for (const char* stem : {"random", "zero", "one", "café_ñ"}) {
    write_text(dir / (std::string("labels/") + stem + ".txt"), "0 0.5 0.5 1 1\n");
  }
  auto ds = read_dataset(dir.path(), "yolo", ReadOptions{{"thing"}});
  ASSERT_EQ(ds.samples.size(), 4u);
  for (const char* f : {"images/random.jpg", "images/zero.jpg"}) {
    const Sample* s = find_sample(ds, f);
    ASSERT_NE(s, nullptr) << f;
    EXPECT_EQ(s->width, 0);
    EXPECT_TRUE(s->boxes.empty());
  }
  EXPECT_EQ(count_issues(ds, "unreadable"), 2u);
  const Sample* one = find_sample(ds, "images/one.png");
  EXPECT_EQ(one->width, 1);
  ASSERT_EQ(one->boxes.size(), 1u);
  EXPECT_NEAR(one->boxes[0].x2, 1, 1e-6);
  const Sample* utf = find_sample(ds, "images/café_ñ.jpg");
  ASSERT_NE(utf, nullptr);
  EXPECT_NEAR(utf->boxes[0].x2, 20, 1e-4);
  EXPECT_EQ(utf->label_file, "labels/café_ñ.txt");
}

TEST(YoloFormat, MissingLabelsAndImages) {
  TempDir dir;
  write_image(dir / "images/a.jpg", 10, 10);
  write_image(dir / "images/b.jpg", 10, 10);
  write_text(dir / "labels/a.txt", "0 0.5 0.5 0.5 0.5\n");
  write_text(dir / "labels/c.txt", "0 0.5 0.5 0.5 0.5\n");
  write_text(dir / "images/.DS_Store", "junk");
  auto ds = read_dataset(dir.path(), "yolo", ReadOptions{{"thing"}});
  ASSERT_EQ(ds.samples.size(), 1u);
  EXPECT_EQ(find_issue(ds, "missing_label")->file, "images/b.jpg");
  EXPECT_EQ(find_issue(ds, "missing_image")->file, "labels/c.txt");
}

// ---------------------------------------------------------------- coco

const char* kCocoJson = R"({
  "images": [{"id": 7, "file_name": "b.jpg", "width": 50, "height": 40},
             {"id": 3, "file_name": "a.jpg", "width": 60, "height": 30},
             {"id": 9, "file_name": "gone.jpg", "width": 10, "height": 10}],
  "categories": [{"id": 90, "name": "zebra"}, {"id": 2, "name": "cat"}, {"id": 17, "name": "dog"}],
  "annotations": [
    {"id": 1, "image_id": 3, "category_id": 90, "bbox": [1, 2, 10, 20], "iscrowd": 0},
    {"id": 2, "image_id": 3, "category_id": 17, "bbox": [5, 5, 4, 4], "iscrowd": 1},
    {"id": 3, "image_id": 7, "category_id": 2, "bbox": [0, 0, -5, 3]},
    {"id": 4, "image_id": 42, "category_id": 2, "bbox": [0, 0, 1, 1]},
    {"id": 5, "image_id": 7, "category_id": 55, "bbox": [0, 0, 1, 1]},
    {"id": 6, "image_id": 7, "category_id": 2, "bbox": [null, 0, 1, 1]},
    {"id": 7, "image_id": 7, "category_id": 2, "bbox": [0, 0, 1]},
    {"id": 8, "image_id": 9, "category_id": 2, "bbox": [0, 0, 1, 1]}
  ]})";

TEST(CocoFormat, NonContiguousCategoriesAndBadAnnotations) {
  TempDir dir;
  write_image(dir / "a.jpg", 60, 30);
  write_image(dir / "b.jpg", 50, 40);
  write_text(dir / "annotations.json", kCocoJson);
  auto ds = read_dataset(dir.path(), "coco");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"cat", "dog", "zebra"}));  // sorted by id 2, 17, 90
  ASSERT_EQ(ds.samples.size(), 2u);
  const Sample& a = ds.samples[0];
  EXPECT_EQ(a.file, "a.jpg");
  EXPECT_EQ(a.width, 60);
  EXPECT_EQ(a.height, 30);
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_EQ(a.boxes[0].class_id, 2);
  EXPECT_EQ(a.boxes[0].x1, 1);
  EXPECT_EQ(a.boxes[0].y2, 22);
  EXPECT_FALSE(a.boxes[0].crowd);
  EXPECT_TRUE(a.boxes[1].crowd);
  EXPECT_EQ(a.boxes[1].class_id, 1);
  ASSERT_EQ(ds.samples[1].boxes.size(), 1u);
  EXPECT_LT(ds.samples[1].boxes[0].width(), 0);  // negative size kept for validation
  EXPECT_EQ(count_issues(ds, "unknown_image"), 1u);
  EXPECT_EQ(count_issues(ds, "unknown_class"), 1u);
  EXPECT_EQ(count_issues(ds, "bad_number"), 1u);
  EXPECT_EQ(count_issues(ds, "parse_error"), 1u);
  EXPECT_EQ(count_issues(ds, "missing_image"), 1u);  // gone.jpg; its annotation is not reported again
  EXPECT_EQ(find_issue(ds, "unknown_image")->file, "annotations.json");
}

TEST(CocoFormat, BadJsonThrowsDataErrorWithPosition) {
  TempDir dir;
  write_text(dir / "annotations.json", R"({"images": [{"id": 1,,}]})");
  try {
    read_dataset(dir.path(), "coco");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("parse_error"), std::string::npos) << e.what();
  }
  write_text(dir / "annotations.json", "");
  EXPECT_THROW(read_dataset(dir.path(), "coco"), DataError);
  write_text(dir / "annotations.json", "[1, 2]");  // valid JSON, not COCO: issues, no throw
  auto ds = read_dataset(dir.path(), "coco");
  EXPECT_TRUE(ds.samples.empty());
  EXPECT_GE(count_issues(ds, "parse_error"), 1u);
}

TEST(CocoFormat, ImagesSubfolderJsonPathAndOddImages) {
  TempDir dir;
  write_text(dir / "images/random.jpg", random_bytes(100));
  write_text(dir / "images/zero.jpg", "");
  write_image(dir / "images/one.png", 1, 1);
  write_image(dir / "images/sub/café_ñ.jpg", 8, 8);
  write_text(dir / "instances_train.json", R"({"images": [
      {"id": 1, "file_name": "random.jpg", "width": 5, "height": 5},
      {"id": 2, "file_name": "zero.jpg", "width": 5, "height": 5},
      {"id": 3, "file_name": "one.png", "width": 1, "height": 1},
      {"id": 4, "file_name": "sub/café_ñ.jpg", "width": 8, "height": 8}],
    "categories": [{"id": 1, "name": "x"}],
    "annotations": [{"image_id": 4, "category_id": 1, "bbox": [0.5, 0.5, 2.25, 3]}]})");
  for (const fs::path& root : {dir.path(), dir / "instances_train.json"}) {
    auto ds = read_dataset(root, "auto");
    EXPECT_EQ(ds.format, "coco");
    EXPECT_EQ(ds.root, dir / "images");
    ASSERT_EQ(ds.samples.size(), 4u);
    ASSERT_NE(find_sample(ds, "sub/café_ñ.jpg"), nullptr);
    EXPECT_FLOAT_EQ(find_sample(ds, "sub/café_ñ.jpg")->boxes.at(0).x2, 2.75f);
    EXPECT_EQ(find_sample(ds, "random.jpg")->bytes, 100);
    EXPECT_TRUE(ds.issues.empty());
  }
  write_text(dir / "instances_val.json", "{}");
  EXPECT_THROW(read_dataset(dir.path(), "coco"), InvalidArgument);
}

TEST(CocoFormat, ExplicitClassesMapByName) {
  TempDir dir;
  write_image(dir / "a.jpg", 60, 30);
  write_image(dir / "b.jpg", 50, 40);
  write_text(dir / "annotations.json", kCocoJson);
  auto ds = read_dataset(dir.path(), "coco", ReadOptions{{"zebra", "cat"}});
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"zebra", "cat"}));
  EXPECT_EQ(ds.samples[0].boxes.size(), 1u);
  EXPECT_EQ(ds.samples[0].boxes[0].class_id, 0);
  EXPECT_EQ(count_issues(ds, "unknown_class"), 2u);  // dog, and the undeclared 55
}

// ---------------------------------------------------------------- imagefolder

TEST(ImageFolderFormat, ClassesFromFoldersWithOddFiles) {
  TempDir dir;
  write_image(dir / "with_mask/1.jpg", 10, 10);
  write_image(dir / "with_mask/10.jpg", 10, 10);
  write_image(dir / "with_mask/2.jpg", 10, 10);
  write_text(dir / "without_mask/notes.txt", "not an image");
  write_text(dir / "without_mask/random.jpg", random_bytes(50));
  write_text(dir / "without_mask/zero.jpg", "");
  write_image(dir / "without_mask/one.png", 1, 1);
  write_image(dir / "Non Accident/café_ñ.jpg", 10, 10);
  write_text(dir / "with_mask/.DS_Store", "junk");
  write_text(dir / ".hidden/x.jpg", "junk");
  write_text(dir / "SOURCE.md", "docs");
  auto ds = read_dataset(dir.path(), "imagefolder");
  EXPECT_EQ(ds.task, Task::kClassification);
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"Non Accident", "with_mask", "without_mask"}));
  ASSERT_EQ(ds.samples.size(), 8u);
  EXPECT_EQ(ds.samples[0].file, "Non Accident/café_ñ.jpg");
  EXPECT_EQ(ds.samples[0].label, 0);
  EXPECT_EQ(ds.samples[1].file, "with_mask/1.jpg");
  EXPECT_EQ(ds.samples[2].file, "with_mask/2.jpg");
  EXPECT_EQ(ds.samples[3].file, "with_mask/10.jpg");
  EXPECT_EQ(find_sample(ds, "without_mask/notes.txt")->label, 2);
  EXPECT_EQ(find_sample(ds, "without_mask/zero.jpg")->bytes, 0);
  EXPECT_EQ(count_issues(ds, "hidden_file"), 2u);
  EXPECT_EQ(find_issue(ds, "stray_file")->file, "SOURCE.md");
  EXPECT_EQ(find_issue(ds, "stray_file")->severity, Severity::kInfo);
}

TEST(ImageFolderFormat, SplitFoldersUniteClasses) {
  TempDir dir;
  write_image(dir / "train/Accident/a.jpg", 10, 10);
  write_image(dir / "train/Non Accident/b.jpg", 10, 10);
  write_image(dir / "val/Non Accident/c.jpg", 10, 10);
  write_image(dir / "test/Other/d.jpg", 10, 10);
  fs::create_directories(dir / "val/Empty");
  auto ds = read_dataset(dir.path(), "auto");
  EXPECT_EQ(ds.format, "imagefolder");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"Accident", "Empty", "Non Accident", "Other"}));
  ASSERT_EQ(ds.samples.size(), 4u);
  EXPECT_EQ(find_sample(ds, "train/Accident/a.jpg")->split, "train");
  EXPECT_EQ(find_sample(ds, "val/Non Accident/c.jpg")->label, 2);
  EXPECT_EQ(find_sample(ds, "test/Other/d.jpg")->split, "test");
  EXPECT_EQ(count_issues(ds, "empty_class"), 1u);
}

TEST(ImageFolderFormat, TestFolderBesideClassesIsAClass) {
  TempDir dir;
  write_image(dir / "cat/a.jpg", 10, 10);
  write_image(dir / "test/b.jpg", 10, 10);
  auto ds = read_dataset(dir.path(), "imagefolder");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"cat", "test"}));
  EXPECT_EQ(find_sample(ds, "test/b.jpg")->split, "");
}

// ---------------------------------------------------------------- writers and round trips

Dataset small_guns(const TempDir& dir) {
  write_image(dir / "guns/Images/1.jpeg", 64, 48, 1);
  write_image(dir / "guns/Images/2.jpeg", 33, 17, 2);
  write_image(dir / "guns/Images/café_ñ.jpeg", 20, 20, 3);
  write_text(dir / "guns/Labels/1.txt", "2\n1 2 30 40\n10.5 3 63 47\n");
  write_text(dir / "guns/Labels/2.txt", "1\n0 0 33 17\n");
  write_text(dir / "guns/Labels/café_ñ.txt", "0\n");
  return read_dataset(dir / "guns", "guns");
}

void expect_same_boxes(const Dataset& a, const Dataset& b, double tol) {
  ASSERT_EQ(a.samples.size(), b.samples.size());
  EXPECT_EQ(a.classes, b.classes);
  for (size_t i = 0; i < a.samples.size(); ++i) {
    const auto& x = a.samples[i].boxes;
    const auto& y = b.samples[i].boxes;
    ASSERT_EQ(x.size(), y.size()) << a.samples[i].file;
    for (size_t k = 0; k < x.size(); ++k) {
      EXPECT_NEAR(x[k].x1, y[k].x1, tol);
      EXPECT_NEAR(x[k].y1, y[k].y1, tol);
      EXPECT_NEAR(x[k].x2, y[k].x2, tol);
      EXPECT_NEAR(x[k].y2, y[k].y2, tol);
      EXPECT_EQ(x[k].class_id, y[k].class_id);
    }
  }
}

TEST(FormatWriters, GunsToCocoRoundTripIsExact) {
  TempDir dir;
  auto guns = small_guns(dir);
  ASSERT_EQ(guns.box_count(), 3u);
  write_dataset(guns, from_root(guns), dir / "coco", "coco");
  EXPECT_TRUE(fs::is_regular_file(dir / "coco/images/Images/café_ñ.jpeg"));
  auto coco = read_dataset(dir / "coco", "auto");
  EXPECT_EQ(coco.format, "coco");
  EXPECT_TRUE(coco.issues.empty());
  expect_same_boxes(guns, coco, 0.0);
  for (size_t i = 0; i < guns.samples.size(); ++i) EXPECT_EQ(guns.samples[i].file, coco.samples[i].file);
  EXPECT_EQ(find_sample(coco, "Images/2.jpeg")->width, 33);  // width read from the header when unknown
  EXPECT_EQ(find_sample(coco, "Images/2.jpeg")->height, 17);
}

TEST(FormatWriters, GunsToYoloRoundTripWithinTolerance) {
  TempDir dir;
  auto guns = small_guns(dir);
  guns.samples[0].split = "train";
  guns.samples[1].split = "val";
  write_dataset(guns, from_root(guns), dir / "yolo", "yolo");
  EXPECT_TRUE(fs::is_regular_file(dir / "yolo/classes.txt"));
  const std::string yaml = read_file(dir / "yolo/data.yaml");
  for (const char* key : {"path:", "train: images/train", "val: images/val", "names:", "gun"}) {
    EXPECT_NE(yaml.find(key), std::string::npos) << key << " in\n" << yaml;
  }
  auto yolo = read_dataset(dir / "yolo", "auto");
  EXPECT_EQ(yolo.format, "yolo");
  EXPECT_TRUE(yolo.issues.empty()) << yolo.issues[0].kind;
  ASSERT_EQ(yolo.samples.size(), 3u);
  // Order: flat file first, then train, then val.
  EXPECT_EQ(yolo.samples[0].file, "images/café_ñ.jpeg");
  EXPECT_EQ(yolo.samples[1].split, "train");
  EXPECT_EQ(yolo.samples[2].split, "val");
  Dataset reordered = guns;
  std::swap(reordered.samples[0], reordered.samples[2]);
  std::swap(reordered.samples[1], reordered.samples[2]);
  expect_same_boxes(reordered, yolo, 1e-3);
}

TEST(FormatWriters, YoloWriterFlattensCollidingNamesAndRefusesUnknownSizes) {
  TempDir dir;
  write_image(dir / "src/a/x.jpg", 10, 10);
  write_image(dir / "src/b/x.jpg", 20, 20);
  Dataset ds;
  ds.root = dir / "src";
  ds.classes = {"thing"};
  ds.samples = {make_sample("a/x.jpg", {Box{1, 1, 5, 5}}), make_sample("b/x.jpg")};
  write_dataset(ds, from_root(ds), dir / "out", "yolo");
  EXPECT_TRUE(fs::is_regular_file(dir / "out/images/a_x.jpg"));
  EXPECT_TRUE(fs::is_regular_file(dir / "out/labels/b_x.txt"));
  EXPECT_EQ(read_file(dir / "out/labels/b_x.txt"), "");
  auto back = read_dataset(dir / "out", "yolo");
  ASSERT_EQ(back.samples.size(), 2u);
  EXPECT_NEAR(back.samples[0].boxes.at(0).x2, 5, 1e-3);

  write_text(dir / "src/bad.jpg", random_bytes(40));
  ds.samples.push_back(make_sample("bad.jpg"));
  EXPECT_THROW(write_dataset(ds, from_root(ds), dir / "out2", "yolo"), DataError);
  EXPECT_THROW(write_dataset(ds, from_root(ds), dir / "out3", "coco"), DataError);
  ds.task = Task::kClassification;
  EXPECT_THROW(write_dataset(ds, from_root(ds), dir / "out4", "coco"), InvalidArgument);
}

TEST(FormatWriters, CocoWithoutImageCopiesUsesKnownSizes) {
  TempDir dir;
  Dataset ds;
  ds.classes = {"a", "b"};
  ds.samples = {make_sample("x.jpg", {Box{1, 2, 3, 4, 1, false, false, true}}, 10, 20)};
  write_dataset(ds, nullptr, dir / "out", "coco", WriteOptions{false});
  const std::string json = read_file(dir / "out/annotations.json");
  for (const char* key : {"\"iscrowd\": 1", "\"category_id\": 2", "\"area\": 4.0", "\"width\": 10"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in\n" << json;
  }
  EXPECT_FALSE(fs::exists(dir / "out/images"));
}

// ---------------------------------------------------------------- real shared data

TEST(SharedData, Guns) {
  VIGIL_REQUIRE_SHARED(root, "guns");
  EXPECT_EQ(detect_format(root), "guns");
  auto ds = read_dataset(root, "auto");
  EXPECT_EQ(ds.samples.size(), 266u);
  EXPECT_EQ(ds.box_count(), 342u);
  std::map<size_t, int> per_image;
  for (const auto& s : ds.samples) ++per_image[s.boxes.size()];
  EXPECT_EQ(per_image, (std::map<size_t, int>{{1, 208}, {2, 49}, {3, 7}, {4, 1}, {11, 1}}));
  for (const auto& i : ds.issues) EXPECT_NE(i.severity, Severity::kError) << i.kind << " " << i.file;
}

TEST(SharedData, GunsRoundTripsThroughCocoAndYolo) {
  VIGIL_REQUIRE_SHARED(root, "guns");
  auto guns = read_dataset(root, "guns");
  TempDir dir;
  write_dataset(guns, from_root(guns), dir / "coco", "coco");
  expect_same_boxes(guns, read_dataset(dir / "coco", "coco"), 0.0);
  write_dataset(guns, from_root(guns), dir / "yolo", "yolo");
  auto yolo = read_dataset(dir / "yolo", "yolo");
  // yolo flattens Images/N.jpeg to images/N.jpeg, so the natural order is the same.
  expect_same_boxes(guns, yolo, 1e-3);
}

TEST(SharedData, Masks) {
  VIGIL_REQUIRE_SHARED(root, "masks");
  EXPECT_EQ(detect_format(root), "imagefolder");
  auto ds = read_dataset(root, "imagefolder");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"with_mask", "without_mask"}));
  EXPECT_EQ(ds.samples.size(), 1101u);
  EXPECT_EQ(std::count_if(ds.samples.begin(), ds.samples.end(), [](const Sample& s) { return s.label == 0; }),
            552);
}

TEST(SharedData, Accidents) {
  VIGIL_REQUIRE_SHARED(root, "accidents");
  auto ds = read_dataset(root, "auto");
  EXPECT_EQ(ds.format, "imagefolder");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"Accident", "Non Accident"}));
  std::map<std::pair<std::string, int>, int> counts;
  for (const auto& s : ds.samples) ++counts[{s.split, s.label}];
  EXPECT_EQ(counts, (std::map<std::pair<std::string, int>, int>{
                        {{"train", 0}, 369}, {{"train", 1}, 422}, {{"val", 0}, 46}, {{"val", 1}, 52}}));
}

TEST(SharedData, WeaponsCctv) {
  VIGIL_REQUIRE_SHARED(root, "weapons_cctv");
  EXPECT_EQ(detect_format(root), "yolo");
  auto ds = read_dataset(root, "auto");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"person", "weapon"}));
  std::map<std::string, int> images, empty;
  for (const auto& s : ds.samples) {
    ++images[s.split];
    if (s.boxes.empty()) ++empty[s.split];
  }
  EXPECT_EQ(images, (std::map<std::string, int>{{"train", 700}, {"val", 200}}));
  // Empty label files are negatives, kept; the one polygon line (71 fields) is a box, not a dropped line.
  EXPECT_EQ(empty, (std::map<std::string, int>{{"train", 5}, {"val", 34}}));
  EXPECT_EQ(ds.box_count(), 2198u);
  EXPECT_EQ(count_issues(ds, "polygon_label"), 1u);
  for (const auto& i : ds.issues) EXPECT_NE(i.severity, Severity::kError) << i.kind << " " << i.file;
}

}  // namespace
}  // namespace vigil::data
