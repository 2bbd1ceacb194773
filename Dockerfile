# Airflow image of the docker-compose stack: the official image plus this project's locked
# dependencies.
#
# requirements.lock pins every distribution, transitive ones included (`uv pip compile`, see
# requirements.txt), so pip installs exactly that set with --no-deps: no resolver run, nothing
# upgraded or downgraded behind the lock's back. The lock's apache-airflow pin and its Python
# version must match this base image (tests/test_docker_compose.py checks both). Providers that
# the image ships outside the lock (celery, postgres, redis, ... used by the compose stack) keep
# the image's own versions.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.lock /requirements.lock

# As the image's `airflow` user, as the official "extending the image" guide does.
RUN pip install --no-cache-dir --no-deps -r /requirements.lock \
 && python -c "import airflow.providers.sftp, airflow.providers.smtp, duckdb, pandas, pandera, pyarrow"
