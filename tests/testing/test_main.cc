// The main() of every test binary: the project's runtime set-up, then gtest.
#include "common/runtime.h"
#include "gtest/gtest.h"

int main(int argc, char** argv) {
  ila::InitRuntime();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
