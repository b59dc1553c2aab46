"""Face engine tests: real models on real data."""
