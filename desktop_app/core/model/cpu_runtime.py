"""Which runtime runs the model's transformer body on this CPU: chosen by measurement, once, and kept.

Candidates: torch in fp32 or under bf16 autocast, OpenVINO (fp32, or bf16 inference precision where
the CPU has native bf16) and ONNX Runtime with int8 dynamic quantisation of the Linear layers. Only
the body changes runtime: the dense, sparse and ColBERT heads stay on the fp32 weights, exactly as
FlagEmbedding defines them (:mod:`~desktop_app.core.model.heads`). A candidate other than torch fp32
is used only when it passes the fidelity gate (:mod:`desktop_app.core.model.fidelity`) against torch
fp32 on the probe texts; among those that pass the fastest wins, timed on the probe texts and on
passages as long as an index run's chunks, in alternating rounds (the median of each), so one busy
moment does not decide hours of indexing. The verdict is written beside the converted files, keyed
by machine, model and library versions, and read at the next start.

The conversions the graph runtimes run from are made once per model (:mod:`~desktop_app.core.model.conversion`).
A start with a kept graph runtime builds its body from the graph alone (:func:`body_from_graph`), without torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core.model import conversion, fidelity
from desktop_app.core.model.conversion import ONNX_GRAPH, ONNX_INT8_GRAPH, OPENVINO_INT8_GRAPH
from desktop_app.core.model.encoding import Encoding

if TYPE_CHECKING:
    import torch

# (input ids, attention mask), both int64 (batch, tokens) -> the last hidden state, float32 (batch, tokens, hidden)
Body = Callable[[np.ndarray, np.ndarray], np.ndarray]

log = logging.getLogger(__name__)

TORCH_FP32, TORCH_BF16 = "fp32", "bf16"
OPENVINO_FP32, OPENVINO_BF16, ONNX_INT8 = "openvino-fp32", "openvino-bf16", "onnx-int8"
OPENVINO_INT8 = "openvino-int8"
CPU_RUNTIMES = (TORCH_FP32, TORCH_BF16, OPENVINO_FP32, OPENVINO_BF16, ONNX_INT8, OPENVINO_INT8)
FOLDER_NAME = "desktop-search-cpu"
VERDICT_VERSION = 1
PROBE_ROUNDS = 3
# OpenVINO's cache of the kept runtime's compiled body: loading it takes 0.56 s against 2.2-2.4 s to compile the
# BGE-M3-sized int8 graph (AMX VM), at every start; it holds the weights (445 MB there), so it is written only
# with this many times the graph's size free on the disk.
OPENVINO_CACHE = Path("openvino-cache")
CACHE_ROOM_FACTOR = 3
# Memory a compiled body takes, as a share of the fp32 weights (measured on the BGE-M3-sized model with
# real BGE-M3's vocabulary, 2.1 GB: OpenVINO fp32 3.4 GB, bf16 3.3 GB, ONNX Runtime int8 0.8, OpenVINO int8 1.9).
BODY_MEMORY_SHARE = {OPENVINO_FP32: 1.6, OPENVINO_BF16: 1.6, ONNX_INT8: 0.4, OPENVINO_INT8: 0.9}


@dataclass
class Verdict:
    """What the probe found on this machine for this model; ``chosen`` is what encodes."""

    chosen: str
    tokens_per_s: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, dict[str, float]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    machine: str = ""
    measured_at: float = 0.0
    rechecked_at: float = 0.0  # when core/model/recheck.py last timed the choice again (0: never)
    challenger: str = ""  # a rival that beat the choice at the last re-check; a second win replaces it


RUNTIME_LABELS = {TORCH_FP32: "fp32", TORCH_BF16: "bf16", OPENVINO_FP32: "OpenVINO fp32",
                  OPENVINO_BF16: "OpenVINO bf16", ONNX_INT8: "ONNX Runtime int8", OPENVINO_INT8: "OpenVINO int8"}


def machine_key(model_fingerprint: str) -> str:
    """Machine (CPU model, its vector flags, cores), model and the runtimes' versions, hashed."""
    parts = [platform.machine(), cpu_model(), " ".join(sorted(cpu_flags() & _RELEVANT_FLAGS)),
             str(os.cpu_count()), model_fingerprint, _version("torch"), _version("openvino"),
             _version("onnxruntime"), _version("nncf")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


_RELEVANT_FLAGS = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile"}


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return set(next((line for line in handle if line.startswith("flags")), "").split())
    except OSError:
        return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} absent"


