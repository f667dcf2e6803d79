// Runs the fuzz entry without libFuzzer (g++ builds): every file of the seed corpus,
// then a fixed number of deterministic mutations of each (byte changes, cuts and
// splices from a seeded generator), so ctest exercises the parser under ASan/UBSan
// with whatever compiler builds the tests.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS_PER_SEED]\n", argv[0]);
    return 2;
  }
  int mutations = argc > 2 ? std::atoi(argv[2]) : 2000;
  std::vector<std::string> seeds;
  for (const auto& e : std::filesystem::directory_iterator(argv[1])) {
    std::ifstream in(e.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "no seeds in %s\n", argv[1]);
    return 2;
  }
  static const char* const tokens[] = {
      "\r\n", ":", " ", ";", "0\r\n\r\n", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n",
      "\t",   ",", "\""};
  std::mt19937 rng(20261126);
  auto run = [](const std::string& s) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  for (const auto& seed : seeds) {
    run(seed);
    for (int m = 0; m < mutations; ++m) {
      std::string s = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        std::size_t at = rng() % s.size();
        switch (rng() % 4) {
          case 0:
            s[at] = static_cast<char>(rng());
            break;
          case 1:
            s.erase(at, 1 + rng() % 8);
            break;
          case 2:
            s.insert(at, tokens[rng() % (sizeof tokens / sizeof *tokens)]);
            break;
          default:
            s.insert(at, seeds[rng() % seeds.size()].substr(0, 64));
            break;
        }
      }
      run(s);
    }
  }
  std::printf("%zu seeds, %d mutations each: no failure\n", seeds.size(), mutations);
  return 0;
}
