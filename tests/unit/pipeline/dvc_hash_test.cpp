// DVC compatibility vectors: file and directory hashes, the `.dir` object, dvc.lock text, YAML typing and the
// ruamel-compatible emitter. The expected values come from gen_dvc_vectors.py in this folder, which
// recomputes them the way dvc-data / dvc do (see its docstring); the inputs below are duplicated there.

#include <gtest/gtest.h>

#include <cmath>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/pipeline/dvc_hash.h"
#include "vigil/pipeline/lockfile.h"
#include "vigil/pipeline/repro.h"
#include "vigil/pipeline/yaml_io.h"

namespace {

using namespace vigil::pipeline;
using vigil::testing::TempDir;
using vigil::testing::write_text;
namespace fs = std::filesystem;

// ---- vectors printed by gen_dvc_vectors.py ----
const char* kKnownFileMd5 = "29013f7d5a242f1ca5a23fa2c34caed6";
const char* kCrlfMd5 = "a775daabdb44c57a65eaadeef4edfe51";
const char* kCrlfDos2UnixMd5 = "987929d61c9b69f0c6406b840aa77fd8";
const char* kDirMd5 = "88daa676553f5616e15da43aa4b6585a.dir";
const int64_t kDirSize = 73;
const int64_t kDirNfiles = 7;
const char* kDirObject =
    "[{\"md5\": \"e06ec9fa81fe415bee8803e629225871\", \"relpath\": \"a.b/z\"}, {\"md5\": "
    "\"9f9f90dbe3e5ee1218c86b8839db1995\", \"relpath\": \"a.txt\"}, {\"md5\": "
    "\"591074c5b5863df9ad836a7aeeb2a3c0\", "
    "\"relpath\": \"emoji \\ud83d\\ude00.txt\"}, {\"md5\": \"d41d8cd98f00b204e9800998ecf8427e\", "
    "\"relpath\": "
    "\"empty.bin\"}, {\"md5\": \"344fd2323dd33d5c058b7cf27de029e8\", \"relpath\": \"sub/b.csv\"}, {\"md5\": "
    "\"9b3ac0f9d5f0095dcb7c9e361a67311b\", \"relpath\": \"sub/deeper/c.json\"}, {\"md5\": "
    "\"a9ab413526d6bca789fde5b2d7de84f5\", \"relpath\": \"\\u00fcn\\u00ef \\u20ac.txt\"}]";
const char* kEmptyDirMd5 = "d751713988987e9331980363e24189ce.dir";

const char* kExpectedLock = R"(schema: '2.0'
stages:
  prepare:
    cmd: mkdir -p prepared && head -n 2 raw.csv > prepared/train.csv && (head -n 1
      raw.csv; tail -n 1 raw.csv) > prepared/test.csv
    deps:
    - path: raw.csv
      hash: md5
      md5: ef5b0ff5762bac4466f906872710eb34
      size: 19
    params:
      params.yaml:
        prepare.split: 0.2
    outs:
    - path: prepared
      hash: md5
      md5: ae31c508f921c537ced71bc75284b43a.dir
      size: 28
      nfiles: 2
  train:
    cmd: printf 'model lr=%s epochs=%s\n' 1e-05 3 > model.bin
    deps:
    - path: prepared/train.csv
      hash: md5
      md5: 4050c6f4d32bb47cc9026b827a077bd7
      size: 14
    params:
      params.yaml:
        train.epochs: 3
        train.lr: 1e-05
        train.opt:
          name: sgd
          momentum: 0.9
    outs:
    - path: model.bin
      hash: md5
      md5: a09b1385b9342337df7f2c3209356565
      size: 24
  evaluate:
    cmd:
    - "echo '{\"acc\": 0.9, \"loss\": 0.25}' > metrics.json"
    deps:
    - path: model.bin
      hash: md5
      md5: a09b1385b9342337df7f2c3209356565
      size: 24
    - path: prepared
      hash: md5
      md5: ae31c508f921c537ced71bc75284b43a.dir
      size: 28
      nfiles: 2
    outs:
    - path: metrics.json
      hash: md5
      md5: 718db41c939b512811573760923e85d1
      size: 27
)";

