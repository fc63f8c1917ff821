"""The benchmark (workloads/bench runs python3 -m workloads.runner.bench) and the registry of
models (models.toml, read through workloads.runner.registry)."""
