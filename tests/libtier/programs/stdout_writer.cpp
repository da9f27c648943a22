// Writes LINES numbered lines to stdout through stdio and returns from main
// without flushing: the bytes reach the pipe only through exit's flush. Before
// writing it allocates and frees 64 MiB, so that under a ratio policy the
// stdio buffer (allocated at the first printf) is likely on the far tier.
// libmemtier unmaps its tiers at exit before that flush: the output is lost.
//
//   stdout_writer LINES      (waits for EOF on stdin first)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  char buffer[256];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  std::vector<void*> blocks;
  for (int i = 0; i < 16384; ++i) {
    void* block = std::malloc(4096);
    if (block == nullptr) return 3;
    std::memset(block, i, 4096);
    blocks.push_back(block);
  }
  for (size_t i = 0; i < blocks.size(); i += 2)
    std::free(blocks[i]);
  long lines = std::atol(argv[1]);
  for (long i = 0; i < lines; ++i)
    std::printf("line %ld of the stdout test\n", i);
  return 0;
}
