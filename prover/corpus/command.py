"""The `prover corpus` commands: argument parsing and the progress display around ``build``."""
from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..components import ConfigError


def add_corpus_parser(sub, parser_class, positive) -> None:
    c = sub.add_parser("corpus", help="trace Coq libraries into a proof corpus (training data)",
                       description="Proof corpora traced from real Coq files.")
    c_sub = c.add_subparsers(dest="corpus_command", required=True, parser_class=parser_class)
    b = c_sub.add_parser(
        "build", help="step files through coqtop and record every proof's tactics with their goals",
        description="Step each file through coqtop (with its library's -R mapping, or its _CoqProject) and write "
        "one JSON line per theorem and per tactic sentence of its proof (goals before, tactic as written) to "
        "DIR/<logical path>.jsonl.gz, then DIR/stats.json. Without --files: the installed libraries' training "
        "part (held-out files are never read). Resumable: run it again with the same selection to continue.")
    b.add_argument("--library", nargs="+", metavar="NAME",
                   help="installed libraries to trace (default: all; Coq is the standard library)")
    b.add_argument("--files", nargs="+", metavar="FILE", help="trace these .v files (any project)")
    b.add_argument("--out", required=True, metavar="DIR", help="corpus directory (created, or resumed)")
    b.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                   help="files traced at once, one coqtop each (default: number of cores)")
    b.add_argument("--sentence-timeout", type=positive(float), default=600.0,
                   help="seconds one sentence may take before its file is given up (default %(default)g)")
    b.add_argument("--memory-mb", type=positive(int), default=6144,
                   help="address-space cap of each coqtop in MiB (default %(default)s)")
    b.add_argument("--redo", nargs="+", metavar="FILE",
                   help="trace these files of the corpus again (logical paths, .v paths, or 'failed' for every "
                        "failed file); the rest is kept")
    b.add_argument("--quiet", action="store_true", help="a line per file instead of the progress bar")
    b.set_defaults(run=cmd_corpus_build)


def cmd_corpus_build(args: argparse.Namespace, console: Console) -> int:
    from .build import CorpusBuild, CorpusError
    from .sources import SourceError, file_source, library_sources
    from .trace import TraceOptions

    try:
        sources = []
        if args.library or not args.files:
            sources += library_sources(args.library, split="train")
        for f in args.files or ():
            sources.append(file_source(f))
    except SourceError as e:
        raise ConfigError(str(e)) from None
    if not sources:
        raise ConfigError("nothing to trace")
    held = [s.logical_path for s in sources if s.held_out and s.library]
    if held:
        console.print(f"[yellow]note:[/yellow] {len(held)} held-out library file(s) given with --files "
                      f"({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}): readers of the train split "
                      "leave them out", highlight=False, soft_wrap=True)
    options = TraceOptions(sentence_timeout=args.sentence_timeout, memory_mb=args.memory_mb)
    try:
        job = CorpusBuild(sources, args.out, options, args.library, args.redo)
    except CorpusError as e:
        raise ConfigError(str(e)) from None
    done = job.done
    total, finished = len(job.sources), len(job.sources) - len(job.todo)
    if finished:
        console.print(f"resuming {args.out}: {finished} of {total} files already traced", highlight=False,
                      soft_wrap=True)
    counts = {"theorems": sum(r.theorems for r in done), "steps": sum(r.steps for r in done),
              "failed": sum(r.status != "ok" for r in done)}
    columns = (TextColumn("[bold]corpus"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[theorems]} theorems · {task.fields[steps]} steps · "
                          "[red]{task.fields[failed]} failed[/] · {task.fields[last]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=args.quiet) as bar:
        task = bar.add_task("corpus", total=total, completed=finished, last="", **counts)

        def on_file(r) -> None:
            counts["theorems"] += r.theorems
            counts["steps"] += r.steps
            counts["failed"] += r.status != "ok"
            bar.update(task, advance=1, last=r.file, **counts)
            if args.quiet or r.status != "ok":
                status = "ok" if r.status == "ok" else f"[red]failed[/red] ({r.reason})"
                console.print(f"{r.file}: {status}, {r.theorems} theorems, {r.steps} steps, {r.seconds:.1f} s",
                              highlight=False, soft_wrap=True)

        stats = job.run(args.workers, on_file)
    f = stats["files"]
    Console().print(f"{f['ok']} files ok, {f['failed']} failed, {f['pending']} pending; {stats['theorems']} theorems, "
                    f"{stats['steps']} steps, {stats['skipped_theorems']} proofs skipped; "
                    f"{stats['size_bytes'] / 1e6:.1f} MB in {args.out} (stats: {args.out}/stats.json)",
                    highlight=False, soft_wrap=True)
    return 0
