// FlushDenormalsScope (backend/fp_env.h): subnormal results are 0 inside the scope, and the
// thread's previous floating-point environment is back after it, nested scopes included.
#include "backend/fp_env.h"

#include <gtest/gtest.h>

#include <cfloat>

namespace kvbits {
namespace {

// FLT_MIN * 2^-10: a subnormal result unless flushed. volatile: computed at run time.
float tiny_product() {
  volatile float a = FLT_MIN, b = 1.0f / 1024.0f;
  return a * b;
}

TEST(FlushDenormalsScope, FlushesSubnormalsInsideAndRestoresAfter) {
#if defined(__x86_64__) || defined(__i386__)
  // MXCSR's control bits; bits 0-5 are sticky exception flags that arithmetic sets as it goes.
  constexpr unsigned kControl = ~0x3Fu;
  const unsigned before = _mm_getcsr() & kControl;
  ASSERT_GT(tiny_product(), 0.0f);  // the default environment keeps subnormals
  {
    const FlushDenormalsScope outer;
    EXPECT_EQ(tiny_product(), 0.0f);
    {
      const FlushDenormalsScope inner;
      EXPECT_EQ(tiny_product(), 0.0f);
    }
    EXPECT_EQ(tiny_product(), 0.0f);  // the inner scope restored the outer one's, not the default
  }
  EXPECT_EQ(_mm_getcsr() & kControl, before);
  EXPECT_GT(tiny_product(), 0.0f);
#else
  GTEST_SKIP() << "no MXCSR on this architecture; the scope does nothing";
#endif
}

}  // namespace
}  // namespace kvbits
