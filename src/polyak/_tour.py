"""``polyak tour``: every figure of polyak.plot's tour as PNG and SVG, an index.html with a
caption for each, and a short text summary (see polyak._tour_figures for the figures)."""

import html
import importlib
import time
from pathlib import Path

DEFAULT_OUT = "polyak-tour"
#: PNG resolution (dots per inch): a 6.4-inch figure is 768 pixels wide.
DPI = 120


def add_command(commands):
    """The `tour` subcommand, on argparse's subparsers `commands`."""
    command = commands.add_parser(
        "tour", help="draw every figure (PNG + SVG) and an index.html (needs polyak[plot])",
        description="Reproduce the figures of the momentum chapter and of the theory (Dive into Deep Learning, "
                    "Goodfellow et al., Goh's 'Why Momentum Really Works', the noisy quadratic model) as PNG and "
                    "SVG files, with an index.html that captions each, and print a summary.")
    command.add_argument("--out", default=DEFAULT_OUT, help=f"the folder to write (default ./{DEFAULT_OUT})")
    command.add_argument("--only", type=lambda text: [name for name in text.split(",") if name],
                         help="draw only these figures (names, comma-separated)")
    command.set_defaults(func=_tour)


def _tour(args):
    print("\n".join(tour(args.out, only=args.only)))
    return 0


def figures():
    """The tour's figures (TourFigure records), in order; an ImportError naming the extra when
    matplotlib is missing."""
    try:  # (matplotlib only for the tour)
        _tour_figures = importlib.import_module("polyak._tour_figures")
    except ImportError as error:
        if "matplotlib" not in str(error):
            raise
        raise ImportError("polyak tour draws with matplotlib, which the optional extra installs: "
                          "pip install 'polyak[plot]'") from error
    return list(_tour_figures.FIGURES)


def tour(out=DEFAULT_OUT, only=None):
    """Draw the figures into the folder `out` (created), write its index.html; return the summary.

    Parameters
    ----------
    out : str or path
    only : list of str, optional
        The names of the figures to draw (an unknown name is a ValueError listing them).

    Returns
    -------
    list of str
        The summary: each figure's numbers, and where the files went.
    """
    chosen = figures()  # (first: without matplotlib, the error that names the extra)
    from matplotlib.figure import Figure  # noqa: PLC0415

    if only is not None:
        known = [entry.name for entry in chosen]
        unknown = [name for name in only if name not in known]
        if unknown:
            raise ValueError(f"no figure named {', '.join(unknown)}; the figures are {', '.join(known)}")
        chosen = [entry for entry in chosen if entry.name in only]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start, lines = time.perf_counter(), []
    for entry in chosen:
        fig = Figure(figsize=entry.size, layout="constrained")
        lines += entry.draw(fig)
        fig.suptitle(entry.title, fontsize="large", fontweight="bold")
        for suffix in ("png", "svg"):
            fig.savefig(out / f"{entry.name}.{suffix}", dpi=DPI, metadata=_metadata(suffix))
    (out / "index.html").write_text(index_html(chosen), encoding="utf-8")
    lines += ["", f"{len(chosen)} figures (PNG and SVG) and index.html written to {out}/ "
                  f"in {time.perf_counter() - start:.1f} s; open {out / 'index.html'}"]
    return lines


def _metadata(suffix):
    # no creation date in the files: the same tour writes the same SVG
    return {"svg": {"Date": None}, "png": {}}[suffix]


def _figure_html(name, title, shows, formula, source):
    escape = html.escape
    return (f'<figure id="{name}">\n'
            f'<a href="{name}.svg"><img src="{name}.png" alt="{escape(title)}"></a>\n'
            f"<figcaption><strong>{escape(title)}.</strong> {escape(shows)}<br>\n"
            f"<em>Formula:</em> {escape(formula)}<br>\n"
            f"<em>Reproduces:</em> {escape(source)} "
            f'(<a href="{name}.png">PNG</a>, <a href="{name}.svg">SVG</a>)</figcaption>\n'
            f"</figure>")


def index_html(entries):
    """The page: a table of contents, then every figure in a <figure> with its <figcaption>."""
    escape = html.escape
    contents = "\n".join(f'<li><a href="#{e.name}">{escape(e.title)}</a></li>' for e in entries)
    blocks = "\n".join(_figure_html(e.name, e.title, **e.caption) for e in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>polyak tour: the momentum method in figures</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
figure {{ margin: 2.5em 0; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
figcaption {{ margin-top: 0.5em; color: #333; }}
</style>
</head>
<body>
<h1>polyak tour: the momentum method in figures</h1>
<p>Every figure was computed by polyak (<code>polyak tour</code>) and drawn with <code>polyak.plot</code>;
click a figure for its SVG.</p>
<ol>
{contents}
</ol>
{blocks}
</body>
</html>
"""
