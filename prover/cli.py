"""The `prover` command line."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import __version__
from .backends.base import Theorem
from .backends.coq_text import CoqSyntaxError, find_theorem, theorem_name
from .backends.lean_text import declaration_name
from .components import BACKENDS, GENERATORS, BackendOptions, ConfigError, make_backend, make_generator
from .search.best_first import PRIORITIES, SearchConfig, SearchResult, search

EXIT_PROVED, EXIT_NOT_PROVED, EXIT_BAD_INPUT = 0, 1, 2
LEAN_BACKENDS = ("lean-repl", "leandojo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise ConfigError(message)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value
    return parse


def add_search_options(p: argparse.ArgumentParser) -> None:
    d = SearchConfig()
    g = p.add_argument_group("search budget")
    g.add_argument("--max-expansions", type=_positive(int), default=d.max_expansions,
                   help=f"states expanded at most (default {d.max_expansions})")
    g.add_argument("--candidates", type=_positive(int), default=d.candidates,
                   help=f"tactics tried per expansion (default {d.candidates})")
    g.add_argument("--timeout", type=_positive(float), default=d.timeout,
                   help=f"wall-clock seconds per theorem (default {d.timeout:g})")
    g.add_argument("--tactic-timeout", type=_positive(float), default=d.tactic_timeout,
                   help=f"seconds per tactic (default {d.tactic_timeout:g})")
    g.add_argument("--check-timeout", type=_positive(float), default=BackendOptions().check_timeout,
                   help="seconds for the full re-check of a found proof (default %(default)g)")
    g.add_argument("--memory-mb", type=_positive(int), default=BackendOptions().memory_mb,
                   help="address-space cap of each prover process in MiB (default: Coq 6144, Lean 32768)")
    g.add_argument("--priority", choices=PRIORITIES, default=d.priority,
                   help="node priority: llemma = sum of -mean token log-probs on the path; "
                        "reprover = -cumulative log-prob (default %(default)s)")
    g.add_argument("--expand-batch", type=_positive(int), default=d.expand_batch,
                   help="open states sent to the generator at once (default %(default)s)")
    m = p.add_argument_group("generator")
    m.add_argument("--generator", choices=GENERATORS, default="portfolio",
                   help="tactic generator (default %(default)s: model-free ranked tactics)")
    m.add_argument("--tactics", metavar="FILE",
                   help="your own ranked tactic list, one per line (replaces the portfolio)")


def search_config(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(max_expansions=args.max_expansions, candidates=args.candidates,
                        timeout=args.timeout, tactic_timeout=args.tactic_timeout,
                        priority=args.priority, expand_batch=args.expand_batch)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prover", description="Best-first formal theorem proving with real proof "
                     "assistants and language models.")
    parser.add_argument("--version", action="version", version=f"prover {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("prove", help="search for a proof of one theorem",
                       description="Search for a proof of one theorem. Exit code: 0 proved, "
                       "1 not proved, 2 bad input.")
    p.add_argument("file", nargs="?", help="a .v file holding the theorem (its proof missing or Admitted.)")
    p.add_argument("--theorem", metavar="NAME", help="the theorem to prove in FILE")
    p.add_argument("--statement", help='the statement itself, e.g. "Theorem t : 1 + 1 = 2."')
    p.add_argument("--header", default="", help="imports and definitions before --statement")
    p.add_argument("--backend", choices=BACKENDS, default="coq", help="proof assistant (default %(default)s)")
    p.add_argument("--allow-axiom", action="append", default=[], metavar="NAME",
                   help="an axiom the statement itself relies on, accepted by the full check (repeatable)")
    add_search_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object with the result")
    out.add_argument("--write", action="store_true",
                     help="put the found proof into FILE in place of the missing one (backup FILE.bak)")
    out.add_argument("--graph", metavar="FILE", help="write the search graph as node-link JSON")
    out.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(run=cmd_prove)

    lean = sub.add_parser("lean", help="set up and trace lean_project/ (the Lean 4 backends' project)",
                          description="Lean 4 project commands. `make lean` runs setup, then builds the project.")
    lean_sub = lean.add_subparsers(dest="lean_command", required=True, parser_class=_Parser)
    ls = lean_sub.add_parser("setup", help="write the MiniF2F library (one file per theorem) into lean_project/")
    ls.add_argument("--project", help="the Lake project (default: lean_project/ of this checkout)")
    ls.add_argument("--data", help="directory holding lean4.jsonl (default: shared/data/minif2f)")
    ls.set_defaults(run=cmd_lean_setup)
    lt = lean_sub.add_parser("trace", help="commit the library into a git snapshot and trace it with LeanDojo "
                             "(needs Lean, lean-dojo 4.20.0 and internet; hours)")
    lt.add_argument("--project", help="the Lake project (default: lean_project/ of this checkout)")
    lt.set_defaults(run=cmd_lean_trace)
    return parser


def _lean_project(args: argparse.Namespace) -> Path:
    from .backends.lean_project import default_project_dir

    return Path(args.project).resolve() if args.project else default_project_dir()


def cmd_lean_setup(args: argparse.Namespace, console: Console) -> int:
    from .backends.lean_project import setup

    project = _lean_project(args)
    try:
        report = setup(project, args.data)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(str(e)) from None
    console.print(f"MiniF2F library in {report.project}: {len(report.files)} theorems "
                  f"({report.written} written, {report.unchanged} unchanged)", highlight=False, soft_wrap=True)
    return 0


def cmd_lean_trace(args: argparse.Namespace, console: Console) -> int:
    from .backends.lean_project import LeanNotInstalled
    from .backends.leandojo import trace

    try:
        trace(_lean_project(args), progress=lambda line: console.print(line, highlight=False, soft_wrap=True))
    except (LeanNotInstalled, FileNotFoundError) as e:
        raise ConfigError(str(e)) from None
    return 0


def _load_theorem(args: argparse.Namespace) -> tuple[Theorem, tuple[str, int, int] | None]:
    """The theorem to prove, and for FILE mode the source plus the span its proof occupies."""
    if args.file and args.statement:
        raise ConfigError("give either FILE --theorem NAME or --statement, not both")
    lean = args.backend in LEAN_BACKENDS
    if args.statement:
        if args.write:
            raise ConfigError("--write needs FILE")
        name = declaration_name(args.statement) if lean else theorem_name(args.statement)
        if name is None:
            raise ConfigError("--statement must start with " + ("theorem NAME" if lean else "Theorem/Lemma/... NAME"))
        return Theorem(name, args.statement.strip(), args.header, tuple(args.allow_axiom)), None
    if not args.file:
        raise ConfigError("nothing to prove: give FILE --theorem NAME or --statement")
    if lean:
        raise ConfigError("FILE mode reads Coq files; for Lean give --statement 'theorem NAME ... := by' "
                          "and --header 'import Mathlib ...'")
    if not args.theorem:
        raise ConfigError("FILE needs --theorem NAME")
    path = Path(args.file)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no such file: {args.file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {args.file}: {e}") from None
    try:
        found = find_theorem(source, args.theorem)
    except KeyError:
        raise ConfigError(f"theorem {args.theorem!r} not found in {args.file}") from None
    except CoqSyntaxError as e:
        raise ConfigError(f"cannot parse {args.file}: {e}") from None
    theorem = Theorem(found.name, found.statement, found.header, tuple(args.allow_axiom))
    return theorem, (source, found.statement_end, found.proof_end)


def _write_proof(path: str, span: tuple[str, int, int], proof: str) -> str:
    source, start, end = span
    backup = path + ".bak"
    shutil.copyfile(path, backup)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(source[:start] + "\n" + proof + source[end:])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return backup


def cmd_prove(args: argparse.Namespace, console: Console) -> int:
    theorem, span = _load_theorem(args)
    config = search_config(args)
    generator = make_generator(args.generator, args.backend, args.tactics)
    backend = make_backend(args.backend, BackendOptions(args.check_timeout, args.memory_mb))
    try:
        result = _run_search(theorem, backend, generator, config, console, quiet=args.quiet or args.json)
    finally:
        backend.close()
    if result.failure_reason == "init_error":
        raise ConfigError(result.failure_message)
    if args.graph:
        Path(args.graph).write_text(result.graph_json(), encoding="utf-8")
    backup = _write_proof(args.file, span, result.proof) if (args.write and result.proved) else None
    if args.json:
        out = {"theorem": theorem.name, "backend": args.backend, "generator": generator.name,
               "verified": result.proved, **result.to_dict()}
        print(json.dumps(out))
    else:
        _print_result(console, result, backup)
    return EXIT_PROVED if result.proved else EXIT_NOT_PROVED


def _run_search(theorem, backend, generator, config, console: Console, quiet: bool) -> SearchResult:
    if quiet:
        return search(theorem, backend, generator, config)
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"proving {theorem.name}", total=config.max_expansions, info="")
        def on_progress(p):
            bar.update(task, completed=p.expansions,
                       info=f"nodes {p.nodes} · tactics {p.tactic_calls} · depth {p.best_depth}")
        return search(theorem, backend, generator, config, on_progress=on_progress)


def _print_result(console: Console, r: SearchResult, backup: str | None) -> None:
    out = Console()
    stats = (f"{r.expansions} expansions, {r.tactic_calls} tactic calls, {r.elapsed:.2f} s "
             f"(full check {r.check_seconds:.2f} s)")
    if r.proved:
        axioms = f"; axioms: {', '.join(r.axioms)}" if r.axioms else ""
        out.print(Panel(r.proof, title=f"[green]proved {r.theorem}[/green]", expand=False))
        out.print(f"verified by a full re-check; {stats}{axioms}", highlight=False, soft_wrap=True)
        if backup:
            out.print(f"wrote the proof into the file (backup: {backup})", highlight=False)
    else:
        msg = f": {r.failure_message}" if r.failure_message else ""
        out.print(f"[red]not proved[/red] {r.theorem} ({r.failure_reason}{msg})", highlight=False)
        out.print(stats, highlight=False)


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds, so prover processes stop
    try:
        args = build_parser().parse_args(argv)
        return args.run(args, console)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
