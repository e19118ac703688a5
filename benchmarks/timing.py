"""Wall-clock timing shared by the benchmark scripts (imported as `timing` when a
script in this folder runs, since its folder comes first on `sys.path`)."""

import time


def wall_times(fn, repeats, warmup=2):
    """Seconds of `repeats` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
