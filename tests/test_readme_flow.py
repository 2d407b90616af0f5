"""The README's manifold-flow snippet runs as written (self-contained, well under a minute)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _flow_snippet() -> str:
    text = README.read_text()
    section = text.split("## The manifold flows of Arora, Li & Panigrahi", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_flow_snippet_runs_verbatim(capsys):
    snippet = _flow_snippet()
    assert "problem =" in snippet and "x0 =" in snippet
    namespace: dict = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    pred = namespace["pred"]
    assert pred.flow.status in ("completed", "eigengap_closed")
    assert pred.comparison.steps.size > 1
    assert "|Phi(x)-X|" in capsys.readouterr().out
