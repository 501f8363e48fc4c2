// Runs a fuzz target without libFuzzer, as an ordinary test of `make test`:
// every file of the corpus directories (".hex" files are hex text, ".md"
// files are skipped), then
// MUTATIONS mutations of them (bit flips, truncations, inserted and
// replaced bytes, splices of two inputs) from a fixed seed. A target
// aborts on a broken invariant, so exit 0 means every input was handled.
//
//   <target>_replay MUTATIONS CORPUS_DIR...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> ReadInput(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (path.extension() != ".hex") return {bytes.begin(), bytes.end()};
  std::vector<uint8_t> out;
  std::string digits;
  for (char c : bytes) {
    if (std::isxdigit(static_cast<unsigned char>(c))) digits += c;
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(
        static_cast<uint8_t>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

void Run(const std::vector<uint8_t>& input) {
  // An exact-size heap copy, so that reading past the end is past it.
  std::vector<uint8_t> exact(input.begin(), input.end());
  LLVMFuzzerTestOneInput(exact.data(), exact.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MUTATIONS CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  const long mutations = std::strtol(argv[1], nullptr, 10);
  std::vector<std::vector<uint8_t>> seeds;
  for (int i = 2; i < argc; ++i) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(argv[i], ec)) {
      if (e.is_regular_file() && e.path().extension() != ".md") {
        seeds.push_back(ReadInput(e.path()));
      }
    }
    if (ec) {
      std::fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i],
                   ec.message().c_str());
      return 1;
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "%s: no corpus files\n", argv[0]);
    return 1;
  }
  for (const auto& s : seeds) Run(s);
  std::mt19937 rng(20261205);
  for (long i = 0; i < mutations; ++i) {
    std::vector<uint8_t> b = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 5) {
        case 0:
          if (!b.empty()) b[rng() % b.size()] ^= 1u << (rng() % 8);
          break;
        case 1:
          if (!b.empty()) b.resize(rng() % b.size());
          break;
        case 2:
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                   static_cast<uint8_t>(rng()));
          break;
        case 3: {  // splice: a piece of another input
          const auto& o = seeds[rng() % seeds.size()];
          if (o.empty()) break;
          const size_t from = rng() % o.size();
          const size_t n = 1 + rng() % (o.size() - from);
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                   o.begin() + static_cast<long>(from),
                   o.begin() + static_cast<long>(from + n));
          break;
        }
        default:
          if (!b.empty()) b[rng() % b.size()] = static_cast<uint8_t>(rng());
          break;
      }
    }
    Run(b);
  }
  std::printf("%s: %zu corpus inputs and %ld mutations handled\n", argv[0],
              seeds.size(), mutations);
  return 0;
}
