// The route tables against a real Server on a real port: every row of every table, asked with a method its
// path does not take, answers 405 with the row's method in Allow (so a route added to a table is covered by
// its row alone, and can no longer turn a 405 into a 404 by being missing from a second list); an unknown
// path answers 404; a request without Content-Length has an empty body (RFC 9112 section 6.3) and is answered
// at once instead of after the read timeout.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests_util.h"
#include "vigil/core/strings.h"
#include "vigil/serve/server.h"

namespace vigil::serve {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

/// The status line and headers of an answer, and its body.
struct Reply {
  int status = -1;
  std::string head;  ///< the status line and the headers
  std::string body;
  /// The value of header `name` (case-insensitive), or "".
  std::string header(const std::string& name) const {
    const std::regex re("\r\n" + name + ":[ \t]*([^\r]*)", std::regex::icase);
    std::smatch m;
    return std::regex_search(head, m, re) ? m[1].str() : "";
  }
};

/// Sends `request` on a fresh connection and reads the answer until the server closes it (the requests say
/// Connection: close). A server that waits for a body that never comes shows as no answer within 10 s.
Reply ask(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  Reply reply;
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, end);
  reply.body = raw.substr(end + 4);
  return reply;
}

/// `method path` with an empty body: with `Content-Length: 0`, or with no length at all.
std::string request(const std::string& method, const std::string& path, bool with_length) {
  return fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}\r\n", method, path,
                     with_length ? "Content-Length: 0\r\n" : "");
}

/// A path of a route's label with every {parameter} filled in.
std::string example_path(const std::string& label) {
  // Ids are hexadecimal (dataset versions, predictions, events): one that every id pattern takes.
  const std::string ids = std::regex_replace(label, std::regex(R"(\{id\})"), "abcdef012345");
  return std::regex_replace(ids, std::regex(R"(\{[^}]*\})"), "x");
}

/// The methods of every route whose pattern matches `path`.
std::set<std::string> methods_of(const std::vector<RouteInfo>& routes, const std::string& path) {
  std::set<std::string> methods;
  for (const auto& r : routes)
    if (std::regex_match(path, std::regex(r.pattern))) methods.insert(r.method);
  return methods;
}

std::set<std::string> allow_set(const std::string& allow) {
  std::set<std::string> methods;
  for (const auto& m : split(allow, ',')) methods.insert(std::string(trim(m)));
  return methods;
}

