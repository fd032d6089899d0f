"""A run's model, served: one generator service process for every local worker.

Workers then hold a light client instead of a copy of the model, and their concurrent requests are
batched. Ray runs start a model actor per GPU instead (``RayPool``); generators without a model (the
portfolio) stay in the workers.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from ..components import MODEL_GENERATORS
from .runner import RunSpec


@contextmanager
def served_model(spec: RunSpec, ray: bool) -> Iterator[RunSpec]:
    """``spec`` with the address of a generator service started for it (stopped on exit); ``spec`` as
    it is when there is no model, on Ray, or when it already names a service."""
    if spec.generator not in MODEL_GENERATORS or ray or spec.service is not None:
        yield spec
        return
    from ..models.service import GeneratorService, ServiceConfig

    with GeneratorService(ServiceConfig(spec.backend, spec.model)) as service:
        yield replace(spec, service=service.address)