// ---- inputs (the same bytes as in gen_dvc_vectors.py) ----
void write_known_dir(const fs::path& root) {
  write_text(root / "a.txt", "alpha\n");
  write_text(root / "empty.bin", "");
  write_text(root / "sub/b.csv", "x,y\n1,2\n");
  write_text(root / "sub/deeper/c.json", "{\"k\": 1}\n");
  write_text(root / fs::u8path("\u00fcn\u00ef \u20ac.txt"), "unicode name\n");
  write_text(root / fs::u8path("emoji \U0001F600.txt"), "astral\n");
  write_text(root / "a.b/z", "sorted after a.txt, before a/\n");
  write_text(root / ".git/HEAD", "ref: refs/heads/main\n");
  fs::create_directories(root / "empty_dir");
}

const char* kPipelineYaml = R"(stages:
  prepare:
    cmd: mkdir -p prepared && head -n 2 raw.csv > prepared/train.csv && (head -n 1 raw.csv; tail -n 1 raw.csv) > prepared/test.csv
    deps:
    - raw.csv
    params:
    - prepare.split
    outs:
    - prepared
  train:
    cmd: printf 'model lr=%s epochs=%s\n' ${train.lr} ${train.epochs} > model.bin
    deps:
    - prepared/train.csv
    params:
    - train.lr
    - train.epochs
    - train.opt
    outs:
    - model.bin
  evaluate:
    cmd:
    - "echo '{\"acc\": 0.9, \"loss\": 0.25}' > metrics.json"
    deps:
    - prepared
    - model.bin
    metrics:
    - metrics.json:
        cache: false
)";

TEST(DvcHash, KnownFileIsPlainMd5) {
  TempDir tmp;
  write_text(tmp / "known.txt", "vigil: one binary for visual-safety ML\n");
  const auto h = hash_path(tmp / "known.txt");
  EXPECT_EQ(h.md5, kKnownFileMd5);
  EXPECT_EQ(h.size, 39);
  EXPECT_FALSE(h.nfiles.has_value());
  EXPECT_FALSE(h.isexec);
}

TEST(DvcHash, LegacyDos2UnixOnlyForTheLegacyKind) {
  TempDir tmp;
  write_text(tmp / "crlf.txt", "line one\r\nline two\r\n");
  EXPECT_EQ(file_md5(tmp / "crlf.txt"), kCrlfMd5);
  EXPECT_EQ(file_md5(tmp / "crlf.txt", HashKind::kMd5Dos2Unix), kCrlfDos2UnixMd5);
  // Binary content (a NUL byte) is never converted.
  write_text(tmp / "bin", std::string("a\r\n\0b", 5));
  EXPECT_EQ(file_md5(tmp / "bin", HashKind::kMd5Dos2Unix), file_md5(tmp / "bin"));
}

TEST(DvcHash, KnownDirectoryMatchesDvc) {
  TempDir tmp;
  write_known_dir(tmp / "data");
  const auto h = hash_path(tmp / "data", DvcIgnore::load(tmp.path()));
  EXPECT_EQ(h.md5, kDirMd5);
  EXPECT_EQ(h.size, kDirSize);
  EXPECT_EQ(h.nfiles, kDirNfiles);
  EXPECT_TRUE(h.isdir);
}

TEST(DvcHash, DirObjectBytesAreJsonDumpsSortKeys) {
  std::vector<DirEntry> entries = {{"sub/deeper/c.json", "9b3ac0f9d5f0095dcb7c9e361a67311b"},
                                   {"a.txt", "9f9f90dbe3e5ee1218c86b8839db1995"},
                                   {"\u00fcn\u00ef \u20ac.txt", "a9ab413526d6bca789fde5b2d7de84f5"},
                                   {"emoji \U0001F600.txt", "591074c5b5863df9ad836a7aeeb2a3c0"},
                                   {"empty.bin", "d41d8cd98f00b204e9800998ecf8427e"},
                                   {"a.b/z", "e06ec9fa81fe415bee8803e629225871"},
                                   {"sub/b.csv", "344fd2323dd33d5c058b7cf27de029e8"}};
  EXPECT_EQ(dir_object_bytes(entries), kDirObject);
  EXPECT_EQ(json_ascii_string("tab\t\"q\"\\ \x7f"), "\"tab\\t\\\"q\\\"\\\\ \\u007f\"");
  EXPECT_EQ(json_ascii_string("bad\xff"), "\"bad\\udcff\"");  // surrogateescape, as os.walk names it
}