def available(runtime: str) -> str:
    """Why ``runtime`` cannot run here ("" when it can)."""
    if runtime in (OPENVINO_FP32, OPENVINO_BF16) and _version("openvino").endswith("absent"):
        return "OpenVINO is not installed"
    if runtime == ONNX_INT8 and (_version("onnxruntime").endswith("absent") or _version("onnx").endswith("absent")):
        return "ONNX Runtime or onnx is not installed"
    if runtime in (TORCH_BF16, OPENVINO_BF16) and not has_native_bf16():
        return "this CPU has no native bf16 (emulated bf16 was 7x slower than fp32 on an AVX2-only CPU)"
    if runtime == OPENVINO_INT8:
        if _version("openvino").endswith("absent") or _version("nncf").endswith("absent"):
            return "OpenVINO or NNCF is not installed"
        if not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"}:
            return "this CPU has no int8 dot-product instructions (VNNI or AMX): quantising would not pay"
    return ""


def has_native_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def conversion_folder(model_path: Path, fingerprint: str) -> Path:
    """Beside the model when its folder is writable, else in the user's cache folder."""
    beside = model_path / FOLDER_NAME
    if os.access(model_path, os.W_OK):
        return beside
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("desktop-search")) / "cpu-runtimes" / fingerprint[:16]


def read_verdict(folder: Path, key: str) -> Verdict | None:
    try:
        saved = json.loads((folder / f"verdict-{key}.json").read_text())
        if saved.pop("version", None) != VERDICT_VERSION:
            return None
        return Verdict(**saved)
    except (OSError, ValueError, TypeError):
        return None


def write_verdict(folder: Path, key: str, verdict: Verdict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"verdict-{key}.json.tmp-{os.getpid()}"
    try:
        temporary.write_text(json.dumps({"version": VERDICT_VERSION, **asdict(verdict)}, indent=1))
        os.replace(temporary, folder / f"verdict-{key}.json")
    except BaseException:  # a full disk: no half-written verdict is left to take space (or be read)
        temporary.unlink(missing_ok=True)
        raise


class TorchBody:
    """The body in torch, fp32 or under bf16 autocast."""

    def __init__(self, module: torch.nn.Module, bf16: bool) -> None:
        self.module = module
        self.bf16 = bf16

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.module(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask))
            return out.last_hidden_state.float().numpy()


class OpenVinoBody:
    """The ONNX graph compiled by OpenVINO for this CPU (``precision``: f32 or bf16), through its cache of
    compiled bodies in ``cache`` when given."""

    def __init__(self, graph: Path, precision: str, cache: Path | None = None) -> None:
        import openvino

        core = openvino.Core()
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        self.compiled = None
        if cache is not None:
            try:  # by path: a cached body loads without the graph being read
                self.compiled = core.compile_model(str(graph), "CPU", {**config, "CACHE_DIR": str(cache)})
            except RuntimeError as error:  # an unwritable or damaged cache: compile as if there were none
                log.info("OpenVINO's cache in %s failed (%s): compiling without it", cache, error)
                shutil.rmtree(cache, ignore_errors=True)
        if self.compiled is None:
            self.compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
        self.request_lock = threading.Lock()  # one compiled model, one inference at a time

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self.request_lock:
            out = self.compiled({"input_ids": input_ids, "attention_mask": mask})[0]
            return np.array(out, dtype=np.float32)  # a copy: the request's output is overwritten by the next


