"""Build backends and generators from their names: the one place the CLI, the runner and the REPL
turn options into objects."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .backends.base import Backend
from .backends.coq.hammer import HammerConfig, hammer_status
from .models.base import Generator

BACKENDS = ("coq", "lean-repl", "leandojo", "isabelle")
GENERATORS = ("portfolio", "hf", "mix", "hammer", "knn", "combined")
MODEL_GENERATORS = ("hf", "mix")  # the ones with a language model behind them (served to runs and the REPL)
LEARNED_GENERATORS = ("knn", "combined")  # need a k-NN model (--knn-model, or the default models)
COMBINED_WEIGHTS = (("knn", 0.5), ("portfolio", 0.5))


def default_generator(backend: str) -> str:
    """The CPU default: for Coq `combined` (the k-NN model with the portfolio and its hammer step), the best
    measured in one harness (benchmarks/RESULTS.md); elsewhere the model-free portfolio (the k-NN model
    is learned from Coq proofs)."""
    return "combined" if backend == "coq" else "portfolio"


class ConfigError(ValueError):
    """A bad option or input: reported as one line, exit code 2."""


@dataclass(frozen=True)
class BackendOptions:
    check_timeout: float = 600.0
    memory_mb: int | None = None  # None: the backend's own default (Coq 6144, Lean 32768)
    coq_flags: tuple[str, ...] = ()  # load-path flags of coqtop and coqc for a statement (a file has its own)
    hammer: HammerConfig | None = None  # Coq's hammer step; None: its defaults


def cores_per_worker(workers: int) -> int:
    """The cores a run gives each of its workers (what hammer's ATP threads are fitted to)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def hammer_warning(backend: str, generator: str, options: BackendOptions) -> str | None:
    """One line to print before a run whose generator proposes hammer where it cannot run.

    Raises ConfigError when the generator is hammer alone: without hammer it can do nothing."""
    if backend != "coq" or generator not in ("portfolio", "mix", "hammer", "combined"):
        return None
    config = options.hammer or HammerConfig()
    status = hammer_status(config)
    if status.ok:
        return None
    if generator == "hammer":
        raise ConfigError(f"--generator hammer cannot run: {status.reason}")
    return None if not config.enabled else f"the hammer step is skipped: {status.reason}"


@dataclass(frozen=True)
class ModelOptions:
    """The language model behind ``--generator hf|mix``."""

    model: str | None = None  # a local directory or a Hugging Face Hub id
    device: str = "auto"
    decoding: str = "beam"  # beam | sample
    temperatures: tuple[float, ...] | None = None  # default: (0,) for beam, (1,) for sample
    max_new_tokens: int = 256
    batch_states: int = 4  # states per model call (rows = states x candidates): the memory-safe batch
    gather_seconds: float = 0.02  # a served model: how long a request waits for others to join its batch
    knn_model: str | None = None  # a k-NN model file for --generator knn or combined


def make_backend(name: str, options: BackendOptions | None = None) -> Backend:
    options = options or BackendOptions()
    if name == "coq":
        from .backends.coq.backend import CoqBackend, CoqConfig
        from .backends.process import ProcessLimits

        limits = ProcessLimits(memory_bytes=(options.memory_mb or 6144) * 1024 * 1024)
        return CoqBackend(CoqConfig(limits=limits, check_timeout=options.check_timeout, flags=options.coq_flags,
                                    hammer=options.hammer or HammerConfig()))
    if name == "isabelle":
        return _make_isabelle(options)
    if name in ("lean-repl", "leandojo"):
        return _make_lean_backend(name, options)
    raise ConfigError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")


def _make_lean_backend(name: str, options: BackendOptions) -> Backend:
    from .backends.lean.project import LeanNotInstalled
    from .backends.lean.repl import LeanReplBackend, LeanReplConfig
    from .backends.process import ProcessLimits

    repl = LeanReplConfig(check_timeout=options.check_timeout)
    if options.memory_mb:  # else the Lean default: room for Mathlib's mapped .olean files
        repl = replace(repl, limits=ProcessLimits(memory_bytes=options.memory_mb * 1024 * 1024))
    try:
        if name == "lean-repl":
            return LeanReplBackend(repl)
        from .backends.lean.dojo import LeanDojoBackend, LeanDojoConfig

        return LeanDojoBackend(LeanDojoConfig(check=repl))
    except LeanNotInstalled as e:
        raise ConfigError(str(e)) from e


def make_generator(name: str, backend: str, tactics_file: str | None = None,
                   model: ModelOptions | None = None, served: Generator | None = None) -> Generator:
    """The generator ``name``. For ``hf``/``mix``, ``served`` is the model as a client of a generator
    service (nothing is loaded here); without it the model is loaded into this process."""
    from .models.portfolio import PortfolioGenerator

    model = model or ModelOptions()
    if name in MODEL_GENERATORS:
        return _model_generator(name, backend, tactics_file, model, served)
    if model.knn_model is not None and name not in LEARNED_GENERATORS:
        raise ConfigError(f"--knn-model needs --generator {' or '.join(LEARNED_GENERATORS)} (not {name})")
    if name == "knn":
        if tactics_file is not None:
            raise ConfigError("--tactics goes with --generator portfolio, mix or combined")
        return _knn_generator(backend, model)
    if name == "combined":
        from .models.combined import CombinedGenerator

        knn = _knn_generator(backend, model)
        portfolio = make_generator("portfolio", backend, tactics_file)
        parts = {"knn": knn, "portfolio": portfolio}
        return CombinedGenerator([(parts[n], w) for n, w in COMBINED_WEIGHTS], name="combined")
    if model.model is not None:
        raise ConfigError(f"--model needs --generator hf or mix (not {name})")
    if name == "hammer":
        if backend != "coq":
            raise ConfigError("--generator hammer is CoqHammer's step: it needs --backend coq "
                              "(Isabelle's portfolio has its sledgehammer step)")
        if tactics_file is not None:
            raise ConfigError("--tactics goes with --generator portfolio or mix")
        from .models.coq_portfolio import HammerGenerator
        return HammerGenerator()
    if tactics_file is not None:
        try:
            return PortfolioGenerator.from_file(tactics_file)
        except OSError as e:
            raise ConfigError(f"cannot read tactics file {tactics_file}: {e.strerror}") from e
        except ValueError as e:
            raise ConfigError(str(e)) from e
    if name == "portfolio":
        if backend == "coq":
            from .models.coq_portfolio import CoqPortfolio
            return CoqPortfolio()
        try:
            return PortfolioGenerator.for_backend(backend)
        except ValueError as e:
            raise ConfigError(str(e)) from e
    raise ConfigError(f"unknown generator {name!r} (available: {', '.join(GENERATORS)})")


def check_generator(name: str, backend: str, tactics_file: str | None = None,
                    model: ModelOptions | None = None) -> None:
    """Refuse bad generator options at once (``ConfigError``) without loading a model."""
    model = model or ModelOptions()
    if name in MODEL_GENERATORS:
        _model_config(name, backend, tactics_file, model)
        if name == "mix":
            make_generator("portfolio", backend, tactics_file)
    else:
        make_generator(name, backend, tactics_file, model)


def _model_config(name: str, backend: str, tactics_file: str | None, options: ModelOptions):
    from .models.hf import HFConfig, resolve_device_name
    from .models.prompts import format_for

    if not options.model:
        raise ConfigError(f"--generator {name} needs --model PATH_OR_ID")
    if name == "hf" and tactics_file is not None:
        raise ConfigError("--tactics goes with --generator portfolio or mix")
    try:
        prompt = format_for(backend)
        temperatures = HFConfig.temperatures_for(options.decoding, options.temperatures)
        config = HFConfig(options.model, options.device, temperatures, options.max_new_tokens,
                          batch_states=options.batch_states)
        resolve_device_name(options.device)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return prompt, config


def _model_generator(name: str, backend: str, tactics_file: str | None, options: ModelOptions,
                     served: Generator | None) -> Generator:
    from .models.hf import HFGenerator, MixGenerator, ModelLoadError

    prompt, config = _model_config(name, backend, tactics_file, options)
    portfolio = make_generator("portfolio", backend, tactics_file) if name == "mix" else None
    if served is not None:
        model = served
    else:
        try:
            model = HFGenerator.load(config, prompt)
        except ModelLoadError as e:
            raise ConfigError(str(e)) from e
    return MixGenerator(model, portfolio) if portfolio is not None else model


def _knn_generator(backend: str, options: ModelOptions) -> Generator:
    from .learning.default import default_models
    from .learning.modelfile import ModelFileError
    from .models.knn import KnnGenerator

    if backend != "coq":
        raise ConfigError("the k-NN model is trained on Coq proofs: it needs --backend coq")
    if options.model is not None:
        raise ConfigError("--model does not go with --generator knn or combined")
    path = options.knn_model
    if path is None:
        path = default_models().knn
        if not path.is_file():
            raise ConfigError("the default k-NN model is not built: run `prover models build` (or give "
                              "--knn-model FILE from `prover train knn`)")
    try:
        return KnnGenerator.load(path)
    except ModelFileError as e:
        raise ConfigError(str(e)) from None


def make_scorer_for(config) -> "Scorer | None":
    """The node scorer a search config names when it needs a model (priority value), else None (the
    search applies its path rule itself). A fresh scorer per search: it keeps per-search state."""
    if config.priority != "value":
        return None
    from .learning.modelfile import ModelFileError
    from .learning.value import ValueModel
    from .search.scoring import ValueScorer

    try:
        return ValueScorer(ValueModel.load(config.value_model))
    except ModelFileError as e:
        raise ConfigError(str(e)) from None


def _make_isabelle(options: BackendOptions) -> Backend:
    """The Isabelle bridge; fails at once, in one line, when Isabelle or isabelle/ROOT is missing."""
    import shutil
    from pathlib import Path

    from .backends.isabelle.backend import INSTALL_HINT, MIN_MEMORY_MB, IsabelleBackend, IsabelleConfig
    from .backends.process import ProcessLimits

    config = IsabelleConfig(check_timeout=options.check_timeout,
                            limits=ProcessLimits(memory_bytes=max(options.memory_mb or 0, MIN_MEMORY_MB) * 1024 * 1024))
    if shutil.which(config.isabelle) is None:
        raise ConfigError(f"Isabelle is not installed (no `{config.isabelle}` on PATH): {INSTALL_HINT}")
    if not (Path(config.project_dir) / "ROOT").is_file():
        raise ConfigError(f"no Isabelle project at {config.project_dir} (expected its ROOT); "
                          "set PROVER_ISABELLE_DIR to the repository's isabelle/ directory")
    return IsabelleBackend(config)
