"""The wheel ships the prompt templates (and examples, configs) and finds them when installed."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("instructerc-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_every_template_listed_in_the_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "prompts").iterdir():
        assert f"instructerc/_prompts/{template.name}" in names
    assert "instructerc/_examples/dialogues.jsonl" in names
    assert "instructerc/_configs/data/meld.yaml" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "instructerc = instructerc.cli:main" in entry_points


@pytest.mark.slow
def test_installed_wheel_renders_from_its_own_templates(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = "import instructerc.prompts as p; print(p.builtin_prompts_dir()); print(sorted(p.list_templates()))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd=tmp_path
    ).stdout.splitlines()
    assert out[0] == str(tmp_path / "instructerc" / "_prompts")
    assert "emotion" in out[1] and "impact" in out[1]
