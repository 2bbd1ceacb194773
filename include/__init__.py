"""The pipeline's own package: plain Python, no Airflow imports, unit-tested on its own."""
