"""Airflow glue shared by the DAG files: settings from Variables/Connections, callbacks.

Kept next to the DAGs (and out of the DAG processor's way via .airflowignore) because it is the
only code that knows about Airflow; the pipeline's logic lives in ``include``.
"""
