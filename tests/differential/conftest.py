"""Scheduling of the full grid under pytest-xdist (``make verify`` runs ``-n 2 --dist loadgroup``):
the cells that share one 8-device subprocess (marked ``xdist_group``) run first, so that the
longest unit of work does not start last and leave the other worker idle."""


def pytest_collection_modifyitems(config, items):
    grouped = [item for item in items if item.get_closest_marker("xdist_group")]
    if grouped:
        rest = [item for item in items if not item.get_closest_marker("xdist_group")]
        items[:] = grouped + rest