TEST(DvcHash, EmptyDirAndIgnoredEntries) {
  TempDir tmp;
  fs::create_directories(tmp / "empty");
  EXPECT_EQ(hash_path(tmp / "empty").md5, kEmptyDirMd5);
  EXPECT_EQ(hash_path(tmp / "empty").nfiles, 0);
  write_text(tmp / "d/keep.txt", "k");
  write_text(tmp / "d/skip.log", "s");
  write_text(tmp / "d/logs/x.txt", "x");
  write_text(tmp / ".dvcignore", "# comment\n*.log\nd/logs/\n");
  const auto h = hash_path(tmp / "d", DvcIgnore::load(tmp.path()));
  EXPECT_EQ(h.nfiles, 1);
  EXPECT_EQ(h.size, 1);
}

TEST(DvcHash, SymlinksFollowFilesNotFolders) {
  TempDir tmp;
  write_text(tmp / "target.txt", "alpha\n");
  write_text(tmp / "elsewhere/inner.txt", "inner");
  fs::create_directories(tmp / "d");
  fs::create_symlink(tmp / "target.txt", tmp / "d/a.txt");
  fs::create_directory_symlink(tmp / "elsewhere", tmp / "d/linked");
  const auto h = hash_path(tmp / "d");
  EXPECT_EQ(h.nfiles, 1);
  EXPECT_EQ(h.size, 6);
  fs::create_symlink(tmp / "missing", tmp / "d/broken");
  EXPECT_THROW(hash_path(tmp / "d"), vigil::NotFound);
}

TEST(DvcIgnoreRules, GitWildMatch) {
  DvcIgnore ig;
  for (const char* p : {"*.tmp", "/build", "docs/**/*.md", "cache/", "!keep.tmp"}) ig.add(p);
  EXPECT_TRUE(ig.ignored("a/b/x.tmp", false));
  EXPECT_FALSE(ig.ignored("a/keep.tmp", false));
  EXPECT_TRUE(ig.ignored("build", true));
  EXPECT_FALSE(ig.ignored("src/build", true));
  EXPECT_TRUE(ig.ignored("docs/a/b/c.md", false));
  EXPECT_TRUE(ig.ignored("docs/c.md", false));
  EXPECT_TRUE(ig.ignored("x/cache/file", false));
  EXPECT_FALSE(ig.ignored("x/cache", false));  // a file called cache is not the folder pattern
}

