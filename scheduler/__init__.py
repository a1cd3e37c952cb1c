"""When things run: the pure scheduling policy and the daemon that drives it."""
