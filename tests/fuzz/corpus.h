#ifndef AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CORPUS_H_
#define AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CORPUS_H_

// A fuzz target's committed seed corpus (tests/fuzz/corpus/TARGET/, in the
// test's runfiles), for the tests that replay it one case per file.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace audiosocket::fuzz {

// The corpus's file names, sorted; empty when the directory is missing.
std::vector<std::string> CorpusFiles(absl::string_view target);

// One corpus file's bytes (empty when it cannot be read).
std::vector<uint8_t> ReadCorpusFile(absl::string_view target, const std::string& name);

// A test case name gtest accepts, from a corpus file name.
std::string CorpusCaseName(const ::testing::TestParamInfo<std::string>& info);

}  // namespace audiosocket::fuzz

#endif  // AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CORPUS_H_
