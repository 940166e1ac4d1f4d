"""Result arrays as .npy downloads, from jobs run by the live system: the API, who may fetch them, the
size cap, and `submit-job result`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from gpu_tasks.arrays import host_matrices
from gpu_tasks.fft import signal
from tests.conftest import running_system
from tests.test_e2e import run_cli, wait_final

pytestmark = [pytest.mark.sqlite, pytest.mark.slow]
CAP = 64 * 1024  # RESULT_MAX_BYTES here: a 64 x 64 float64 product (32 KiB) is saved, a 128 x 128 one is not


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def system(django_db_setup, django_db_blocker, redis_url, results_dir):
    with running_system(redis_url, hosts=("hostR",), RESULTS_DIR=str(results_dir), RESULT_MAX_BYTES=str(CAP)) as s:
        yield s


def run_job(system, cast, kind: str, **params) -> dict:
    http = system.session(cast.token(cast.alice))
    response = http.post(f"{system.url}/api/jobs/", json={"kind": kind, "params": params})
    assert response.status_code == 201, response.text
    job = wait_final(http, system.url, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def download(system, cast, user, job: dict):
    return system.session(cast.token(user)).get(f"{system.url}/api/jobs/{job['id']}/result.npy")


def test_a_matmul_product_downloads_equal_to_a_float64_reference(system, live_cast):
    job = run_job(system, live_cast, "matmul", n=64, dtype="float32", seed=7)
    assert job["result_url"] == f"/api/jobs/{job['id']}/result.npy"
    response = system.session(live_cast.token(live_cast.alice)).get(f"{system.url}{job['result_url']}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert f'filename="job-{job["id"]}.npy"' in response.headers["Content-Disposition"]
    product = np.load(io.BytesIO(response.content))
    a, b = (m.astype(np.float64) for m in host_matrices(64, "float32", 7))
    assert product.shape == (64, 64) and product.dtype == np.float32
    np.testing.assert_allclose(product, a @ b, rtol=1e-5)
    assert job["result"]["npy"] == {"saved": True, "bytes": 64 * 64 * 4, "shape": [64, 64], "dtype": "float32"}


def test_an_fft_spectrum_downloads_as_complex_values(system, live_cast):
    job = run_job(system, live_cast, "fft", n=512, dims=1, dtype="float32", seed=3)
    spectrum = np.load(io.BytesIO(download(system, live_cast, live_cast.alice, job).content))
    reference = np.fft.rfft(signal(np, 512, 1, "float32", 3).astype(np.float64))
    assert spectrum.dtype == np.complex64 and spectrum.shape == (257,)
    np.testing.assert_allclose(spectrum, reference, atol=1e-3)


def test_another_user_gets_404_and_staff_get_the_file(system, live_cast):
    job = run_job(system, live_cast, "stencil", n=32, steps=5, dtype="float64", seed=1)
    other = download(system, live_cast, live_cast.bob, job)
    assert other.status_code == 404 and b"NUMPY" not in other.content
    assert download(system, live_cast, live_cast.staff, job).status_code == 200


def test_a_job_without_an_array_has_no_url_and_its_download_says_why(system, live_cast):
    job = run_job(system, live_cast, "stats", size=1000, seed=2)
    assert job["result_url"] is None and "npy" not in job["result"]
    response = download(system, live_cast, live_cast.alice, job)
    assert response.status_code == 404
    assert response.json()["detail"] == f"job {job['id']} has no result array: the stats kind returns only a summary"


def test_an_array_over_the_cap_is_not_saved_and_the_result_says_why(system, live_cast, results_dir):
    job = run_job(system, live_cast, "matmul", n=128, dtype="float64", seed=1)
    assert job["result_url"] is None
    npy = job["result"]["npy"]
    assert npy["saved"] is False and npy["bytes"] == 128 * 128 * 8 > CAP
    assert npy["reason"] == "the array is 131,072 bytes, over RESULT_MAX_BYTES (65,536 bytes)"
    assert not (results_dir / f"{job['id']}.npy").exists()
    response = download(system, live_cast, live_cast.alice, job)
    assert response.status_code == 404 and "over RESULT_MAX_BYTES" in response.json()["detail"]


def test_a_result_file_gone_from_disk_is_404_with_a_message(system, live_cast, results_dir):
    job = run_job(system, live_cast, "nbody", bodies=8, steps=2, dtype="float64", seed=4)
    assert np.load(results_dir / f"{job['id']}.npy").shape == (2, 8, 3)  # positions, then velocities
    (results_dir / f"{job['id']}.npy").unlink()
    response = download(system, live_cast, live_cast.alice, job)
    assert response.status_code == 404 and "result file is missing" in response.json()["detail"]


def test_the_cli_fetches_a_result_and_says_why_when_there_is_none(system, live_cast, tmp_path):
    token = live_cast.token(live_cast.alice)
    job = run_job(system, live_cast, "matmul", n=32, dtype="float64", seed=9)
    out = run_cli(system, token, "result", str(job["id"]), "-o", str(tmp_path / "c.npy"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"id": job["id"], "path": str(tmp_path / "c.npy"), "bytes": 32 * 32 * 8 + 128}
    a, b = host_matrices(32, "float64", 9)
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), a @ b, rtol=1e-12)

    summary_only = run_job(system, live_cast, "stats", size=10, seed=1)
    out = run_cli(system, token, "result", str(summary_only["id"]), "-o", str(tmp_path / "s.npy"))
    assert out.returncode == 2 and "returns only a summary" in out.stderr
    assert not (tmp_path / "s.npy").exists()
    out = run_cli(system, live_cast.token(live_cast.bob), "result", str(job["id"]), "-o", str(tmp_path / "b.npy"))
    assert out.returncode == 2 and "not found" in out.stderr
    assert run_cli(system, token, "result").returncode == 2
