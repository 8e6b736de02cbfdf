"""A predictor's warm start: the bound plan of an earlier start rebuilt from a record of it,
without reading the model's program into IR (no xDSL, no op classes, no passes, no parser).

After a model's first binding in a process (runtime/loaded_model.py), what a later start needs
to bind the same plan is written beside the plan cache (`<kernel cache dir>/warm/`): each
step's op name, attributes and slots, every slot's shape and dtype, the values the bind folded,
the feed and fetch names, the input signature, the plan file (runtime/plan_cache.py) holding
what the kernels prepared, and the constants (the weights after the passes: batch norm folded
into the filters). The file is runtime/plan_file.py's format (JSON index, raw 64-byte-aligned
arrays, CRC-32s, temp file + rename), the record being its first entry's key.

A record is found by what decides it, as Python finds a module's .pyc: a hash of the model
file's bytes (small), the params file's path, size, mtime_ns, inode and ctime_ns (which no
one sets: weights copied in with the old size and mtime are seen), tostatic's code
(plan_cache.code_digest), the TOSTATIC_ settings, the CPU, the thread count, switch_ir_optim.
A predictor built from one runs its recorded input signature through the rebuilt plan; any
other input (another shape or dtype, a feed not a numpy array, a bad feed) loads the model
as without it, then, and runs it there, as do attributes a record does not hold (`module`,
`program`...): from the files this predictor was made from (a hash of the model file, the
params file's identity), as Paddle's predictor reads its files once, at creation; if either
changed since, that load raises an error naming the file rather than run another model.
A record that is
missing, damaged, truncated or does not rebuild the same plan (each step's kernel kind is
checked against the record) is never used: the full load runs and writes it anew. Only plans
whose compiled steps are elementwise kernels are recorded (runtime/warm_kernels.py: the
kernel is its expression; softmax, layer norm, reduction and pooling kernels are made from
their op and keep the full load).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tostatic.codegen import num_threads
from tostatic.codegen.engine import cache_dir
from tostatic.codegen.prepared import is_result
from tostatic.ir.errors import ExecutionError, ToStaticError
from tostatic.runtime import plan_cache, plan_file, threads
from tostatic.runtime.lazy import few_collections
from tostatic.runtime.op_info import OpInfo
from tostatic.runtime.warm_kernels import NeedsModel, kernel, recipe

FORMAT = "tostatic-warm-1"
KEPT = 8  # records kept (each holds its model's weights), the least recently used removed
KEPT_BYTES = 2 << 30  # and no more bytes of them than this (ResNet-50's is 102 MB)


def files_state(model_file: str, params_file: str | None) -> tuple[str, str] | None:
    """What a record is found by in the files: a hash of the model file's bytes, and the
    params file's path, size, mtime_ns, inode and ctime_ns; None with a file unreadable."""
    try:
        with open(model_file, "rb") as f:
            program = hashlib.sha256(f.read()).hexdigest()
        params = "-"
        if params_file and os.path.exists(params_file):
            st = os.stat(params_file)
            # (inode and ctime: other weights renamed over the file, or written with its
            # old size and mtime restored, are other files: cp -p, rsync -t, tar)
            params = (f"{os.path.abspath(params_file)},{st.st_size},{st.st_mtime_ns},"
                      f"{st.st_ino},{st.st_ctime_ns}")
    except OSError:
        return None
    return program, params


def record_path(model_file: str, params_file: str | None, optimize: bool,
                directory: Path | None = None,
                state: tuple[str, str] | None = None) -> Path | None:
    """Where the record of these files (`state`: their files_state, read here if not
    given), code, settings, CPU and threads is; None with the plan cache off or a file
    unreadable."""
    if not plan_cache.enabled():
        return None
    state = state or files_state(model_file, params_file)
    if state is None:
        return None
    from tostatic.codegen import engine  # noqa: PLC0415 (llvmlite: the kernels need it anyway)

    h = engine.host()
    text = "\n".join([FORMAT, *state, str(optimize), plan_cache.code_digest(),
                      h["cpu"], h["features"], h["triple"], str(num_threads()),
                      repr(plan_cache.settings()), np.__version__])
    return (directory or cache_dir() / "warm") / (
        hashlib.sha256(text.encode()).hexdigest()[:40] + ".plan")


# ------------------------------------------------------------------ attributes as JSON

