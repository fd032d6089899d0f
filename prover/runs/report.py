"""Reports over results files: pass rates by split and source, times, failure reasons, reference numbers."""
from __future__ import annotations

import collections
import statistics

from rich.console import Console
from rich.table import Table

from .minif2f import SOURCES, problem_source
from .results import ResultsFile

# Published miniF2F-test numbers (Lean 4, 100 expansions x 32 candidates, 600 s) and the Rocq baseline.
LEAN_REFERENCE_RATES = {"Llemma 7B": 26.23, "Llemma 34B": 25.82, "Code Llama 7B": 20.49,
                        "Code Llama 34B": 22.13, "ReProver": 26.5}


def _rate(proved: int, total: int) -> str:
    return f"{proved}/{total} ({100.0 * proved / total:.1f}%)" if total else "-"


def reference_rows(backend: str, compat: dict | None, benchmark: str = "minif2f") -> list[tuple[str, str, str]]:
    """(name, split, rate) rows to show beside results of ``backend`` on ``benchmark``."""
    if benchmark == "coqlib":
        from .coqlib import ANCHORS
        return [(name, "published", rate) for name, rate in ANCHORS]
    if backend in ("lean-repl", "leandojo"):
        return [(name, "test", f"{rate:.2f}%") for name, rate in LEAN_REFERENCE_RATES.items()]
    if backend == "coq" and compat:
        base = compat.get("model_free_baseline", {})
        return [("model-free baseline (rocq_compat.json)", split, str(base[split]))
                for split in ("valid", "test") if split in base]
    return []


def report(files: list[ResultsFile], console: Console, compat: dict | None = None) -> None:
    for rf in files:
        results = rf.results
        backend = (rf.config or {}).get("backend") or (results[0]["backend"] if results else "?")
        title = f"{rf.path} — {backend}, generator {(rf.config or {}).get('generator', '?')}"
        table = Table(title=title)
        for col in ("group", "proved / total", "median s (all)", "median s (proved)"):
            table.add_column(col, justify="right" if col != "group" else "left")
        groups: dict[str, list[dict]] = collections.defaultdict(list)
        for r in results:
            groups[f"split {r.get('split', '?')}"].append(r)
        for r in results:  # miniF2F: by competition; coqlib: by library
            groups[f"  {r.get('category') or problem_source(r['name'])}"].append(r)
        categories = sorted(g for g in groups if not g.startswith("split"))
        known = [f"  {s}" for s in SOURCES if f"  {s}" in groups]
        order = [g for g in groups if g.startswith("split")] + known + \
            [g for g in categories if g not in known and g != "  other"] + (["  other"] if "  other" in groups else [])
        for g in order:
            rs = groups[g]
            proved = [r for r in rs if r.get("proved") and r.get("verified")]
            med_all = statistics.median(r["elapsed"] for r in rs) if rs else 0
            med_ok = f"{statistics.median(r['elapsed'] for r in proved):.1f}" if proved else "-"
            table.add_row(g, _rate(len(proved), len(rs)), f"{med_all:.1f}", med_ok)
        total = [r for r in results if r.get("proved") and r.get("verified")]
        table.add_row("[bold]all[/bold]", _rate(len(total), len(results)), "", "")
        console.print(table)
        reasons = collections.Counter(r.get("failure_reason") for r in results if not r.get("proved"))
        if reasons:
            console.print("failure reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()),
                          highlight=False)
        refs = reference_rows(backend, compat, (rf.config or {}).get("benchmark", "minif2f"))
        if refs:
            ref = Table(title="published anchors (the whole standard library or another system's library: "
                              "not the same theorems)" if (rf.config or {}).get("benchmark") == "coqlib"
                        else "reference numbers (same benchmark, published or measured)")
            for col in ("system", "split", "pass rate"):
                ref.add_column(col)
            for row in refs:
                ref.add_row(*row)
            console.print(ref)


def plot(files: list[ResultsFile], out: str) -> None:
    """Cumulative proved vs wall time, one curve per results file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rf in files:
        times = sorted(r["elapsed"] for r in rf.results if r.get("proved") and r.get("verified"))
        xs = [0.0] + times
        ax.step(xs, list(range(len(xs))), where="post", label=f"{rf.path.name} ({len(times)}/{len(rf.results)})")
    ax.set_xlabel("wall time per theorem (s)")
    ax.set_ylabel("theorems proved (cumulative)")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
