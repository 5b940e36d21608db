#include "conf/secret_source.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <string>

#include "conf_test_util.h"

namespace pgring::conf {
namespace {

using testing::TempDir;

TEST_CASE("ReadSecretFile trims exactly one trailing newline", "[conf][secret]") {
  TempDir dir;
  CHECK(*ReadSecretFile(dir.Write("a", "s3cret")) == "s3cret");
  CHECK(*ReadSecretFile(dir.Write("b", "s3cret\n")) == "s3cret");
  CHECK(*ReadSecretFile(dir.Write("c", "s3cret\r\n")) == "s3cret");
  CHECK(*ReadSecretFile(dir.Write("d", "s3cret\n\n")) == "s3cret\n");
  CHECK(*ReadSecretFile(dir.Write("e", " spaces kept \n")) == " spaces kept ");
}

TEST_CASE("ReadSecretFile names the path and the errno text", "[conf][secret]") {
  TempDir dir;
  const std::string missing = dir.path() + "/missing";
  absl::StatusOr<std::string> r = ReadSecretFile(missing);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()) ==
        "cannot read '" + missing + "': No such file or directory");

  const std::string sub = dir.MakeDir("sub");
  r = ReadSecretFile(sub);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()) == "cannot read '" + sub + "': Is a directory");
}

TEST_CASE("ReadSecretFile rejects empty and oversized files without echoing them",
          "[conf][secret]") {
  TempDir dir;
  const std::string empty = dir.Write("empty", "\n");
  absl::StatusOr<std::string> r = ReadSecretFile(empty);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()) ==
        "'" + empty + "' is empty; write the password into it");

  const std::string big = dir.Write("big", std::string(kMaxSecretFileBytes + 1, 'x'));
  r = ReadSecretFile(big);
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()).find("is larger than 65536 bytes") != std::string::npos);
  CHECK(std::string(r.status().message()).find("xxxx") == std::string::npos);
  CHECK(ReadSecretFile(dir.Write("max", std::string(kMaxSecretFileBytes, 'y'))).ok());
}

TEST_CASE("ReadSecretEnv reads a variable and reports unset or empty ones", "[conf][secret]") {
  ::setenv("PGRING_TEST_SECRET_SET", "from-env", 1);
  ::setenv("PGRING_TEST_SECRET_EMPTY", "", 1);
  ::unsetenv("PGRING_TEST_SECRET_UNSET");
  CHECK(*ReadSecretEnv("PGRING_TEST_SECRET_SET") == "from-env");
  CHECK(std::string(ReadSecretEnv("PGRING_TEST_SECRET_UNSET").status().message()) ==
        "environment variable PGRING_TEST_SECRET_UNSET is not set");
  CHECK(std::string(ReadSecretEnv("PGRING_TEST_SECRET_EMPTY").status().message()) ==
        "environment variable PGRING_TEST_SECRET_EMPTY is empty");
  ::unsetenv("PGRING_TEST_SECRET_SET");
  ::unsetenv("PGRING_TEST_SECRET_EMPTY");
}

}  // namespace
}  // namespace pgring::conf