def _encode(value: Any) -> Any:
    """An attribute value as JSON that decodes to an equal value of the same types;
    TypeError for anything else (arrays, dtypes: such a plan is not recorded)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is tuple:
        return {"t": [_encode(v) for v in value]}
    if type(value) is list:
        return [_encode(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {"d": {k: _encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot record {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "t" in value:
            return tuple(_decode(v) for v in value["t"])
        return {k: _decode(v) for k, v in value["d"].items()}
    return value


# ------------------------------------------------------------------ writing

def write_record(path: Path, model: Any, signature: Any, store: Any) -> bool:
    """The record of `model`'s plan bound to `signature` (its plan file: `store`'s), when
    every step can be rebuilt from it; False when not written."""
    plan = model.plan
    bound, body = plan.bound.get(signature), plan.body
    if bound is None:
        return False
    constants = [(i, v.numpy() if hasattr(v, "numpy") else v) for i, v in body.constants]
    constants += sorted(bound.folded.items())
    known = {i for i, _ in constants}
    slots = [None if i in known else spec for i, spec in enumerate(bound.sample_specs)]
    if False in slots or model.content_key is None:
        return False
    try:
        # (a folded step's attributes are not read: its value is kept)
        steps = [[op.name, {"d": {}} if kind == "folded" else _encode(op.attr_values()), ins,
                  outs, recipe(op) if kind == "compiled" else None]
                 for op, (_, ins, outs), kind in zip(body.ops, body.steps, bound.kinds)]
        # a compiled kernel made from more than an expression, an op with regions run by
        # its nested plans: not recorded
        if any((kind == "compiled" or op.regions) and step[4] is None
               for op, step, kind in zip(body.ops, steps, bound.kinds)) or not all(
                is_result(np.asarray(v)) for _, v in constants):
            return False
    except TypeError:
        return False
    meta = {"format": FORMAT, "feed_names": model.feed_names,
            "fetch_names": model.fetch_names, "source_format": model.source_format,
            "signature": [[list(shape), char] for shape, char in signature],
            "store": [model.content_key, store.path.name], "num_inputs": body.num_inputs,
            "num_slots": body.num_slots, "outputs": body.outputs, "steps": steps,
            "slots": slots, "constants": [i for i, _ in constants],
            "labels": bound.labels, "at_bind": bound.at_bind}
    results = [(json.dumps(meta, separators=(",", ":")), np.zeros(1, np.uint8))]
    results += [(f"slot {i}", np.ascontiguousarray(np.asarray(v))) for i, v in constants]
    plan_file.write(path, results)
    plan_file.evict(path.parent, "*.plan", KEPT, KEPT_BYTES)
    return True


# ------------------------------------------------------------------ reading

class _Body:
    """A BlockPlan's shape (what BoundPlan reads) rebuilt from a record: ops as OpInfo."""

    def __init__(self, meta: dict[str, Any], constants: dict[int, np.ndarray]):
        self.num_inputs, self.num_slots = meta["num_inputs"], meta["num_slots"]
        self.outputs = list(meta["outputs"])
        self.ops = [OpInfo(name, _decode(attrs), len(outs))
                    for name, attrs, _, outs, _ in meta["steps"]]
        self.steps = [(op.run_eager, list(ins), list(outs))
                      for op, (_, _, ins, outs, _) in zip(self.ops, meta["steps"])]
        self.recipes = {id(op): r for op, (*_, r) in zip(self.ops, meta["steps"]) if r}
        self.constants = [(i, constants[i]) for i in sorted(constants)]

    def compiled_kernel(self, op: OpInfo) -> Any:
        """A recorded step's compiled kernel (runtime/warm_kernels.py), None for others."""
        r = self.recipes.get(id(op))
        return kernel(r, op.run_eager) if r is not None else None


class _Plan:
    """What a predictor asks of a model's plan before the model is fully loaded."""

    def __init__(self) -> None:
        self.profile: Any = None
        self.bound: dict[Any, Any] = {}

    def enable_profile(self) -> Any:
        if self.profile is None:
            from tostatic.runtime.bound_plan import Profile

            self.profile = Profile()
        return self.profile


