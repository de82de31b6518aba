#pragma once
#include <oniguruma.h>

// Macros that Swift cannot import (they take the address of a global).
static inline OnigEncoding shears_onig_encoding_utf8(void) { return ONIG_ENCODING_UTF8; }
static inline OnigSyntaxType *shears_onig_syntax_default(void) { return ONIG_SYNTAX_DEFAULT; }

// onig_error_code_to_str is variadic (the error info is passed through "..."); Swift cannot call it.
static inline int shears_onig_error_string(OnigUChar *buffer, int code, OnigErrorInfo *info) {
    return onig_error_code_to_str(buffer, code, info);
}
