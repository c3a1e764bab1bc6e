"""The dataset mirror on the web side: the suite page says which benchmarks can run (their data present in
FRONTIER_DATASETS_DIR, or missing with the prefetch command), and `manage.py datasets` is the CLI's twin."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from evaluation import datasets as mirror

pytestmark = pytest.mark.django_db


def fill(root, repo_id: str, revision: str = "f" * 40):
    folder = mirror.dataset_folder(repo_id, root)
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "test-00000.parquet").write_bytes(b"PAR1" + b"\0" * 2000 + b"PAR1")
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                      "  - split: test\n    path: data/test-*\n---\n")
    mirror.write_manifest(folder, repo_id, revision, "hub")
    return folder


@pytest.fixture
def datasets_dir(settings, tmp_path):
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    return settings.FRONTIER_DATASETS_DIR


def row(html: str, key: str) -> str:
    start = html.index(f'id="benchmark-{key}"')
    return html[start:html.index("</tr>", start)]


def test_the_suite_page_says_which_benchmarks_can_run(datasets_dir):
    fill(datasets_dir, "lmms-lab-encoder/POPE")
    html = Client().get("/suites/?suite=reasoning").content.decode()
    assert 'data-runnable="1" data-total="9"' in html
    pope = row(html, "pope")
    assert 'data-can-run="true"' in pope and "data present" in pope
    assert "f" * 40 in pope and "2.1 kB" in pope
    gqa = row(html, "gqa")
    assert 'data-can-run="false"' in gqa and "missing" in gqa
    assert "python -m evaluation datasets prefetch --task gqa" in gqa and "no folder" in gqa


def test_a_broken_folder_shows_as_missing_and_generated_suites_can_always_run(datasets_dir):
    folder = fill(datasets_dir, "lmms-lab-encoder/textvqa")
    (folder / "data" / "test-00000.parquet").unlink()
    html = Client().get("/suites/?suite=ocr").content.decode()
    assert 'data-runnable="0" data-total="2"' in html
    assert "no longer matches its manifest" in row(html, "textvqa")
    html = Client().get("/suites/?suite=synthetic").content.decode()
    assert 'data-runnable="2" data-total="2"' in html and "generated locally" in row(html, "shapes")
    assert Client().get("/suites/?suite=nonesuch").status_code == 404


def test_the_upload_page_links_to_the_suite_page(alice):
    client = Client()
    client.force_login(alice)
    assert 'href="/suites/"' in client.get("/upload/").content.decode()


def test_manage_py_datasets_is_the_clis_twin(datasets_dir, monkeypatch):
    fill(datasets_dir, "lmms-lab-encoder/MME", revision="abc")
    out = io.StringIO()
    call_command("datasets", "status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["root"] == str(datasets_dir)
    records = {record["key"]: record for record in status["benchmarks"]}
    assert records["mme"]["present"] and records["mme"]["revision"] == "abc" and not records["pope"]["present"]
    monkeypatch.delenv("FRONTIER_HF_OFFLINE_DEFAULTED", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("datasets", "prefetch", "--task", "pope", stdout=io.StringIO(), stderr=err)
    assert "no access to the Hugging Face hub" in err.getvalue()
    assert sorted(path.name for path in datasets_dir.iterdir()) == ["lmms-lab-encoder"]
    assert [path.name for path in (datasets_dir / "lmms-lab-encoder").iterdir()] == ["MME"]
