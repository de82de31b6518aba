#pragma once
#include <unicode/unorm2.h>

// ICU renames its C symbols per version (unorm2_normalize -> unorm2_normalize_72) through
// function-like macros, which Swift cannot import; these inline wrappers resolve them in C.
static inline const UNormalizer2 *shears_icu_nfc(UErrorCode *error) { return unorm2_getNFCInstance(error); }
static inline const UNormalizer2 *shears_icu_nfd(UErrorCode *error) { return unorm2_getNFDInstance(error); }
static inline const UNormalizer2 *shears_icu_nfkc(UErrorCode *error) { return unorm2_getNFKCInstance(error); }
static inline const UNormalizer2 *shears_icu_nfkd(UErrorCode *error) { return unorm2_getNFKDInstance(error); }
static inline int32_t shears_icu_normalize(const UNormalizer2 *normalizer, const UChar *source, int32_t length,
                                           UChar *destination, int32_t capacity, UErrorCode *error) {
    return unorm2_normalize(normalizer, source, length, destination, capacity, error);
}
static inline int32_t shears_icu_span_quick_check_yes(const UNormalizer2 *normalizer, const UChar *source,
                                                      int32_t length, UErrorCode *error) {
    return unorm2_spanQuickCheckYes(normalizer, source, length, error);
}