class WarmModel:
    """A LoadedModel's running side, from a record; everything else from the full load,
    made when first needed (`full`)."""

    def __init__(self, path: Path, meta: dict[str, Any], entries: list[Any], memory: Any,
                 model_file: str, load_full: Callable[[], Any],
                 files: tuple[str | None, tuple[str, str]]):
        self._path, self._meta, self._entries, self._memory = path, meta, entries, memory
        self._load_full = load_full
        self._params_file, self._files = files  # (the params file; files_state at creation)
        self.source = model_file
        self.feed_names = list(meta["feed_names"])
        self.fetch_names = list(meta["fetch_names"])
        self.source_format = meta["source_format"]
        self.weights: dict[str, np.ndarray] = {}
        self.plan = _Plan()
        self._store: Any = None
        self._signature = [(tuple(shape), char) for shape, char in meta["signature"]]
        self._bound: Any = None
        self._full: Any = None
        self._lock = threading.Lock()
        store_model, _ = meta["store"]
        plan_cache.prefetch(store_model)  # the prepared arrays: checked while we go on

    @property
    def plan_store(self) -> Any:
        """The last binding's plan store (runtime/plan_cache.py): the record's, or the full
        load's once there is one."""
        return self._full.plan_store if self._full is not None else self._store

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full(), name)

    def full(self) -> Any:
        """The model loaded as without a record (once)."""
        with self._lock:
            if self._full is None:
                self._same_files()
                full = self._load_full()
                self._same_files()  # (not changed while the load read them either)
                full.warm_record = self._path
                # a process's first binding writes the caches: this one was, if it ran
                full._bound_before = self._bound is not None
                if self.plan.profile is not None:
                    full.plan.profile = self.plan.profile
                self._full = full
                self._entries = self._memory = None
            return self._full

    def _same_files(self) -> None:
        """The full load reads the files now: they must be those this predictor was made
        from (what found its record), or it would run another model than the one it ran
        so far. Paddle's predictor reads its files once, at creation; a predictor made
        before the files changed raises (a new one loads the new files)."""
        now = files_state(self.source, self._params_file) or ("", "")
        for i, name in enumerate((self.source, self._params_file)):
            if now[i] != self._files[i]:
                raise ExecutionError(
                    f"{name}: changed (or removed) since this predictor was created from it; "
                    f"it cannot load the model again to run this input (create a new "
                    f"predictor for the new files)")

    def _matching(self, feeds: Any) -> list[np.ndarray] | None:
        if type(feeds) not in (list, tuple) or len(feeds) != len(self._signature):
            return None
        arrays = []
        for a, (shape, char) in zip(feeds, self._signature):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype.char != char:
                return None
            arrays.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        return arrays

    def _bind(self) -> Any:
        """The plan bound from the record; None (the full load then) if it cannot be."""
        with self._lock:
            if self._bound is None and self._entries is not None:
                try:
                    with few_collections():  # (the kernels' modules, imported now)
                        self._bound = self._rebuild()
                except Exception:  # noqa: BLE001 - whatever fails: the full load runs
                    self._bound = None
                if self._bound is None:
                    self._entries = self._memory = None
        return self._bound

    def _rebuild(self) -> Any:
        from tostatic.codegen import prepared
        from tostatic.runtime.bound_plan import BoundPlan

        meta = self._meta
        entries = self._entries
        if len(entries) != 1 + len(meta["constants"]):
            return None
        values: dict[int, np.ndarray] = {}
        for k, slot in enumerate(meta["constants"], 1):
            got = entries[k] and plan_file.entry_value(entries[k][0], entries[k][1],
                                                       self._memory)
            if got is None or entries[k][0].get("key") != f"slot {slot}":
                return None
            values[slot] = got
        folded_slots = {i for _, _, _, outs, _ in meta["steps"] for i in outs} & set(values)
        folded = {i: values.pop(i) for i in folded_slots}
        body = _Body(meta, values)
        record: list[Any] = [None] * body.num_slots
        for i, spec in enumerate(meta["slots"]):
            if spec is not None:
                record[i] = np.empty(spec[0], np.dtype(spec[1]))
        for i, v in {**values, **folded}.items():
            record[i] = v
        store_model, store_name = meta["store"]
        store = plan_cache.PlanStore(store_model, lambda: store_name[len(store_model[:16]) + 1:
                                                                      -len(".plan")])
        with prepared.active(store):
            bound = BoundPlan(body, record, body.compiled_kernel, folded=folded,
                              recorded=True)
        if [list(x) for x in bound.labels] != meta["labels"] or \
                [list(x) for x in bound.at_bind] != meta["at_bind"]:
            return None
        with contextlib.suppress(Exception):  # (what missed: a damaged plan file, rewritten)
            store.save()
        store.used()
        # the record too (eviction keeps the KEPT most recently used); its arrays have all
        # passed their checks once its head's has
        head, checks = entries[0]
        plan_file.used(self._path, plan_file.entry_value(head, checks, self._memory)
                        is not None)
        self._store = store
        self.plan.bound[tuple(self._signature)] = bound
        return bound

    def run(self, feeds: list[Any]) -> list[np.ndarray]:
        if self._full is None:
            arrays = self._matching(feeds)
            bound = self._bind() if arrays is not None else None
            if bound is not None:
                with bound.lock:
                    try:
                        return bound.run(arrays, self.plan.profile)
                    except NeedsModel:
                        pass  # (a fused tree's numpy kernel: the model's, below)
                    except (ToStaticError, MemoryError, KeyboardInterrupt):
                        raise
                    except Exception as e:  # noqa: BLE001 - as LoadedModel.run
                        raise ExecutionError(f"running {self.source}: "
                                             f"{type(e).__name__}: {e}") from e
        return self.full().run(feeds)


def open_model(model_file: str, params_file: str | None, optimize: bool,
               load_full: Callable[[], Any]) -> tuple[WarmModel | None, Path | None]:
    """The model from its record, if there is a whole one of this format; and the record's
    path (where a full load writes it), None with the plan cache off. `load_full()` loads
    the model as without a record (a LoadedModel), when the record cannot serve."""
    threads.apply_environment()
    state = files_state(model_file, params_file)
    path = record_path(model_file, params_file, optimize, state=state) if state else None
    if path is None or not path.exists():
        return None, path
    try:
        entries, memory = plan_file.open_checked(path)
        head = entries[0]
        meta = json.loads(head[0]["key"]) if head is not None else None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None, path
        return WarmModel(path, meta, entries, memory, model_file, load_full,
                         (params_file, state)), path
    except Exception:  # noqa: BLE001 - a damaged or foreign record: the full load rewrites it
        return None, path
