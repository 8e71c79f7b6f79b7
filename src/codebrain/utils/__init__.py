"""Small shared utilities (validation, atomic file writes)."""
