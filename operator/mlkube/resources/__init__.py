"""Pure builders: typed spec in, manifest dict out. No I/O, no clock, no environment."""
