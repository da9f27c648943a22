/* The C API through libtier.so from C: allocate on each tier, check the
 * bytes and the tier, free. Exit status 0 on success. */
#include <stdio.h>
#include <string.h>
#include <tier/tier.h>

int tier_engine_devdax_status(void); /* libtier/alloc/engine.h */

int main(void) {
  int count = tier_count();
  if (count < 1) return 1;
  /* A devdax tier that could not be mapped stays counted; its requests spill up. */
  int broken_rank = tier_engine_devdax_status() < 0 ? count - 1 : -1;
  for (int rank = 0; rank < count; ++rank) {
    char* block = tier_malloc(TIER_RANK(rank), 1000);
    if (block == NULL) return 2;
    if (tier_of(block) != (rank == broken_rank ? rank - 1 : rank)) return 5;
    memset(block, 0x5a, 1000);
    for (int i = 0; i < 1000; ++i)
      if (block[i] != 0x5a) return 3;
    tier_free(block);
  }
  tier_stats_t stats;
  if (tier_stats(0, &stats) != 0 || stats.reserved_bytes == 0) return 4;
  printf("libtier.so: %d tier(s), devdax %d, ok\n", count, tier_engine_devdax_status());
  return 0;
}
