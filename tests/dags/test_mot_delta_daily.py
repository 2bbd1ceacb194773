"""mot_delta_daily end to end through Airflow (dag.test) with real SFTP and SMTP."""

from __future__ import annotations

import zipfile
from datetime import date

from include.mot.files import delta_file_name
from tests.dags.test_recalls_daily import at
from tools.mot_samples import mot_test, vehicle_record, write_delta_zip

DAY1, DAY2, DAY3 = date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)


def upload_delta(pipeline, tmp_path, day, records):
    path = write_delta_zip(tmp_path / delta_file_name(day), records, parts=2)
    pipeline.sftp.upload_mot_delta(path.name, path.read_bytes(), mtime=at(day, 5))


def test_delta_versions_a_vehicle_and_rejects_a_broken_file(pipeline, tmp_path):
    upload_delta(pipeline, tmp_path, DAY1, [vehicle_record("AB12CDE", "CREATED", [mot_test(1001)])])
    upload_delta(
        pipeline,
        tmp_path,
        DAY2,
        [vehicle_record("AB12CDE", "UPDATED", [mot_test(1001), mot_test(1002)], primary_colour="Red")],
    )
    broken = tmp_path / "broken" / delta_file_name(DAY3)
    broken.parent.mkdir()
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("part-001.json.gz", b"this is not gzip")
    pipeline.sftp.upload_mot_delta(broken.name, broken.read_bytes(), mtime=at(DAY3, 5))
    for day in (DAY1, DAY2, DAY3):
        pipeline.run_dag("mot_delta_daily", day)
    with pipeline.warehouse() as con:
        files = con.execute("SELECT business_date, status FROM mot_delta_files ORDER BY 1").fetchall()
        versions = con.execute(
            "SELECT valid_from, valid_to, primary_colour FROM vehicles WHERE registration = 'AB12CDE' ORDER BY 1"
        ).fetchall()
        tests = con.execute("SELECT mot_test_number FROM mot_tests ORDER BY 1").fetchall()
    assert files == [(DAY1, "APPLIED"), (DAY2, "APPLIED"), (DAY3, "REJECTED")]
    assert versions == [(DAY1, DAY2, "Beige"), (DAY2, None, "Red")]
    assert tests == [(1001,), (1002,)]
    mails = pipeline.smtp.messages()
    assert [m["To"] for m in mails] == ["data-ops@dvsa.example"]
    assert "REJECTED" in mails[0]["Subject"] and "part-001.json.gz" in mails[0].get_body(("plain",)).get_content()


def test_missing_delta_is_recorded(pipeline):
    pipeline.run_dag("mot_delta_daily", DAY1)
    with pipeline.warehouse() as con:
        assert con.execute("SELECT business_date, status FROM mot_delta_files").fetchall() == [(DAY1, "MISSING")]


def test_bulk_load_stages_parts_in_parallel_tasks_and_applies_once(pipeline, tmp_path):
    from include.mot.files import bulk_file_name
    from tools.mot_samples import synthetic_records

    path = write_delta_zip(tmp_path / bulk_file_name(DAY1), synthetic_records(30, seed=3), parts=3)
    pipeline.sftp.upload_as("pipeline", f"/mot/bulk/{path.name}", path.read_bytes(), at(DAY1, 3))
    run = pipeline.run_dag("mot_bulk_load", DAY1, conf={"file_name": path.name})
    staged = [ti for ti in run.get_task_instances() if ti.task_id == "stage_part"]
    assert len(staged) == 3 and {ti.state for ti in staged} == {"success"}
    with pipeline.warehouse() as con:
        assert con.execute("SELECT count(DISTINCT registration) FROM vehicles").fetchone()[0] == 30
        assert con.execute("SELECT kind, status FROM mot_delta_files").fetchall() == [("bulk", "APPLIED")]