class OnnxRuntimeBody:
    """The (quantised) ONNX graph in ONNX Runtime on every core."""

    def __init__(self, graph: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = os.cpu_count() or 1
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


def convert(runtime: str, module: torch.nn.Module, folder: Path, weight_bytes: int,
            on_progress: Callable[[str], None],
            calibration: Callable[[], list[dict[str, np.ndarray]]] | None = None) -> None:
    """Make the files ``runtime`` runs from (nothing for torch), holding no compiled body afterwards: the
    probe converts everything first, so no conversion's peak adds to bodies kept for timing."""
    if runtime in (TORCH_FP32, TORCH_BF16):
        return
    graph = conversion.export_onnx(module, folder, weight_bytes, on_progress)
    if runtime == ONNX_INT8:
        conversion.quantize_int8(graph, folder, on_progress)
    elif runtime == OPENVINO_INT8:
        if calibration is None:
            raise RuntimeError("OpenVINO int8 needs calibration inputs")
        conversion.quantize_openvino_int8(graph, folder, calibration, on_progress)


def build_body(runtime: str, module: torch.nn.Module, folder: Path, weight_bytes: int,
               on_progress: Callable[[str], None],
               calibration: Callable[[], list[dict[str, np.ndarray]]] | None = None) -> Body:
    """The body for ``runtime``, converting the model first when that runtime needs it (``calibration``:
    model inputs to quantise OpenVINO int8 with)."""
    if runtime in (TORCH_FP32, TORCH_BF16):
        return TorchBody(module, runtime == TORCH_BF16)
    graph = conversion.export_onnx(module, folder, weight_bytes, on_progress)
    if runtime == ONNX_INT8:
        return OnnxRuntimeBody(conversion.quantize_int8(graph, folder, on_progress))
    if runtime == OPENVINO_INT8:
        if calibration is None:
            raise RuntimeError("OpenVINO int8 needs calibration inputs")
        quantized = conversion.quantize_openvino_int8(graph, folder, calibration, on_progress)
        return OpenVinoBody(quantized, openvino_precision(runtime))
    return OpenVinoBody(graph, openvino_precision(runtime))


def openvino_precision(runtime: str) -> str:
    """OpenVINO's inference precision for ``runtime`` (int8 layers aside, bf16 where the CPU has it)."""
    return "bf16" if runtime == OPENVINO_BF16 or (runtime == OPENVINO_INT8 and has_native_bf16()) else "f32"


def converted_graph(runtime: str, folder: Path) -> Path | None:
    """The graph ``runtime`` runs, when it is a graph runtime whose conversion in ``folder`` is made."""
    graphs = {OPENVINO_FP32: folder / ONNX_GRAPH, OPENVINO_BF16: folder / ONNX_GRAPH,
              OPENVINO_INT8: folder / OPENVINO_INT8_GRAPH, ONNX_INT8: folder / ONNX_INT8_GRAPH}
    graph = graphs.get(runtime)
    return graph if graph is not None and graph.exists() else None


def body_from_graph(runtime: str, folder: Path) -> Body | None:
    """``runtime``'s body from its finished conversion in ``folder``, without torch (None when there is
    none yet): a start with a kept verdict builds it before, or instead of, loading torch."""
    graph = converted_graph(runtime, folder)
    if graph is None:
        return None
    if runtime == ONNX_INT8:
        return OnnxRuntimeBody(graph)
    return OpenVinoBody(graph, openvino_precision(runtime), _compiled_cache(runtime, folder, graph))


def _compiled_cache(runtime: str, folder: Path, graph: Path) -> Path | None:
    """The folder of OpenVINO's cache for the kept ``runtime`` (the others' are removed: only the kept one
    starts from it), or None where the disk lacks the room for a new one."""
    root = folder / OPENVINO_CACHE
    if root.is_dir():
        for other in root.iterdir():
            if other.name != runtime:
                shutil.rmtree(other, ignore_errors=True)
    cache = root / runtime
    if cache.is_dir() and any(cache.iterdir()):
        return cache
    try:
        room = shutil.disk_usage(folder).free >= CACHE_ROOM_FACTOR * conversion.graph_bytes(graph)
    except OSError:
        room = False
    return cache if room else None


def memory_shortfall(runtime: str, weight_bytes: int) -> str:
    """Why ``runtime``'s body does not fit in the memory free now ("" when it does)."""
    shortfall = conversion.shortfall(int(BODY_MEMORY_SHARE.get(runtime, 0.0) * weight_bytes))
    return f"it {shortfall}" if shortfall else ""


def probe(encode_with: Callable[[Body, Sequence[str]], list[Encoding]], build: Callable[[str], Body],
          runtimes: Sequence[str], texts: Sequence[str], timing_texts: Sequence[str], timing_tokens: int,
          weight_bytes: int, rejected: dict[str, str], machine: str) -> Verdict:
    """Check each runtime's fidelity against torch fp32; one that passes then races the fastest so far in
    alternating rounds (medians) and the faster stays. At most two bodies besides torch's are held at
    once, and one that would not fit in the free memory is skipped with the reason.

    ``encode_with(body, texts)`` encodes ``texts`` (dense, sparse and ColBERT) through ``body``;
    ``build(runtime)`` makes a runtime's body from its finished conversion. Fidelity is judged on ``texts``,
    speed timed on ``timing_texts`` (``timing_tokens`` tokens), shaped like the work it will do.
    """
    fastest, fastest_body = TORCH_FP32, build(TORCH_FP32)
    reference = encode_with(fastest_body, texts)
    measured: dict[str, dict[str, float]] = {}
    speed: dict[str, float] = {}
    for name in runtimes:
        if name == TORCH_FP32:
            continue
        shortfall = memory_shortfall(name, weight_bytes)
        if shortfall:
            rejected[name] = f"skipped: {shortfall}"
            continue
        try:
            body = build(name)
            found = fidelity.measure(reference, encode_with(body, texts))
        except Exception as error:  # noqa: BLE001 - a runtime that cannot run this model is rejected, said why
            rejected[name] = f"failed: {error}"
            continue
        measured[name] = found.as_dict()
        if not found.passes:
            rejected[name] = f"fidelity below the gate: {found.describe()}"
            continue
        race = time_race(encode_with, {fastest: fastest_body, name: body}, timing_texts, timing_tokens)
        # Chained from the first race's figure for the fastest so far, so the figures order as the races
        # did (a runtime timed again beside another one's spinning thread pool reads slower).
        speed.setdefault(fastest, race[fastest])
        speed[name] = round(speed[fastest] * race[name] / race[fastest], 1)
        if race[name] > race[fastest]:
            fastest, fastest_body = name, body
        del body  # the slower of the two is released before the next one is built
    if not speed:
        speed = time_race(encode_with, {fastest: fastest_body}, timing_texts, timing_tokens)
    return Verdict(fastest, speed, measured, rejected, machine, time.time())


class RaceStopped(Exception):
    """``keep_going`` turned false before a race ended."""


def time_race(encode_with: Callable[[Body, Sequence[str]], list[Encoding]], bodies: dict[str, Body],
              texts: Sequence[str], tokens: int, keep_going: Callable[[], bool] = lambda: True) -> dict[str, float]:
    """Tokens/s of each body over PROBE_ROUNDS alternating rounds (medians); :class:`RaceStopped` when
    ``keep_going``, asked before every timing, says no."""
    timings: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(PROBE_ROUNDS):
        for name, body in bodies.items():
            if not keep_going():
                raise RaceStopped
            started = time.perf_counter()
            encode_with(body, texts)
            timings[name].append(time.perf_counter() - started)
    return {name: round(tokens / statistics.median(times), 1) for name, times in timings.items()}
