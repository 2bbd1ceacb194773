"""Developer tooling for the local demo and the tests (never imported by DAGs)."""
