"""memloss diagnostics."""
