#pragma once
/// @file text/text.hpp
/// The tokenizers of grad: include this for char_tokenizer, gpt2_tokenizer and the UTF-8 helpers.

#include "grad/text/char_tokenizer.hpp"
#include "grad/text/gpt2_tokenizer.hpp"
#include "grad/text/pretokenize.hpp"
#include "grad/text/utf8.hpp"
