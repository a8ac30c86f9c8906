"""``polyak tour``: every figure as PNG and SVG, an index that captions and links each, a
summary with the textbook's numbers; without matplotlib, a message naming the extra."""

import contextlib
import io
import re
import sys

import pytest

import polyak
from polyak import cli


def tour(*argv):
    """(exit status, stdout) of ``polyak tour ARGV``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(["tour", *argv])
    return status, out.getvalue()


@pytest.fixture(scope="module")
def full_tour(tmp_path_factory):
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("tour") / "out"   # created by the tour
    status, printed = tour("--out", str(folder))
    return folder, status, printed


def names():
    from polyak._tour import figures

    return [entry.name for entry in figures()]


def test_the_tour_writes_every_figure_as_png_and_svg(full_tour):
    folder, status, _ = full_tour
    assert status == 0
    expected = names()
    assert len(expected) >= 10 and len(set(expected)) == len(expected)
    for name in expected:
        png, svg = (folder / f"{name}.png").read_bytes(), (folder / f"{name}.svg").read_text()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, name
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg, name
    written = {path.stem for path in folder.iterdir() if path.suffix in (".png", ".svg")}
    assert written == set(expected)


def test_the_index_captions_and_links_each_figure(full_tour):
    folder, _, _ = full_tour
    page = (folder / "index.html").read_text()
    figures = re.findall(r'<figure id="([^"]+)">(.*?)</figure>', page, flags=re.S)
    assert [name for name, _ in figures] == names()
    for name, body in figures:
        assert f'<img src="{name}.png"' in body and f'href="{name}.svg"' in body
        caption = re.search(r"<figcaption>(.*)</figcaption>", body, flags=re.S).group(1)
        assert "Formula:" in caption and "Reproduces:" in caption and len(caption) > 200
        assert f'href="#{name}"' in page          # the table of contents


def test_the_summary_prints_the_textbooks_numbers_and_where_files_went(full_tour):
    folder, _, printed = full_tour
    for line in cli.textbook_table():
        assert line in printed
    assert "θ₂ = -0.119 (d2l, PyTorch) against -0.200 (MXNet, Goodfellow)" in printed
    assert re.search(r"rate map, κ = 100: optimum lr 3\.3058, beta 0\.6694, rate 0\.8182", printed)
    critical = {name: int(b) for b, name in re.findall(r"NQM: critical batch size (\d+) for (SGD|heavy ball);", printed)}
    assert critical["heavy ball"] > critical["SGD"]    # the paper's finding
    assert f"{len(names())} figures (PNG and SVG) and index.html written to {folder}/" in printed


def test_only_draws_the_figures_named(tmp_path):
    pytest.importorskip("matplotlib")
    status, printed = tour("--out", str(tmp_path), "--only", "rates-vs-kappa,effective-weights")
    assert status == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "effective-weights.png", "effective-weights.svg", "index.html", "rates-vs-kappa.png", "rates-vs-kappa.svg"]
    assert re.findall(r'<figure id="([^"]+)">', (tmp_path / "index.html").read_text()) == [
        "effective-weights", "rates-vs-kappa"]
    assert "2 figures" in printed


def test_an_unknown_figure_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["tour", "--out", str(tmp_path), "--only", "rate-map,nonsense"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "no figure named nonsense" in error and "rate-map" in error


@pytest.fixture
def without_matplotlib(monkeypatch):
    """As if matplotlib were not installed: its import fails, and polyak's plotting modules
    are imported afresh."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in [name for name in sys.modules if name.startswith(("polyak.plot", "polyak._tour_figures"))]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("plot", "_tour_figures"):
        monkeypatch.delattr(polyak, name, raising=False)


def test_without_matplotlib_polyak_plot_names_the_extra(without_matplotlib):
    with pytest.raises(ImportError, match=re.escape("pip install 'polyak[plot]'")):
        import polyak.plot  # noqa: F401


def test_without_matplotlib_the_tour_names_the_extra_and_the_rest_works(without_matplotlib, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["tour", "--out", str(tmp_path / "tour")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "polyak tour draws with matplotlib" in error and "pip install 'polyak[plot]'" in error
    assert not (tmp_path / "tour").exists()
    assert cli.main([]) == 0                       # python -m polyak: the textbook's numbers
    assert "momentum, lr 0.6, beta 0.5" in capsys.readouterr().out
