"""A model read from Paddle inference files, raised to `pd` and ready to run.

Two formats, told apart by content (serialization/pir_json.detect_model_format), never by
the file's name: the legacy ProgramDesc (`.pdmodel`, raised by the `load` pipeline) and Paddle
3.x's PIR program (`.json`, raised by passes/raise_from_pir.py, then `dead-op-elimination`).
Both use the same `.pdiparams`: the persistable variables sorted by name.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import zlib
from typing import Any, Callable, Iterator

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from tostatic.dialects.program import ProgramOp
from tostatic.passes.base import CompileState, entry
from tostatic.ir.errors import ExecutionError, ProgramError, ToStaticError
from tostatic.ir.opdef import Abstract
from tostatic.ops.core import Persistable
from tostatic.passes.lowering import input_names, output_names
from tostatic.passes.manager import PassFailure, PassManager
from tostatic.codegen import prepared
from tostatic.runtime import plan_cache, threads
from tostatic.runtime.feeds import check_feeds
from tostatic.runtime.model_files import (  # noqa: F401  (where they were)
    MODEL_SUFFIXES, model_paths, params_beside)
from tostatic.runtime.plan import ExecutionPlan
from tostatic.serialization import FormatError
from tostatic.serialization.pdiparams import load_combine
from tostatic.serialization.pir_json import detect_model_format, read_pir
from tostatic.serialization.artifact import check_file, prefix_manifest, record_crcs
from tostatic.serialization.program_desc import parse_program_bytes


class LoadedModel:
    """What a model file holds, raised and planned. `program` is the legacy ProgramDesc (for
    a PIR model, lowered from `module` when first asked for); `info` the .pdiparams.info
    entries the format implies (a PIR file keeps its parameters' flags itself)."""

    def __init__(self, program: ProgramOp | None, feed_names: list[str],
                 fetch_names: list[str], weights: dict[str, np.ndarray], plan: ExecutionPlan,
                 module: ModuleOp, source_format: str = "program-desc",
                 info: dict[str, dict[str, Any]] | None = None,
                 program_bytes: tuple[bytes, str] | None = None):
        self._program = program
        # (the .pdmodel's bytes, its path): `program` parsed again when first asked for, so
        # a load need not copy the program it raises (a predictor never asks)
        self._program_bytes = program_bytes
        self.feed_names = feed_names
        self.fetch_names = fetch_names
        self.weights = weights
        self.plan = plan
        self.module = module  # the raised `pd` function the plan runs (jit.save writes it)
        self.source_format = source_format
        self.info = info or {}
        # what the model's files hold (runtime/plan_cache.py keys on it), None: no plan cache
        self.content_key: str | None = None
        self.plan_store: plan_cache.PlanStore | None = None  # the last binding's
        self._bound_before = False
        # where the first binding records the bound plan for a warm start (a predictor's
        # model: runtime/warm_start.py), None: not recorded
        self.warm_record: Any = None

    @property
    def program(self) -> ProgramOp:
        if self._program is None and self._program_bytes is not None:
            self._program = parse_program_bytes(*self._program_bytes)
        elif self._program is None:
            self._program = lowered_program(self.module)
        return self._program

    source = "<model>"  # the model file, for errors

    def run(self, feeds: list[Any]) -> list[np.ndarray]:
        """Outputs for `feeds` (in feed order), checked and converted (runtime/feeds.py).
        Safe to call from several threads at once: a run keeps its values to itself."""
        if type(feeds) in (list, tuple):
            try:
                outs = self.plan.run_hot(feeds)  # feeds exactly like the last run's arrays
            except (ToStaticError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - a kernel refusing what the model computes
                raise self._failed(e) from e
            if outs is not None:
                return outs
        arrays = check_feeds(self.feed_names, self.plan.input_abstracts, list(feeds))
        try:
            with self._binding(arrays) as done:
                outs = self.plan.run(arrays)
                done()
            return outs
        except (ToStaticError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001
            raise self._failed(e) from e

    @contextlib.contextmanager
    def _binding(self, arrays: list[np.ndarray]) -> Iterator[Callable[[], None]]:
        """Around a run that binds the plan to new input shapes: the plan cache answers
        what its kernels prepare, and learns what they computed once the run succeeded
        (the caller calls the function it is given)."""
        signature = tuple((a.shape, a.dtype.char) for a in arrays)
        if (self.content_key is None or not self.plan.specialize
                or signature in self.plan.bound or not plan_cache.enabled()):
            yield lambda: None
            return
        key = self.content_key
        store = plan_cache.PlanStore(key, lambda: plan_cache.store_key(key, signature))
        self.plan_store = store  # (tests and benchmarks read its hits and misses)
        # only a model's first binding writes: what the cache is for is a process's start,
        # and a service meeting new shapes later pays no file writes for them
        first, self._bound_before = not self._bound_before, True

        def done() -> None:
            if first:
                store.save()
                if self.warm_record is not None:
                    self._record_warm(signature, store)
            store.used()
        with prepared.active(store):
            yield done

    def _record_warm(self, signature: Any, store: plan_cache.PlanStore) -> None:
        """The warm start's record of the plan just bound (nothing when it cannot be
        written: a read-only cache, a plan it cannot hold)."""
        from tostatic.runtime.warm_start import write_record

        with contextlib.suppress(Exception):
            write_record(self.warm_record, self, signature, store)

    def _failed(self, e: Exception) -> ExecutionError:
        return ExecutionError(f"running {self.source}: {type(e).__name__}: {e}")


def lowered_program(module: ModuleOp) -> ProgramOp:
    """The legacy program of a raised `pd` module (lower-to-program on a copy)."""
    lowered = module.clone()
    PassManager("lower-to-program", verify="end").run(lowered, CompileState(),
                                                      first_stage="loaded")
    return next(op for op in lowered.body.block.ops if isinstance(op, ProgramOp))


def read_pir_program(model_file: str) -> ProgramOp:
    """A PIR .json program as the legacy program it converts to (no weights read). It has no
    version: a PIR file records its format's version, not the Paddle that wrote it."""
    raised = _raise_pir_file(model_file)
    PassManager("dead-op-elimination", verify="end").run(raised.module, CompileState(),
                                                          first_stage="raised-from-pir")
    program = lowered_program(raised.module)
    program.properties.pop("version", None)
    return program


def _raise_pir_file(model_file: str) -> Any:
    """A PIR .json program raised to `pd`. Its raising rules are imported here, when a PIR
    file is read: a legacy model's load (every paddle.inference start) does not pay for them."""
    from tostatic.passes.raise_from_pir import raise_pir

    return raise_pir(read_pir(model_file))


def inference_plan(module: ModuleOp, weights: dict[str, np.ndarray], feeds: list[str],
                   optimize: bool = True, owned: bool = False,
                   verify: str = "end") -> ExecutionPlan:
    """The plan a loaded model runs: the `inference` pipeline (batch-norm folding, epilogue
    fusion, ...) on a copy of its module, with the weights it reads and makes. `owned`: no
    one else reads `weights`' arrays, so passes may overwrite those they replace. `verify`:
    the pass manager's ("off" for a load verified before: plan_cache.Verified)."""
    if optimize:
        loaded, module = module, module.clone()
        state = CompileState(weights=dict(weights), weights_owned=owned)
        PassManager("inference", verify=verify).run(module, state, first_stage="loaded",
                                                    input_copy=loaded.clone)
        weights = state.weights
    return ExecutionPlan(entry(module), weights, feeds, specialize=True)


def load_model(model_file: str, params_file: str | None, optimize: bool = True,
               keep_weights: bool = True) -> LoadedModel:
    """Read, raise and plan a model; any error from the files names the file it is about.
    `optimize=False` runs the module as loaded (Config.switch_ir_optim(False)).
    `keep_weights=False` (a predictor, which only runs the plan): the model keeps no copy of
    the file's weights beside the plan's (`weights` is empty), so the inference passes may
    transform them in place (ResNet-50: 100 MB less to allocate and touch)."""
    threads.apply_environment()
    try:
        with _no_gc():
            model = _load_model(model_file, params_file, optimize, keep_weights)
        model.source = model_file
        return model
    except ToStaticError as e:
        if isinstance(e, PassFailure):
            raise  # a bug in tostatic, not in the file: keep its reproducer
        raise _naming(e, model_file) from None


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a model loads: raising and the passes make
    a few hundred thousand IR objects, and the collections they trigger (each walking every
    object alive, all of xDSL's and numpy's included) were a tenth of ResNet-50's load. The
    cycles left behind are collected by the next full collection: the objects the load made
    are moved to the oldest generation (freeze, then unfreeze: two list splices), which only
    full collections walk. Left young, they were walked twice more at once, ~40 ms each on
    ResNet-50: by the first young collection after the load and by the first middle one,
    inside the first run."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # (a program's own frozen objects stay frozen)
            gc.freeze()
            gc.unfreeze()
        if was:
            gc.enable()


def _naming(e: ToStaticError, model_file: str) -> ToStaticError:
    """The error, its message starting with the file unless it names one already."""
    text = str(e)
    if e.args and isinstance(e.args[0], str) and not any(
            os.path.basename(f) in text for f in (model_file, params_beside(model_file))):
        e.args = (f"{model_file}: {e.args[0]}",) + e.args[1:]
    return e


def _manifest(model_file: str, params_file: str | None) -> dict[str, Any] | None:
    """The manifest tostatic saved with these files (None for Paddle's files)."""
    if not model_file.endswith(".pdmodel"):
        return None
    prefix = model_file[: -len(".pdmodel")]
    if params_file not in (None, prefix + ".pdiparams"):
        return None
    return prefix_manifest(prefix)


def _check_weights(fn: Any, weights: dict[str, np.ndarray], params_file: str,
                   offsets: dict[str, int]) -> None:
    """Each stored tensor must have the shape and dtype the program declares for it: a
    wrong-sized record would otherwise load and fail (or broadcast) only when run."""
    for op in fn.walk():
        if not isinstance(op, Persistable):
            continue
        name = op.attr_values()["var_name"]
        want = Abstract.of_value(op.results[0])
        arr = weights.get(name)
        if arr is None:
            continue
        shape_ok = len(want.shape) == arr.ndim and all(
            d < 0 or d == n for d, n in zip(want.shape, arr.shape))
        dtype_ok = want.dtype.numpy is None or arr.dtype == want.dtype.numpy
        if not (shape_ok and dtype_ok):
            raise FormatError(params_file, offsets.get(name),
                              f"tensor {name!r} is {arr.dtype}{list(arr.shape)}, but the model "
                              f"declares it {want.dtype.name}{list(want.shape)}")


def _check_inputs(plan: ExecutionPlan) -> None:
    """An input no array can match (more than 2**63 bytes) makes the model unusable."""
    for name, spec in zip(plan.input_names, plan.input_abstracts):
        itemsize = spec.dtype.numpy.itemsize if spec.dtype.numpy is not None else 2
        if math.prod(max(d, 1) for d in spec.shape) * itemsize >= 2**63:
            raise ProgramError(f"input {name!r} is declared with shape {list(spec.shape)}: "
                               f"no array that large can exist")


def _load_model(model_file: str, params_file: str | None, optimize: bool,
                keep_weights: bool) -> LoadedModel:
    if not os.path.exists(model_file):
        prefix = model_file.rsplit(".", 1)[0] if model_file.endswith(MODEL_SUFFIXES) else ""
        hint = (f"; neither {prefix}.pdmodel nor {prefix}.json exists" if prefix else "")
        raise FileNotFoundError(f"model file {model_file!r} does not exist{hint}")
    if detect_model_format(model_file) == "pir-json":
        return _load_pir(model_file, params_file, optimize, keep_weights)
    manifest = _manifest(model_file, params_file)
    with open(model_file, "rb") as f:
        data = f.read()
    check_file(manifest, model_file, data)
    verified = plan_cache.Verified(data, params_file, optimize)
    checks = "off" if verified.known else "end"
    module = ModuleOp([parse_program_bytes(data, model_file)])
    PassManager("load", verify=checks).run(
        module, CompileState(), first_stage="loaded",
        input_copy=lambda: ModuleOp([parse_program_bytes(data, model_file)]))
    fn = entry(module)
    feeds, fetches = input_names(fn), output_names(fn)
    persistables = sorted(op.attr_values()["var_name"] for op in fn.body.block.ops
                          if isinstance(op, Persistable))
    weights: dict[str, np.ndarray] = {}
    if persistables:
        if not params_file or not os.path.exists(params_file):
            raise FileNotFoundError(f"{model_file} has {len(persistables)} persistable "
                                    f"variables but the params file {params_file!r} is missing")
        offsets: dict[str, int] = {}
        check_file(manifest, params_file)
        crcs = record_crcs(manifest, params_file)
        weights = load_combine(params_file, persistables, offsets, crcs)
        _check_weights(fn, weights, params_file, offsets)
    key = _content_key(data, weights, crcs if persistables else {}, optimize)
    if key is not None:  # its last plan file, opened and checked while the passes run
        plan_cache.prefetch(key)
    plan = inference_plan(module, weights, feeds, optimize, owned=not keep_weights,
                          verify=checks)
    _check_inputs(plan)
    verified.record()
    model = LoadedModel(None, feeds, fetches, weights if keep_weights else {}, plan, module,
                        program_bytes=(data, model_file))
    model.content_key = key
    return model


def _content_key(model_bytes: bytes, weights: dict[str, np.ndarray],
                 crcs: dict[str, int] | None, optimize: bool) -> str | None:
    """A hash of what the model's files hold (before the passes change the weights), for
    the plan cache: the program's bytes, and each weight's name, dtype, shape and CRC-32,
    which the manifest gives (load_combine has checked the data against it) or which are
    computed here (Paddle's files: ~14 ms for 100 MB). None with the plan cache off."""
    if not plan_cache.enabled():
        return None
    h = hashlib.sha256(model_bytes)
    h.update(f"\0optimize={optimize}\0".encode())
    for name in sorted(weights):
        a = weights[name]
        crc = crcs.get(name) if crcs is not None else None
        if crc is None:
            crc = zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0{crc}\n".encode())
    return h.hexdigest()


def _load_pir(model_file: str, params_file: str | None, optimize: bool,
              keep_weights: bool) -> LoadedModel:
    """A Paddle 3.x PIR program: raised, pruned, planned; its parameters from .pdiparams."""
    raised = _raise_pir_file(model_file)
    module = raised.module
    PassManager("dead-op-elimination", verify="end").run(
        module, CompileState(), first_stage="raised-from-pir")
    names = sorted(p.name for p in raised.parameters)
    weights: dict[str, np.ndarray] = {}
    if names:
        if not params_file or not os.path.exists(params_file):
            raise FileNotFoundError(f"{model_file} has {len(names)} parameters but the params "
                                    f"file {params_file!r} is missing")
        offsets = {}
        weights = load_combine(params_file, names, offsets)
        _check_weights(entry(module), weights, params_file, offsets)
    with open(model_file, "rb") as f:
        key = _content_key(f.read(), weights, None, optimize)
    if key is not None:
        plan_cache.prefetch(key)
    plan = inference_plan(module, weights, raised.feed_names, optimize, owned=not keep_weights)
    _check_inputs(plan)
    model = LoadedModel(None, raised.feed_names, raised.fetch_names,
                        weights if keep_weights else {}, plan, module,
                        source_format="pir-json", info=raised.info())
    model.content_key = key
    return model
