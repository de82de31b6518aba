// Hardware half-float conversion (F16C), chosen at run time so that builds without
// `-target-cpu` flags still convert at memory speed on CPUs that have it.
#include "kernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int shears_has_f16c(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
}

__attribute__((target("avx,f16c")))
void shears_f16_to_f32(const void *src, float *dst, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    if (i < n) {
        uint16_t tail[8] = {0};
        float out[8];
        memcpy(tail, s + 2 * i, 2 * (n - i));
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tail)));
        memcpy(dst + i, out, 4 * (n - i));
    }
}

__attribute__((target("avx,f16c")))
void shears_f32_to_f16(const float *src, void *dst, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(d + 2 * i), h);
    }
    if (i < n) {
        float tail[8] = {0};
        uint16_t out[8];
        memcpy(tail, src + i, 4 * (n - i));
        _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(tail), _MM_FROUND_TO_NEAREST_INT));
        memcpy(d + 2 * i, out, 2 * (n - i));
    }
}
#else
int shears_has_f16c(void) { return 0; }
void shears_f16_to_f32(const void *src, float *dst, size_t n) { (void)src; (void)dst; (void)n; }
void shears_f32_to_f16(const float *src, void *dst, size_t n) { (void)src; (void)dst; (void)n; }
#endif
