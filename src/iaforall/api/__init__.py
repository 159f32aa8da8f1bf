"""HTTP surfaces: thin adapters from each API dialect to the core types."""
