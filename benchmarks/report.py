"""Renders the Markdown page of one run from its JSON lines.

``python benchmarks/report.py`` re-renders the latest runs of ``benchmarks/results/``
(``cpu.jsonl`` into ``cpu.md``, ``gpu-<card>.jsonl`` into ``gpu-<card>.md``);
``python benchmarks/report.py FILE.jsonl ...`` renders each file into ``FILE.md`` beside it. A page
states the machine, versions, commit and every target as met or missed, and links its raw lines
and the hand-written reading of the figures in ``docs/guide/benchmarks.md`` instead of copying it.
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys

from store import HERE, RESULTS_DIR

#: The hand-written reading of the figures (what bounds each workload, noise, earlier runs).
GUIDE = os.path.join(os.path.dirname(HERE), "docs", "guide", "benchmarks.md")

#: Ratios to the fastest peer that ran.
TARGETS = {"W1": 20.0, "W2": 10.0, "W3": 5.0, "W5": 5.0}
#: Ratios to named peers (W4, the HMM issue: >= 10x hmmlearn, either implementation, and >= 3x
#: dynamax).
PEER_TARGETS = {"W4": {"hmmlearn_scaling": 10.0, "hmmlearn": 10.0, "dynamax": 3.0}}
MATMUL_FRACTION_TARGET = {"W2": 0.25}
MEMORY_TARGET = 1.5
COMPILE_TARGET_S = 5.0


def _f(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, (int, float)):
        a = abs(v)
        if a != 0 and (a >= 1e5 or a < 1e-2):
            return f"{v:.{digits}g}"
        return f"{v:.{max(0, digits - len(str(int(a))))}f}" if a >= 1 else f"{v:.{digits}f}"
    return str(v)


def _common_loglik(rec, m):
    vals = rec.get("per_dataset_loglik")
    if not vals:
        return rec.get("loglik")
    return sum(vals[:m]) / len(vals[:m])


def _fit_table(name, recs, matmul_gflops):
    ok = [r for r in recs if r["status"] == "ok"]
    peers = [r for r in ok if r["library"] != "emjax"]
    best_peer = max(peers, key=lambda r: r["restart_iters_per_s"], default=None)
    multi = any(r.get("per_dataset_loglik") for r in ok)
    m = min((len(r["per_dataset_loglik"]) for r in ok if r.get("per_dataset_loglik")), default=0)
    r0 = recs[0]
    size = (f"{r0['n']:,} sequences x {r0['n_steps']:,} steps" if r0.get("n_steps") else f"N={r0['n']:,}")
    lines = [f"### {name}: {r0.get('title', '')} ({size}, D={r0['d']}, K={r0['k']}, "
             f"{r0['covariance_type']} covariance, {r0['max_iter']} iterations"
             + (f", {r0.get('restarts', '?')} restarts" if r0.get('restarts', 1) != 1 else "")
             + (f", {r0.get('datasets')} datasets" if (r0.get('datasets') or 1) > 1 else "") + ")", ""]
    ll_head = f"mean loglik/sample (first {m} datasets)" if multi else "best loglik/sample"
    lines.append(f"| library | wall median (s) | CPU (s) | compile (s) | iterations | restarts x datasets "
                 f"| restart-iter/s | {ll_head} | vs best peer | notes |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in recs:
        if r["status"] != "ok":
            lines.append(f"| {r['library']} | failed | | | | | | | | {r.get('error', '')[:300]} |")
            continue
        ratio = r["restart_iters_per_s"] / best_peer["restart_iters_per_s"] if best_peer else None
        notes = [r.get("notes") or ""]
        if r.get("statuses"):
            notes.append(f"statuses: {r['statuses']}")
        if r["library"] == "emjax" and matmul_gflops:
            notes.append(f"{_f(r['gflops_per_s'])} GFLOP/s = {100 * r['gflops_per_s'] / matmul_gflops:.1f}% of matmul")
        if r.get("load_avg_before") is not None:
            notes.append(f"load {r['load_avg_before']:.1f}->{r['load_avg_after']:.1f}")
        scaled = "*" if r.get("scaled") else ""
        lines.append(
            f"| {r['library']} | {_f(r['wall_s'])}{scaled} | {_f(r['cpu_s'])}{scaled} | {_f(r['compile_s'])} "
            f"| {_f(r['n_iter'])} | {r['restarts']} x {r['datasets']} | {_f(r['restart_iters_per_s'], 4)} "
            f"| {_f(_common_loglik(r, m), 6)} | {_f(ratio) + 'x' if ratio is not None else 'n/a'} | {'; '.join(n for n in notes if n)} |")
    lines.append("")
    return lines, best_peer


def _memory_label(rec) -> str:
    """The library, and the data's layout when it is not NumPy's own allocation."""
    aligned = rec.get("data_layout") == "aligned"
    return rec["library"] + (" (64-byte-aligned data)" if aligned else "")


def _memory_table(recs):
    lines = ["| library | covariance | data (MiB) | baseline RSS (MiB) | peak RSS in fit (MiB) "
             "| peak / data | (peak - baseline) / data | fit wall (s) | notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    mb = 2 ** 20
    for r in recs:
        if r["status"] != "ok":
            lines.append(f"| {_memory_label(r)} | {r['covariance_type']} | | | | failed | | | {r.get('error', '')[:300]} |")
            continue
        lines.append(
            f"| {_memory_label(r)} | {r['covariance_type']} | {r['data_bytes'] / mb:.0f} | {r['baseline_rss'] / mb:.0f} "
            f"| {r['peak_rss'] / mb:.0f} | {r['peak_over_data']:.2f} | {r['peak_above_baseline_over_data']:.2f} "
            f"| {_f(r['fit_wall_s'])} | {r.get('statuses') or ''} |")
    lines.append("")
    return lines


def render(records, source: str | None = None, page_dir: str = RESULTS_DIR) -> str:
    """The Markdown page of one run's ``records``, to be written in ``page_dir``: ``source`` (the
    raw lines), the hand-written guide page and the latest GPU pages are linked relative to it."""
    heads = [r for r in records if r.get("kind") == "run"] or [{}]
    head = heads[0]
    end = next((r for r in reversed(records) if r.get("kind") == "end"), {})
    fits = [r for r in records if r.get("kind") == "fit"]
    mems = [r for r in records if r.get("kind") == "memory"]
    mm = head.get("matmul", {})
    mm_rate = mm.get("gflops")
    mach = head.get("machine", {})
    link = lambda p: os.path.relpath(os.path.abspath(p), os.path.abspath(page_dir))
    out = [f"# emjax benchmarks ({head.get('scale', '?')} scale)", "",
           f"Run started {head.get('started', '?')}, finished {end.get('finished', '?')}; "
           + ("generated by " if len(heads) == 1 else f"the lines of {len(heads)} runs, generated by ")
           + "; ".join(f"`{' '.join(['benchmarks/run.py'] + h.get('argv', []))}`" for h in heads)
           + (f"; raw lines in [{os.path.basename(source)}]({link(source)})" if source else "") + ".", "",
           f"What bounds each workload, how noisy the machine is and the earlier runs: "
           f"[docs/guide/benchmarks.md]({link(GUIDE)}) (hand-written, as of the commits it names).", ""]
    if mach.get("jax_backend") != "gpu":
        gpu_pages = sorted(glob.glob(os.path.join(RESULTS_DIR, "gpu-*.md")))
        out += ["GPU figures: " + ", ".join(f"[{os.path.basename(g)}]({link(g)})" for g in gpu_pages)
                + ("; " if gpu_pages else "") + "`benchmarks/gpu.sh` runs the scaled-up workloads on a "
                "CUDA machine.", ""]
    out += ["## Machine and versions", ""]
    for key in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache", "Hypervisor vendor",
                "MemTotal", "platform", "python", "jax_backend", "jax_devices", "gpu"):
        if key in mach:
            out.append(f"- {key}: {mach[key]}")
    git = head.get("git") or {}
    if git.get("commit"):
        out.append(f"- emjax commit {git['commit']}"
                   + (" WITH UNCOMMITTED CHANGES in emjax/" if git.get("emjax_dirty") else " (clean)"))
    if head.get("git_note"):
        out.append(f"- note: {head['git_note']}")
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in head.get("versions", {}).items()))
    load0, load1 = head.get("load_avg"), end.get("load_avg")
    if load0:
        out.append(f"- 1/5/15-minute load average at start {', '.join(f'{v:.1f}' for v in load0)}"
                   + (f", at end {', '.join(f'{v:.1f}' for v in load1)}" if load1 else ""))
    if mm_rate:
        out.append(f"- float32 matmul rate (jit `jnp.dot`, {mm['size']}x{mm['size']}, median of "
                   f"{mm['runs']}): **{mm_rate:.1f} GFLOP/s** (best run {mm['best_gflops']:.1f})")
    out += ["", "## Method", "",
            "- One process runs every library on the same float32 NumPy arrays (fixed seed, "
            "`benchmarks/workloads.py`); every fit uses tol=0 so all run the fixed iteration count "
            "(pomegranate: tol=-inf, since its loop stops on any decrease below tol).",
            "- wall = median of the timed runs after a warm-up; compile time (JAX `lower().compile()`) "
            "is measured apart and excluded from wall. CPU = user+system seconds of the process in "
            "the same runs (less sensitive than wall to other work on a shared machine).",
            "- restart-iter/s = restarts x datasets x iterations / wall. \"vs best peer\" = "
            "throughput / throughput of the fastest peer that ran (emjax excluded from \"peer\").",
            "- scikit-learn and pomegranate run with their default threads or with one thread "
            "(threadpoolctl; torch.set_num_threads), whichever was faster on a probe fit in this run "
            "(the notes say which): on a loaded 2-core machine multi-threaded BLAS on small "
            "matrices can be several times slower. JAX libraries use XLA's default CPU threading.",
            "- `*`: a host-looping peer timed a subset of restarts/datasets (see notes); its wall "
            "time is scaled linearly to the full count.",
            "- loglik: every library's final parameters are scored by one float64 NumPy function "
            "(mean log-likelihood per sample on the data); W1 = best restart (chosen by each "
            "library's own criterion), W5 = mean over datasets.",
            "- Inits: emjax k-means++ (on device, inside the timed program); scikit-learn "
            "`init_params='k-means++'` (inside `fit`, timed); pomegranate its default 'random' "
            "k-means init (inside `fit`, timed); gmmx random rows + data covariance (inside the "
            "timed vmapped program).",
            "- GFLOP/s counts the useful flops of one EM iteration: full covariance "
            "`4 N K D^2 + 6 N K D + 10 N K` (whitening (x-m_k)U_k and the second moments are 2NKD^2 "
            "each; differences, squares and weighted sums 6NKD; log-sum-exp and responsibilities "
            "~10 per row and component); diag `8 N K D + 10 N K`. M-step work is negligible.", ""]
    out += ["## Results", ""]
    summary = []
    for name in sorted({r["workload"] for r in fits}, key=lambda s: (int(s[1:].rstrip("R")), s)):
        recs = [r for r in fits if r["workload"] == name]
        lines, best_peer = _fit_table(name, recs, mm_rate)
        out += lines
        em = next((r for r in recs if r["library"] == "emjax" and r["status"] == "ok"), None)
        if em is not None:
            summary.append(_targets(name, em, best_peer, mm_rate, recs))
    if mems:
        r0 = mems[0]
        out += [f"### W6: memory (N={r0.get('n', 0):,}, D={r0.get('d')}, K={r0.get('k')}, 1 restart, "
                f"{r0.get('max_iter')} iterations; one fresh process per row)", "",
                "baseline = resident memory after importing the library and starting its runtime, "
                "before the data exist; peak = the kernel's high-water mark (VmHWM) during the fit, "
                "reset just before it, so it includes the data. Data come from NumPy's allocator "
                "(usually 16 bytes past a 64-byte boundary: JAX's CPU client then copies them) unless "
                "the row says 64-byte-aligned (JAX uses the host buffer in place).", ""]
        out += _memory_table(mems)
        em = [r for r in mems if r["library"] == "emjax"]
        for r in em:
            if r["status"] != "ok":
                summary.append(f"- W6 {r['covariance_type']}: emjax failed: {r.get('error')}")
                continue
            v = r["peak_above_baseline_over_data"]
            summary.append(f"- W6 {r['covariance_type']}{', aligned data' if r.get('data_layout') == 'aligned' else ''}: (peak - baseline) / data = {v:.2f} "
                           f"(target <= {MEMORY_TARGET}): {'met' if v <= MEMORY_TARGET else f'MISSED by {v / MEMORY_TARGET:.2f}x'}; "
                           f"peak / data including the runtime = {r['peak_over_data']:.2f}")
    if summary:
        out += ["## Targets", ""] + summary + [""]
    return "\n".join(out)


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else f"MISSED (needs {target / ratio:.1f}x more)"


def _targets(name, em, best_peer, mm_rate, recs) -> str:
    parts = []
    compile_s = em.get("compile_s")
    if best_peer is None:
        parts.append("no peer ran")
    elif name in PEER_TARGETS:
        ran = {r["library"]: r for r in recs if r["status"] == "ok"}
        for lib, target in PEER_TARGETS[name].items():
            if lib in ran:
                ratio = em["restart_iters_per_s"] / ran[lib]["restart_iters_per_s"]
                parts.append(f"{ratio:.2f}x {lib}, target >= {target}x: {_verdict(ratio, target)}")
    else:
        ratio = em["restart_iters_per_s"] / best_peer["restart_iters_per_s"]
        target = TARGETS.get(name)
        verdict = _verdict(ratio, target) if target else ""
        parts.append(f"{ratio:.2f}x the best peer ({best_peer['library']}), target >= {target}x: {verdict}")
    frac_target = MATMUL_FRACTION_TARGET.get(name)
    if frac_target and mm_rate:
        frac = em["gflops_per_s"] / mm_rate
        parts.append(f"{100 * frac:.1f}% of the matmul rate, target >= {100 * frac_target:.0f}%: "
                     + ("met" if frac >= frac_target else f"MISSED (needs {frac_target / frac:.1f}x more)"))
    if compile_s is not None:
        parts.append(f"compile {compile_s:.1f} s, target < {COMPILE_TARGET_S:.0f} s: "
                     + ("met" if compile_s < COMPILE_TARGET_S else f"MISSED by {compile_s - COMPILE_TARGET_S:.1f} s"))
    return f"- {name}: " + "; ".join(parts)


def read_records(path) -> list:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_page(path: str) -> str:
    """Render the run at ``path`` (``.jsonl``) into the ``.md`` beside it; returns the page's path."""
    page = path[:-len(".jsonl")] + ".md"
    with open(page, "w") as f:
        f.write(render(read_records(path), path, os.path.dirname(page)))
    return page


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # GPU pages first: a CPU page links the GPU pages that exist.
    paths = argv or (sorted(glob.glob(os.path.join(RESULTS_DIR, "gpu-*.jsonl")))
                     + glob.glob(os.path.join(RESULTS_DIR, "cpu.jsonl")))
    for path in paths:
        print(f"wrote {write_page(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
