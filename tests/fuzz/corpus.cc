#include "tests/fuzz/corpus.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "tests/support/subprocess.h"

namespace audiosocket::fuzz {
namespace {

std::string CorpusDir(absl::string_view target) {
  return testing::RunfilePath(absl::StrCat("tests/fuzz/corpus/", target));
}

}  // namespace

std::vector<std::string> CorpusFiles(absl::string_view target) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDir(target), ec)) {
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> ReadCorpusFile(absl::string_view target, const std::string& name) {
  std::ifstream in(absl::StrCat(CorpusDir(target), "/", name), std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::string CorpusCaseName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

}  // namespace audiosocket::fuzz
