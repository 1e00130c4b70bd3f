"""Root of the repository-level tests; puts `tests/` on the import path for the shared helpers beside it."""
