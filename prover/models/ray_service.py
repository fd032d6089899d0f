"""The generator service on Ray: one model actor per GPU (or one on a CPU-only cluster) for N prover actors.

The actor is threaded (``max_concurrency``), so calls from several prover actors run at once in it and
meet in its ``Batcher``, exactly as connections do in the local service process. Ray is imported only
when these are used (``pip install 'prover[cluster]'``).
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from ..components import ConfigError
from .base import Candidate, Generator, GeneratorError, GeneratorUnavailable
from .service import ServiceConfig, ServiceStats, client_name, rss_bytes


class ModelActor:
    """Owns the model (wrapped by ``ray.remote`` in ``start_model_actors``)."""

    def __init__(self, config: ServiceConfig) -> None:
        from ..components import make_generator
        from .batching import Batcher

        start = time.monotonic()
        self.error: str | None = None
        self.batcher = None
        try:
            generator = make_generator("hf", config.backend, None, config.model)
            self.batcher = Batcher(generator, config.max_states, config.model.gather_seconds)
        except ConfigError as e:  # answered by ready(), so the driver reports it in one line
            self.error = str(e)
        except Exception as e:  # noqa: BLE001
            self.error = f"cannot load model {config.model.model!r}: {type(e).__name__}: {e}"
        self.info = {"pid": os.getpid(), "host": platform.node(), "model": config.model.model or "",
                     "load_seconds": time.monotonic() - start}

    def ready(self) -> str | None:
        return self.error

    def generate(self, client: str, goals: tuple[str, ...], n: int) -> list[list[Candidate]]:
        return self.batcher.submit(client, list(goals), n)

    def stats(self) -> ServiceStats:
        return ServiceStats(self.info["pid"], self.info["host"], self.info["model"], self.info["load_seconds"],
                            rss_bytes(), self.batcher.stats())


@dataclass(frozen=True)
class RayModelAddress:
    """A model actor's handle (Ray serialises it into the prover actors)."""

    handle: object
    model: str = ""

    def connect(self) -> "RayServiceClient":
        return RayServiceClient(self)


class RayServiceClient(Generator):
    concurrent = True

    def __init__(self, address: RayModelAddress) -> None:
        self.address = address
        self.name, self.model_id = "hf", address.model

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        import ray

        if not goals:
            return []
        try:
            return ray.get(self.address.handle.generate.remote(client_name(), tuple(goals), n))
        except ray.exceptions.RayActorError as e:
            raise GeneratorUnavailable(f"the model actor died: {str(e).splitlines()[0] if str(e) else e}") from None
        except ray.exceptions.RayTaskError as e:
            raise GeneratorError(str(e).strip().splitlines()[-1]) from None

    def stats(self) -> ServiceStats:
        import ray

        return ray.get(self.address.handle.stats.remote())


def start_model_actors(config: ServiceConfig, provers: int) -> list[RayModelAddress]:
    """One model actor per GPU of the cluster (one on CPU), each loaded before any prover starts;
    ``ConfigError`` when the model does not load."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = model_actor_count(gpus, provers)
    actor_cls = ray.remote(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0,
                           max_concurrency=provers + 4)(ModelActor)
    actors = [actor_cls.remote(config) for _ in range(count)]
    for actor in actors:
        try:
            error = ray.get(actor.ready.remote())
        except ray.exceptions.RayActorError as e:
            error = f"the model actor died while loading: {str(e).splitlines()[0] if str(e) else e}"
        if error is not None:
            for a in actors:
                ray.kill(a)
            raise ConfigError(error)
    return [RayModelAddress(a, config.model.model or "") for a in actors]


def model_actor_count(gpus: int, provers: int) -> int:
    """How many model actors ``start_model_actors`` starts (the local Ray needs a CPU for each on CPU)."""
    return max(1, min(gpus, provers)) if gpus else 1
