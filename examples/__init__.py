"""Examples of a user's own models and data for runner (importable from the repository root)."""
