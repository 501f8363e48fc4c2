// FUZZ_CHECK for the libFuzzer targets of tests/fuzz: a broken invariant
// prints what broke and aborts, which libFuzzer reports as a crash and the
// replay test (replay_main.cc) as a failure.
//
// Thread-safety: the targets are single-threaded.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)
