#!/bin/sh
# Builds the engine's private copy of jemalloc from Debian's libjemalloc_pic.a:
# every global symbol it defines gets the prefix tierje_ (so it neither
# interposes malloc nor collides with a jemalloc the program brings), and the
# names of its run-time configuration sources are changed so a MALLOC_CONF or
# /etc/malloc.conf meant for the program's own jemalloc does not reach it.
# Usage: make_private_jemalloc.sh INPUT.a OUTPUT.a
set -eu
input=$1
output=$2
map=$output.syms
nm -g --defined-only "$input" |
  awk 'NF == 3 && $3 !~ /^DW\.ref\./ { print $3 " tierje_" $3 }' | sort -u >"$map"
objcopy --redefine-syms="$map" "$input" "$output.tmp"
# Same-length byte replacements: an archive has no checksums, and offsets stay put.
perl -0777 -pi -e 's/MALLOC_CONF/TIERJE_CONF/g; s{/etc/malloc\.conf}{/etc/tierje.conf}g' "$output.tmp"
mv "$output.tmp" "$output"
