"""Developer tooling that does not ship in the wheel (run from the repository root)."""
