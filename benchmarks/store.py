"""Where a run's JSON lines and page go: the latest complete runs in ``results/``, the rest dated.

``results/`` holds one complete run per kind of machine, under a fixed name: ``cpu.jsonl`` (every
workload and library at full scale on a CPU) and ``gpu-<card>.jsonl`` (every workload and library
at ``--scale gpu`` on a GPU, e.g. ``gpu-h200.jsonl``), each with its rendered page ``<name>.md``.
Every other run (a subset of workloads or libraries, ``--scale small``, ``alternating.py``) and
every run a newer complete one replaced lives in ``results/archive/`` under its dated name
``<UTC date-time>_<commit>_<machine>_<scope>.jsonl``. A run writes its lines to the archive as it
measures them, so an interrupted run never overwrites the latest one; :func:`publish` then moves
a complete run to its fixed name and the one it replaces back to the archive.
"""
from __future__ import annotations

import datetime
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
ARCHIVE = "archive"
ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W4R", "W5", "W6")


def machine_label(info: dict) -> str:
    """``cpu<cores>`` on a CPU, else the GPU's model in lower case (``h200`` for an NVIDIA H200)."""
    gpu = info.get("gpu", "").split(",")[0].split()
    return gpu[-1].lower() if info.get("jax_backend") == "gpu" and gpu else f"cpu{info.get('cpu_count')}"


def dated_name(header: dict, workloads, mode: str | None = None) -> str:
    """``<UTC date-time>_<commit>_<machine>_<scope>.jsonl``, e.g.
    ``2026-11-26-1116_300ff79_cpu2_full.jsonl``: ``+dirty`` after a commit with uncommitted
    changes in emjax/; the scope is ``mode`` or the scale, followed by the workloads when not all
    ran (``full-W2-W3``, ``alternating-W2``)."""
    git = header.get("git") or {}
    started = datetime.datetime.fromisoformat(header["started"])
    ran = [] if set(ALL_WORKLOADS) <= set(workloads) else [w for w in ALL_WORKLOADS if w in workloads]
    scope = "-".join([mode or header["scale"]] + ran)
    commit = (git.get("commit") or "unknown") + ("+dirty" if git.get("emjax_dirty") else "")
    return f"{started:%Y-%m-%d-%H%M}_{commit}_{machine_label(header.get('machine', {}))}_{scope}.jsonl"


def latest_name(header: dict, all_libraries) -> str | None:
    """``cpu`` or ``gpu-<card>`` when the run is complete for its machine (every workload and
    library, at full scale on a CPU or the gpu scale on a GPU), else None."""
    info = header.get("machine", {})
    on_gpu = info.get("jax_backend") == "gpu"
    complete = (set(ALL_WORKLOADS) <= set(header.get("workloads", ()))
                and set(all_libraries) <= set(header.get("libraries", ()))
                and header.get("scale") == ("gpu" if on_gpu else "full") and not header.get("mode"))
    if not complete:
        return None
    return f"gpu-{machine_label(info)}" if on_gpu else "cpu"


def raw_path(folder: str, header: dict) -> str:
    """Where a run writes its lines while it measures: ``<folder>/archive/<dated name>``."""
    os.makedirs(os.path.join(folder, ARCHIVE), exist_ok=True)
    return os.path.join(folder, ARCHIVE, header["archive_name"])


def run_header(path: str) -> dict:
    with open(path) as f:
        return next((r for r in map(json.loads, filter(str.strip, f)) if r.get("kind") == "run"), {})


def archive_name(header: dict, name: str) -> str:
    """The dated name of a run from its header (``unknown_<name>.jsonl`` if it has no date)."""
    if header.get("archive_name"):
        return header["archive_name"]
    try:
        return dated_name(header, header.get("workloads", ALL_WORKLOADS))
    except (KeyError, ValueError):
        return f"unknown_{name}.jsonl"


def publish(folder: str, path: str, name: str) -> str:
    """Move the run at ``path`` to ``<folder>/<name>.jsonl``; the run it replaces goes to the
    archive under the dated name its header gives, and its page ``<name>.md`` is removed (pages
    are rendered from the lines). Returns the new path."""
    latest = os.path.join(folder, f"{name}.jsonl")
    if os.path.exists(latest):
        os.replace(latest, os.path.join(folder, ARCHIVE, archive_name(run_header(latest), name)))
    page = os.path.join(folder, f"{name}.md")
    if os.path.exists(page):  # the old run's page; report.py renders the new one
        os.remove(page)
    os.replace(path, latest)
    return latest