/// `vigil ui`'s server (no model: nothing to load) on a free port, served by a thread.
class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServeOptions o;
    o.allow_no_model = true;
    o.workspace = (tmp_ / "ws").string();
    o.port = 0;
    o.http_threads = 2;
    server_ = std::make_unique<Server>(o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    // Server::stop() before run() is listening would not end run(): wait until it answers.
    for (int i = 0; i < 500 && ask(port_, request("GET", "/health", false)).status != 200; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  testing::TempDir tmp_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = -1;
};

TEST_F(RoutesTest, EveryRowAskedWithAnotherMethodAnswers405WithItsMethodInAllow) {
  const std::vector<RouteInfo> routes = server_routes();
  std::set<std::string> labels;
  for (const auto& r : routes) labels.insert(r.label);
  for (const char* label : {"/v1/predict", "/v2/models/{name}/infer", "/v1/runs/{ref}", "/ui/{path}"})
    EXPECT_TRUE(labels.count(label)) << label
                                     << ": the predict, KServe, tracking and UI tables are all listed";
  for (const auto& row : routes) {
    SCOPED_TRACE(row.method + " " + row.label);
    EXPECT_THAT((std::vector<std::string>{"GET", "POST", "PUT", "DELETE"}), Contains(row.method));
    const std::string path = example_path(row.label);
    ASSERT_TRUE(std::regex_match(path, std::regex(row.pattern)))
        << "the label does not describe the pattern " << row.pattern;
    const std::set<std::string> accepted = methods_of(routes, path);
    std::string wrong;
    for (const char* m : {"GET", "POST", "PUT", "DELETE", "PATCH"})
      if (!accepted.count(m)) {
        wrong = m;
        break;
      }
    ASSERT_FALSE(wrong.empty());
    const Reply reply = ask(port_, request(wrong, path, /*with_length=*/true));
    EXPECT_EQ(reply.status, 405) << wrong << " " << path << ": " << reply.head << "\n" << reply.body;
    EXPECT_THAT(allow_set(reply.header("Allow")), Contains(row.method)) << reply.head;
    EXPECT_EQ(allow_set(reply.header("Allow")), accepted) << reply.head;
    EXPECT_THAT(reply.body, HasSubstr("\"code\":\"method_not_allowed\""));
    if (wrong != "GET") {
      // The same without Content-Length: no body, answered at once (not after the read timeout).
      const Reply bodiless = ask(port_, request(wrong, path, /*with_length=*/false));
      EXPECT_EQ(bodiless.status, 405) << wrong << " " << path << " without Content-Length: " << bodiless.head;
      EXPECT_EQ(allow_set(bodiless.header("Allow")), accepted) << bodiless.head;
    }
  }
}

TEST_F(RoutesTest, AnUnknownPathAnswers404WithOrWithoutABody) {
  for (const auto& [method, length] : std::vector<std::pair<std::string, bool>>{
           {"GET", false}, {"POST", true}, {"POST", false}, {"DELETE", false}, {"PUT", true}}) {
    SCOPED_TRACE(method + (length ? " with Content-Length" : " without Content-Length"));
    const Reply reply = ask(port_, request(method, "/v1/nothing/here", length));
    EXPECT_EQ(reply.status, 404) << reply.head;
    EXPECT_EQ(reply.header("Allow"), "");
    EXPECT_THAT(reply.body, HasSubstr("\"code\":\"not_found\""));
  }
}

TEST_F(RoutesTest, ARequestWithoutContentLengthHasAnEmptyBodyAndReachesItsRoute) {
  const Reply index = ask(port_, request("POST", "/v2/repository/index", /*with_length=*/false));
  EXPECT_EQ(index.status, 200) << index.head << "\n" << index.body;
  EXPECT_EQ(index.body, "[]");  // no model served
  EXPECT_FALSE(index.header("X-Request-Id").empty());
  // Triton's load call reaches the load route (which has no model to reload in `vigil ui`).
  const Reply load = ask(port_, request("POST", "/v2/repository/models/guns/load", false));
  EXPECT_EQ(load.status, 503) << load.head << "\n" << load.body;
  EXPECT_THAT(load.body, HasSubstr("\"code\":\"no_model\""));
  // A body announced by Content-Length is still read: the alias route parses it (400 asking for "version"),
  // and without Content-Length it has none to parse (the same 400, at once).
  const std::string put =
      "PUT /v1/registry/models/masks/aliases/production HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: 7\r\n\r\nnot-js!";
  const Reply bad_body = ask(port_, put);
  EXPECT_EQ(bad_body.status, 400) << bad_body.head << "\n" << bad_body.body;
  EXPECT_THAT(bad_body.body, HasSubstr("version"));
  const Reply no_body = ask(port_, request("PUT", "/v1/registry/models/masks/aliases/production", false));
  EXPECT_EQ(no_body.status, 400) << no_body.head << "\n" << no_body.body;
  EXPECT_THAT(no_body.body, HasSubstr("version"));
  // The route's groups come from the path of the request handed on: the alias is checked by name.
  const Reply groups = ask(port_, request("DELETE", "/v1/registry/models/masks/aliases/42", false));
  EXPECT_EQ(groups.status, 400) << groups.head << "\n" << groups.body;
  EXPECT_THAT(groups.body, HasSubstr("'42'"));
}

}  // namespace
}  // namespace vigil::serve
