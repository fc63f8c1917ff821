"""The workshop: exercises for the three models, each with a check (workloads/workshop/README.md)."""
