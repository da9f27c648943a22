// libtier.so is the tier_alloc archive, linked whole; this file gives the target a source.
