"""triad's test suites, a package so that they import each other by name: run them from the
source root as modules (python3 -m tests.conformance.conformance ...)."""
