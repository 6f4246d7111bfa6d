// tests/deploy/nginx_replicas_test.py against the moon this build made: two replicas behind
// the shipped deploy/nginx/nginx.conf, prefix-affine routing, streaming, `moon bench` through
// the balancer, and a replica killed under load (the script's docstring has the checks).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/run_command.h"
#include "common/test_data.h"

namespace moon::test {
namespace {

TEST(NginxReplicasScript, TwoReplicasBehindNginxPassEveryCheck) {
  MOON_REQUIRE_TEST_FILE(model, "models/stories260K-f32.gguf");
  // CI installs nginx (scripts/install-deps.sh); elsewhere a machine without it skips.
  if (std::system("command -v nginx > /dev/null || test -x /usr/sbin/nginx") != 0) {
    // CI (MOON_REQUIRE_TEST_DATA=1, set by .ci/run) must not pass without it.
    if (test_data_required()) FAIL() << "CI must have nginx";
    GTEST_SKIP() << "SKIPPED LOUDLY: nginx is not installed";
  }
  const RunResult r = run_command(
      "/usr/bin/python3", {std::string(MOON_SOURCE_DIR) + "/tests/deploy/nginx_replicas_test.py",
                           "--moon", MOON_BINARY_PATH, "--model", model});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace moon::test
