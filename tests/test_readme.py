"""The README's Python example runs, and prints what it says it prints."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no Python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "[0.00718787 0.00255327]"
    assert namespace["result"].loss.shape == (4096, 101)
    assert np.all(np.isfinite(namespace["result"].loss[~namespace["result"].diverged]))
    best, fastest = namespace["swept"].best("rate"), namespace["swept"].best()
    assert (round(best["lr"], 2), round(best["beta"], 2), round(best["rate"], 3)) == (0.65, 0.41, 0.640)
    assert (round(fastest["lr"], 2), round(fastest["beta"], 2), fastest["steps_to_tol"]) == (0.64, 0.43, 23)
    assert list(namespace["heavy_ball"].steps[[0, -1]]) == [1367063, 174]
    assert list(namespace["sgd"].steps[[0, -1]]) == [1533684, 7116]
    assert (namespace["heavy_ball"].critical_batch_size(), namespace["sgd"].critical_batch_size()) == (32768, 1024)
    assert abs(2 * namespace["exact"] - 0.5175247025) < 1e-10
    mc = namespace["mc"]
    assert abs(mc.mean[37] - namespace["exact"]) < 5 * mc.stderr[37]


def test_readme_commands_are_the_ones_ci_runs():
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = re.search(r'pip install "\.\[test,sweep,plot\]" && (pytest[^\n`]*)', readme).group(1).strip()
    assert test_command in ci
    assert "pip install . && python -m polyak" in readme
