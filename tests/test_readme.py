"""The README's quick-start block runs as it stands, and its opening set-up commands stay put."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# The wheel tests (cibuildwheel) copy only tests/ and pyproject.toml.
pytestmark = pytest.mark.skipif(not README.is_file(), reason="no README.md beside the tests")


def quickstart() -> str:
    text = README.read_text()
    section = text.split("<!-- quickstart-start -->", 1)[1].split("<!-- quickstart-end -->", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the quick-start section holds exactly one python block"
    return blocks[0]


def test_readme_opens_with_the_two_setup_commands():
    first = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert first.splitlines() == [
        'pip install ".[demo]" && eosfast demo',
        'pip install ".[test]" && python -m pytest -q',
    ]


def test_quickstart_runs_verbatim(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart())
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # The block prints three lines (an editable install's rebuild check may print before them).
    lines = done.stdout.splitlines()[-3:]
    assert float(lines[0]) > 0  # the sharpness
    assert lines[2].split()[0] in ("completed", "converged")
    assert "eosfast.run" in done.stderr  # progress=True drew its bar on stderr
    assert (tmp_path / "quickstart.png").stat().st_size > 0
