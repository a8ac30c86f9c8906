"""Compiled kernels (typed Cython + OpenMP). Private: use the functions of the polyak package."""