TEST(DvcLock, ThreeStagePipelineLockIsByteExact) {
  TempDir tmp;
  write_text(tmp / "raw.csv", "id,value\n1,10\n2,20\n");
  write_text(
      tmp / "params.yaml",
      "prepare:\n  split: 0.2\n  seed: 20170428\ntrain:\n  lr: 1.0e-05\n  epochs: 3\n  opt:\n    name: sgd\n"
      "    momentum: 0.9\n");
  write_text(tmp / "dvc.yaml", kPipelineYaml);
  ReproOptions opt;
  opt.file = tmp / "dvc.yaml";
  std::vector<std::string> lines;
  auto result = reproduce(opt, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(result.ran.size(), 3u);
  // The ${...} in train's cmd resolved to the params' Python str() (1e-05), matching the vector's cmd.
  EXPECT_EQ(vigil::read_file(tmp / "dvc.lock"), kExpectedLock);
  // Reading it back and writing it again changes nothing.
  EXPECT_EQ(lockfile_text(read_lockfile(tmp / "dvc.lock")), kExpectedLock);
}

TEST(DvcLock, LegacyEntriesReadAndKept) {
  TempDir tmp;
  write_text(tmp / "in.txt", "line one\r\nline two\r\n");
  write_text(
      tmp / "dvc.yaml",
      "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps:\n    - in.txt\n    outs:\n    - out.txt\n");
  write_text(tmp / "out.txt", "line one\r\nline two\r\n");
  // A lock written by DVC 2: no `hash:` lines, md5-dos2unix values.
  write_text(tmp / "dvc.lock",
             std::string("schema: '2.0'\nstages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps:\n") +
                 "    - path: in.txt\n      md5: " + kCrlfDos2UnixMd5 + "\n      size: 20\n    outs:\n" +
                 "    - path: out.txt\n      md5: " + kCrlfDos2UnixMd5 + "\n      size: 20\n");
  const auto lock = read_lockfile(tmp / "dvc.lock");
  ASSERT_NE(lock.find("copy"), nullptr);
  EXPECT_TRUE(lock.find("copy")->deps[0].legacy);
  const auto st = pipeline_status(tmp / "dvc.yaml");
  ASSERT_EQ(st.size(), 1u);
  EXPECT_FALSE(st[0].changed()) << format_status(st);
  EXPECT_EQ(lockfile_text(lock), vigil::read_file(tmp / "dvc.lock"));  // legacy entries stay legacy
}

TEST(Yaml, LoadsWithYaml12Typing) {
  const auto doc = parse_yaml(
      "a: yes\nb: 1e3\nc: 012\nd: 0x1F\ne: ~\nf: '2.0'\ng: 1_000\nh: .inf\ni: True\nj: 2001-01-01\nk: -0.5\n",
      "t.yaml");
  const Json& v = doc.value;
  EXPECT_EQ(v["a"], "yes");
  EXPECT_TRUE(v["b"].is_number_float());
  EXPECT_EQ(v["b"].get<double>(), 1000.0);
  EXPECT_EQ(v["c"], 12);
  EXPECT_EQ(v["d"], 31);
  EXPECT_TRUE(v["e"].is_null());
  EXPECT_EQ(v["f"], "2.0");
  EXPECT_EQ(v["g"], 1000);
  EXPECT_TRUE(std::isinf(v["h"].get<double>()));
  EXPECT_EQ(v["i"], true);
  EXPECT_EQ(v["j"], "2001-01-01");
  EXPECT_EQ(doc.line_of("/k"), 11);
  EXPECT_THROW(parse_yaml("a: [1, 2\n", "bad.yaml"), vigil::InvalidArgument);
}

TEST(Yaml, EmitsLikeRuamel) {
  // Expected text produced by ruamel.yaml 0.17 (DVC's dumper) for the same data.
  Json d = Json::parse(R"({"schema": "2.0", "a": [null, {}, [], [[1]], {"k": [1, 2], "z": {"q": null}}],
    "s": ["- x", "#c", "x #y", "a:b", "null", "Yes", "012", "", " lead", "tab\there", "it's\nx", "x]", "1e3"],
    "f": [0.01, 1e-05, 1e16, 100000.0, true]})");
  const std::string want = R"(schema: '2.0'
a:
- 
- {}
- []
- - - 1
- k:
  - 1
  - 2
  z:
    q:
s:
- '- x'
- '#c'
- 'x #y'
- a:b
- 'null'
- Yes
- '012'
- ''
- ' lead'
- "tab\there"
- "it's\nx"
- x]
- '1e3'
f:
- 0.01
- 1e-05
- 1e+16
- 100000.0
- true
)";
  EXPECT_EQ(dump_yaml(d), want);
  EXPECT_EQ(python_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_float_repr(1e22), "1e+22");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
}

// When python3-ruamel.yaml is installed, compare the emitter with ruamel on random documents.
TEST(Yaml, MatchesRuamelOnRandomDocuments) {
  auto [code, out] = vigil::testing::run_shell("/usr/bin/python3 -c 'import ruamel.yaml'");
  if (code != 0) GTEST_SKIP() << "python3-ruamel.yaml absent; skipping the randomised comparison";
  const std::string script = std::string(VIGIL_SOURCE_DIR) + "/tests/unit/pipeline/gen_dvc_vectors.py";
  auto [rc, text] = vigil::testing::run_shell("/usr/bin/python3 '" + script + "' --yaml-fuzz 7 300");
  ASSERT_EQ(rc, 0) << text;
  int n = 0;
  for (const auto& line : vigil::split(text, '\n')) {
    if (line.empty()) continue;
    const Json c = Json::parse(line);
    ASSERT_EQ(dump_yaml(c[0]), c[1].get<std::string>()) << "case " << n << ": " << c[0].dump();
    ++n;
  }
  EXPECT_EQ(n, 300);
}

}  // namespace
