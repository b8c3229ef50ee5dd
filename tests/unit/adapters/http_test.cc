// The daemon's HTTP port (cdr/admin/http.h) in process: routes, methods,
// limits, and a quick route (a probe) answered while slow ones (scrapes)
// are stuck.
#include "cdr/admin/http.h"

#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <future>
#include <thread>

#include "daemon_process.h"

namespace cdr::test {
namespace {

using admin::http_reply;
using admin::http_route;

void wait_until(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(done());
}

std::string at(const admin::http_server& s) { return "127.0.0.1:" + std::to_string(s.port()); }

TEST(http, routes_answer_and_unknown_paths_and_methods_are_refused) {
  admin::http_server s({"127.0.0.1", 0}, {{"/a", {[] {
                                             return http_reply{200, "text/plain", "alpha\n"};
                                           }}},
                                          {"/b",
                                           {[] {
                                              return http_reply{503, "application/json", "{}\n"};
                                            },
                                            true}}});
  ASSERT_NE(s.port(), 0);
  auto r = http_request(at(s), "/a?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "alpha\n");
  EXPECT_NE(r.head.find("Cache-Control: no-store"), std::string::npos) << r.head;
  r = http_request(at(s), "/b");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.head.find("Content-Type: application/json"), std::string::npos) << r.head;
  r = http_request(at(s), "/c");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "not found; served: /a /b\n");
  r = http_request(at(s), "/a", "POST");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: GET, HEAD"), std::string::npos) << r.head;
  r = http_request(at(s), "/a", "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Length: 6"), std::string::npos) << r.head;
  EXPECT_EQ(r.body, "");
}

TEST(http, a_route_that_throws_is_a_500_and_the_server_goes_on) {
  admin::http_server s({"127.0.0.1", 0}, {{"/x", {[]() -> http_reply { throw std::runtime_error("boom"); }}},
                                          {"/y",
                                           {[] {
                                              return http_reply{200, "text/plain", "y"};
                                            },
                                            true}}});
  EXPECT_EQ(http_request(at(s), "/x").status, 500);
  EXPECT_EQ(http_request(at(s), "/y").body, "y");
}

TEST(http, a_quick_route_answers_while_slow_ones_are_stuck) {
  std::promise<void> release;
  std::promise<void> entered;
  auto released = release.get_future().share();
  std::atomic<int> entries{0};
  admin::http_server s({"127.0.0.1", 0}, {{"/slow", {[&, released] {
                                             if (entries++ == 0) entered.set_value();
                                             released.wait();
                                             return http_reply{200, "text/plain", "late"};
                                           }}},
                                          {"/healthz",
                                           {[] {
                                              return http_reply{200, "text/plain", "ok"};
                                            },
                                            true}}});
  auto a = std::async(std::launch::async, [&] { return http_request(at(s), "/slow"); });
  auto b = std::async(std::launch::async, [&] { return http_request(at(s), "/slow"); });
  entered.get_future().wait();  // the first holds the worker; the second waits behind it
  EXPECT_EQ(http_request(at(s), "/healthz").body, "ok");
  EXPECT_EQ(a.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "the slow route is still stuck";
  release.set_value();
  EXPECT_EQ(a.get().body, "late");
  EXPECT_EQ(b.get().body, "late");
}

TEST(http, oversized_headers_and_connections_past_the_limit_are_hung_up_on) {
  admin::http_server s({"127.0.0.1", 0, 2}, {{"/a", {[] { return http_reply{200, "text/plain", "a"}; }, true}}});
  EXPECT_THROW(http_request(at(s), "/a?" + std::string(10000, 'q')), std::runtime_error);
  // Two idle connections take both places; a third is closed unanswered.
  const auto connect_idle = [&] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    EXPECT_EQ(getaddrinfo("127.0.0.1", std::to_string(s.port()).c_str(), &hints, &res), 0);
    const int fd = socket(res->ai_family, SOCK_STREAM, 0);
    EXPECT_EQ(connect(fd, res->ai_addr, res->ai_addrlen), 0);
    freeaddrinfo(res);
    return fd;
  };
  const int one = connect_idle();
  const int two = connect_idle();
  wait_until([&] { return s.connections() == 2; });
  EXPECT_THROW(http_request(at(s), "/a"), std::runtime_error);
  close(one);
  close(two);
  wait_until([&] { return s.connections() == 0; });
  EXPECT_EQ(http_request(at(s), "/a").body, "a");
}

TEST(http, an_address_that_cannot_be_bound_is_named) {
  admin::http_server s({"127.0.0.1", 0}, {});
  try {
    admin::http_server t({"127.0.0.1", s.port()}, {});
    FAIL() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(s.port())), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cdr::test
