"""The memory check made before large allocations: a clear MemoryError instead of a killed process."""

import os

#: Allocations below this are not checked (reading the system's figures costs more than they do).
CHECK_ABOVE = 64 * 2**20


def available_memory():
    """Bytes the system can still give this process without swapping (Linux: MemAvailable),
    or its physical memory where that is not known; None where neither is."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def require_memory(nbytes, what, advice):
    """MemoryError when `what` would take `nbytes` (a float: no overflow) and the machine has
    less available; `advice` lists what the user can change (None entries are skipped)."""
    if nbytes < CHECK_ABOVE:
        return
    available = available_memory()
    if available is None or nbytes <= available:
        return
    options = "; ".join(option for option in advice if option)
    raise MemoryError(f"{what} would need about {_size(nbytes)} but this machine has {_size(available)} "
                      f"available; to fit, use {options}")


def _size(nbytes):
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"
