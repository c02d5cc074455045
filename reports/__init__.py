"""memloss reports."""
