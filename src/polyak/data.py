"""Data sets shipped with polyak."""

from importlib import resources

import numpy as np

__all__ = ["airfoil", "AIRFOIL_ATTRIBUTION"]

AIRFOIL_ATTRIBUTION = (
    "Brooks, T., Pope, D. & Marcolini, M. (1989). Airfoil Self-Noise [Dataset]. UCI Machine "
    "Learning Repository. https://doi.org/10.24432/C5VW2C — CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/); unchanged values, header and CRLF removed."
)


def airfoil():
    """(X, y): the UCI Airfoil Self-Noise data prepared exactly as the textbook prepares it.

    All 1503 rows are standardized column by column in float32, (data − mean) / std with the
    population standard deviation (NumPy's default), then the first 1500 rows are kept; X is
    the first five columns (frequency, angle of attack, chord length, free-stream velocity,
    suction-side displacement thickness), y the last (scaled sound pressure level). Shapes
    (1500, 5) and (1500,), float32. Attribution: AIRFOIL_ATTRIBUTION (CC BY 4.0).
    """
    with resources.files("polyak").joinpath("_data/airfoil_self_noise.dat").open("rb") as handle:
        data = np.loadtxt(handle, dtype=np.float32, delimiter="\t")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    return np.ascontiguousarray(data[:1500, :-1]), np.ascontiguousarray(data[:1500, -1])
