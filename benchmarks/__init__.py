"""asv benchmark suites for memloss (one module per area); see docs/performance.md."""
