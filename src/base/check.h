#pragma once
// NIMBUS_CHECK: an invariant of our own code; aborts with the location when it
// does not hold (always on). NIMBUS_DCHECK: the same in debug builds only.

#include <cstdio>
#include <cstdlib>

#define NIMBUS_CHECK(cond)                                                        \
  do {                                                                            \
    if (!(cond)) [[unlikely]] {                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

#ifdef NDEBUG
#define NIMBUS_DCHECK(cond) \
  do {                      \
  } while (0)
#else
#define NIMBUS_DCHECK(cond) NIMBUS_CHECK(cond)
#endif
