"""The demo (quick variant): GD's sharpness reaches about 2 / lr; NGD and sqrt(L)-GD at EoS."""

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("h5py")
pytest.importorskip("matplotlib")

from eosfast.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The demo's figures that the README shows (docs/figures/<name>.png).
README_FIGURES = {"gd_multi_lr", "ngd_indicators", "sqrt_indicators"}
# The examples' figures that the README shows besides them (written by examples/*.py).
EXAMPLE_FIGURES = {"central_flow_digits"}


def test_quick_demo_shows_the_edge_of_stability(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "final loss" in printed and "lambda_1*lr/2 = " in printed
    assert "1/S_t + 1/S_{t+1} = " in printed and "sqrt(L) sum / prediction = " in printed
    result = json.loads((out / "summary.json").read_text())
    runs = result["runs"]
    assert sorted(runs) == ["fit", "gd_lr0.3", "gd_lr0.5", "ngd", "sqrtgd"]
    for name in ("gd_lr0.3", "gd_lr0.5"):
        run = runs[name]
        assert run["status"] == "completed"
        assert run["eos_onset"] is not None, name
        # lambda_1 lr / 2 over the last quarter: at the edge of stability, about 1
        assert 0.85 < run["sharpness_ratio"] < 1.25, (name, run["sharpness_ratio"])
        assert name in printed
    ngd, sqrt = runs["ngd"], runs["sqrtgd"]
    assert ngd["status"] == "completed" and sqrt["status"] == "completed"
    assert 0.8 < ngd["inv_stableness_sum"] < 1.2
    assert 0.7 < sqrt["sqrt_loss_ratio"] < 1.5
    assert 0.7 < ngd["sqrt_loss_ratio"] < 1.5
    assert result["figures"]
    for path in result["figures"]:
        assert Path(path).stat().st_size > 1000, path
    assert (out / "figures" / "gd_multi_lr.png").stat().st_size > 1000
    assert (out / "ngd" / "figures" / "ngd_indicators.svg").stat().st_size > 1000
    assert (out / "sqrtgd" / "figures" / "sqrt_indicators.png").stat().st_size > 1000
    made = {Path(path).stem for path in result["figures"]}
    assert README_FIGURES <= made, made


def test_readme_shows_the_demo_figures():
    readme = ROOT / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md beside the tests (an installed wheel)")
    text = readme.read_text()
    commands = 'pip install ".[demo]" && eosfast demo\npip install ".[test]" && python -m pytest -q'
    assert text.split("```bash\n", 1)[1].startswith(commands + "\n```")
    images = re.findall(r"!\[[^\]]+\]\((docs/figures/[^)]+)\)", text)
    assert {Path(image).stem for image in images} == README_FIGURES | EXAMPLE_FIGURES
    assert text.index(images[0]) > text.index(commands)
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 150_000, image
