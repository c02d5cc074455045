"""The shared core every layer may use: the registry, atomic writes, validators, the named
random streams of a run and the run-directory file format. It imports no other part of
memloss and builds no model."""
