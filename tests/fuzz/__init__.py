"""Property-based fuzzing of the trust boundary (issue 7): tokens, reviews, mappings."""
