#pragma once
// The store tests run against both engines: TEST_P on a fixture derived from StoreBackendTest, instantiated
// with VIGIL_STORE_BACKENDS. "sqlite" leaves VIGIL_STORE unset (the workspace's vigil.db); "postgresql"
// points VIGIL_STORE at a fresh database of the binary's throwaway cluster (tests/pg_server.h), so every
// Store, EventLog and PredictionLog the test opens, and every process it starts, uses it.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "pg_server.h"
#include "vigil/store/store.h"

namespace vigil::testing {

class StoreBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ::unsetenv("VIGIL_STORE");
    if (!postgres()) return;
    std::string why;
    bool absent = false;
    pg_ = PgServer::get(why, absent);
    if (!pg_ && absent) GTEST_SKIP() << why;
    ASSERT_NE(pg_, nullptr) << why;
    url_ = pg_->create_database();
    ::setenv("VIGIL_STORE", url_.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("VIGIL_STORE"); }

  bool postgres() const { return GetParam() == "postgresql"; }
  /// Options for a second, separate store (another machine): a new database under PostgreSQL; under SQLite
  /// the default, which is the other workspace's own file.
  store::StoreOptions other_store() const {
    store::StoreOptions o;
    if (postgres()) o.url = pg_->create_database();
    return o;
  }

  PgServer* pg_ = nullptr;
  std::string url_;  ///< the test's PostgreSQL database ("" under SQLite)
};

}  // namespace vigil::testing

#define VIGIL_STORE_BACKENDS(fixture)                                                    \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture, ::testing::Values("sqlite", "postgresql"), \
                           [](const ::testing::TestParamInfo<std::string>& i) { return i.param; })
