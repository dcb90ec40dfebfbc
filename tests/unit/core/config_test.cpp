#include <gtest/gtest.h>

#include "tests_util.h"
#include "vigil/core/config.h"
#include "vigil/core/fs.h"

namespace {

struct Inner {
  double lr = 0.01;
  std::vector<int> steps{10, 20};
  template <class V>
  void visit(V& v) {
    v("lr", lr, "learning rate");
    v("steps", steps, "milestones");
  }
};

struct Outer {
  int epochs = 5;
  std::string name = "run";
  bool flag = false;
  Inner optim;
  template <class V>
  void visit(V& v) {
    v("epochs", epochs, "epochs");
    v("name", name, "name");
    v("flag", flag, "a flag");
    v("optim", optim, "optimiser");
  }
  void validate() const { VIGIL_CHECK(epochs > 0, "expected epochs > 0, got {}", epochs); }
};

using vigil::InvalidArgument;
using vigil::config::Source;

TEST(Config, DefaultsWhenNothingGiven) {
  auto o = vigil::config::load<Outer>(Source{});
  EXPECT_EQ(o.epochs, 5);
  EXPECT_EQ(o.optim.lr, 0.01);
}

TEST(Config, FileThenOverridesInOrder) {
  vigil::testing::TempDir dir;
  vigil::testing::write_text(dir / "c.yaml", "epochs: 7\noptim:\n  lr: 0.5\n  steps: [1, 2, 3]\n");
  auto o = vigil::config::load<Outer>(
      Source{(dir / "c.yaml").string(), {"optim.lr=0.25", "flag=true", "name=x y"}, ""});
  EXPECT_EQ(o.epochs, 7);
  EXPECT_DOUBLE_EQ(o.optim.lr, 0.25);
  EXPECT_EQ(o.optim.steps, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(o.flag);
  EXPECT_EQ(o.name, "x y");
}

TEST(Config, ASectionOfAParamsFile) {
  vigil::testing::TempDir dir;
  // A DVC params.yaml: the train stage reads its own section, other sections are not its keys.
  vigil::testing::write_text(
      dir / "params.yaml",
      "split:\n  val: 0.2\nstages:\n  train:\n    epochs: 4\n    optim:\n      lr: 0.5\n");
  auto o =
      vigil::config::load<Outer>(Source{(dir / "params.yaml").string(), {"optim.lr=0.1"}, "stages.train"});
  EXPECT_EQ(o.epochs, 4);
  EXPECT_DOUBLE_EQ(o.optim.lr, 0.1);
  try {
    vigil::config::load<Outer>(Source{(dir / "params.yaml").string(), {}, "train"});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expected a key 'train' (--config-key)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(vigil::config::load<Outer>(Source{(dir / "params.yaml").string(), {}, "split.val"}),
               InvalidArgument);
}

TEST(Config, UnknownKeyNamesClosest) {
  try {
    vigil::config::load<Outer>(Source{"", {"optim.lrr=1"}, ""});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'optim.lrr'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("did you mean 'optim.lr'"), std::string::npos) << e.what();
  }
}

TEST(Config, UnknownTopLevelKeyInFile) {
  vigil::testing::TempDir dir;
  vigil::testing::write_text(dir / "c.yaml", "epocs: 3\n");
  try {
    vigil::config::load<Outer>(Source{(dir / "c.yaml").string(), {}, ""});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'epochs'"), std::string::npos) << e.what();
  }
}

TEST(Config, WrongTypeNamesKeyAndExpectation) {
  try {
    vigil::config::load<Outer>(Source{"", {"epochs=many"}, ""});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'epochs'"), std::string::npos) << m;
    EXPECT_NE(m.find("expected an integer"), std::string::npos) << m;
    EXPECT_NE(m.find("'many'"), std::string::npos) << m;
  }
}

TEST(Config, ScalarWhereSectionExpected) {
  EXPECT_THROW(vigil::config::load<Outer>(Source{"", {"optim=3"}, ""}), InvalidArgument);
  EXPECT_THROW(vigil::config::load<Outer>(Source{"", {"epochs.x=3"}, ""}), InvalidArgument);
}

TEST(Config, ValidateRuns) {
  EXPECT_THROW(vigil::config::load<Outer>(Source{"", {"epochs=0"}, ""}), InvalidArgument);
}

TEST(Config, MalformedOverrideAndYamlSyntax) {
  EXPECT_THROW(vigil::config::load<Outer>(Source{"", {"noequals"}, ""}), InvalidArgument);
  vigil::testing::TempDir dir;
  vigil::testing::write_text(dir / "bad.yaml", "epochs: [1, 2\n");
  try {
    vigil::config::load<Outer>(Source{(dir / "bad.yaml").string(), {}, ""});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos) << e.what();
  }
}

TEST(Config, ResolvedYamlRoundTrips) {
  auto o = vigil::config::load<Outer>(Source{"", {"optim.lr=0.125", "epochs=9"}, ""});
  vigil::testing::TempDir dir;
  vigil::config::write_resolved(vigil::config::to_yaml(o), dir.path());
  auto back = vigil::config::load<Outer>(Source{(dir / "config.yaml").string(), {}, ""});
  EXPECT_EQ(back.epochs, 9);
  EXPECT_DOUBLE_EQ(back.optim.lr, 0.125);
  EXPECT_EQ(back.optim.steps, o.optim.steps);
}

TEST(Config, ListKeys) {
  auto keys = vigil::config::list_keys<Outer>();
  ASSERT_EQ(keys.size(), 5u);
  EXPECT_EQ(keys[3].first, "optim.lr");
}

}  // namespace

TEST(Config, OneLineOverridesAreListsOnlyInFlowSyntax) {
  YAML::Node tree(YAML::NodeType::Map);
  vigil::config::set_path(tree, "access_log", "-");  // `--access-log -` means stderr, not a YAML sequence
  ASSERT_TRUE(tree["access_log"].IsScalar());
  EXPECT_EQ(tree["access_log"].as<std::string>(), "-");
  vigil::config::set_path(tree, "note", "a: b");
  EXPECT_EQ(tree["note"].as<std::string>(), "a: b");
  vigil::config::set_path(tree, "sizes", "[1, 2]");
  ASSERT_TRUE(tree["sizes"].IsSequence());
  EXPECT_EQ(tree["sizes"].size(), 2u);
  vigil::config::set_path(tree, "thresholds", "{gun: 0.5}");
  EXPECT_TRUE(tree["thresholds"].IsMap());
}
