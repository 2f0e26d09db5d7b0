"""Converting the model's body for the CPU runtimes (:mod:`~desktop_app.core.model.cpu_runtime`): its ONNX
graph, and int8 copies of it for ONNX Runtime and for OpenVINO.

Each conversion is made once per model, one process at a time, in a temporary folder renamed into place
when complete, so a killed conversion leaves nothing that is later used; one that would not fit in the
free memory is refused before it starts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core.storage.lock import one_at_a_time

if TYPE_CHECKING:
    import torch


# Where each conversion keeps its graph, relative to the conversion folder.
ONNX_GRAPH, ONNX_INT8_GRAPH, OPENVINO_INT8_GRAPH = (Path("onnx-fp32/body.onnx"), Path("onnx-int8/body.onnx"),
                                                    Path("openvino-int8/body.xml"))
# Peak memory of each conversion as a multiple of the fp32 weights, measured on the BGE-M3-sized model
# with real BGE-M3's vocabulary (2.1 GiB): ONNX export 4.3 GiB, ONNX Runtime's int8 quantisation 8.4
# (it holds the graph several times over), NNCF's for OpenVINO 4.0; a little room on top.
EXPORT_MEMORY_FACTOR = 2.5
ONNX_INT8_MEMORY_FACTOR = 4.2
OPENVINO_INT8_MEMORY_FACTOR = 2.2


def memory_available() -> int:
    """Bytes the system can give now (MemAvailable), or a large number where it cannot tell."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 1 << 62


def shortfall(needed: int) -> str:
    """"needs about N GiB of free memory, M GiB are free" when fewer than ``needed`` bytes are free, else ""."""
    free = memory_available()
    if free >= needed:
        return ""
    return f"needs about {needed / 2**30:.1f} GiB of free memory, {free / 2**30:.1f} GiB are free"


def _require_memory(needed: int) -> None:
    missing = shortfall(needed)
    if missing:
        raise MemoryError(f"converting the model {missing}")


def graph_bytes(graph: Path) -> int:
    """The graph's size with its external data (an export over 2 GB keeps its weights beside it)."""
    return sum(path.stat().st_size for path in graph.parent.iterdir() if path.is_file())


def _atomic_folder(target: Path, build: Callable[[Path], None], on_wait: Callable[[str], None]) -> Path:
    """Build into a temporary sibling and rename it to ``target`` when complete (or use a finished one).

    One process at a time builds a target: two at once (the window and a terminal on a first start)
    would double a conversion's memory peak, gigabytes for BGE-M3, and collided on ONNX Runtime's
    shape-inferred copy of the graph. The other waits, then uses the result. What a killed build left
    is cleared by the next one.
    """
    if target.exists():
        return target
    with one_at_a_time(target.with_name(f"{target.name}.lock"), "converting the model for this CPU", on_wait) as held:
        if target.exists():  # built by the process this one waited for
            return target
        temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        # Killed builds' folders; only while the lock is held is none of them another's build in progress.
        for stale in target.parent.glob(f"{target.name}.tmp-*") if held else [temporary]:
            shutil.rmtree(stale, ignore_errors=True)
        temporary.mkdir()
        try:
            build(temporary)
            try:
                os.rename(temporary, target)
            except OSError:  # without the lock another process may have finished first
                if not target.exists():
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return target


def export_onnx(body: torch.nn.Module, folder: Path, weight_bytes: int, on_progress: Callable[[str], None]) -> Path:
    """The body as an ONNX graph (fp32, dynamic batch and length) in ``folder/onnx-fp32``."""
    import torch

    def build(into: Path) -> None:
        _require_memory(int(weight_bytes * EXPORT_MEMORY_FACTOR))
        on_progress("converting the model for this CPU (once): exporting the ONNX graph")
        ids = torch.ones((2, 8), dtype=torch.long)
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(body, (ids, torch.ones_like(ids)), str(into / ONNX_GRAPH.name),
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                              dynamic_axes={name: {0: "batch", 1: "tokens"} for name in
                                            ("input_ids", "attention_mask", "last_hidden_state")},
                              opset_version=17, dynamo=False)

    return _atomic_folder(folder / ONNX_GRAPH.parent, build, on_progress) / ONNX_GRAPH.name


def quantize_int8(graph: Path, folder: Path, on_progress: Callable[[str], None]) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of the graph's MatMuls, in ``folder/onnx-int8``."""

    def build(into: Path) -> None:
        _require_memory(int(graph_bytes(graph) * ONNX_INT8_MEMORY_FACTOR))
        from onnxruntime.quantization import QuantType, quantize_dynamic

        on_progress("converting the model for this CPU (once): int8 quantisation")
        quantize_dynamic(str(graph), str(into / ONNX_INT8_GRAPH.name), weight_type=QuantType.QInt8,
                         use_external_data_format=graph.stat().st_size > (1 << 31) - (1 << 27))

    return _atomic_folder(folder / ONNX_INT8_GRAPH.parent, build, on_progress) / ONNX_INT8_GRAPH.name


def quantize_openvino_int8(graph: Path, folder: Path, calibration: Callable[[], list[dict[str, np.ndarray]]],
                           on_progress: Callable[[str], None]) -> Path:
    """NNCF's post-training int8 quantisation of the graph for OpenVINO, in ``folder/openvino-int8``.

    Activations are calibrated on ``calibration()``'s inputs (texts other than the fidelity probe's,
    so the gate is not judged on what was tuned); VNNI and AMX then run the MatMuls in int8.
    """

    def build(into: Path) -> None:
        import nncf
        import openvino
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

        _require_memory(int(graph_bytes(graph) * OPENVINO_INT8_MEMORY_FACTOR))
        on_progress("converting the model for this CPU (once): int8 quantisation with OpenVINO (minutes)")
        model = openvino.Core().read_model(str(graph))
        samples = calibration()
        # SmoothQuant off: with it the BGE-M3-sized body kept cosine 0.981 (CLS) / 0.979 (tokens) of
        # fp32 on the probe texts, without it 0.9987 / 0.9984, and it ran faster (bench/README.md).
        no_smoothing = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1))
        quantized = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(samples), advanced_parameters=no_smoothing)
        openvino.save_model(quantized, str(into / OPENVINO_INT8_GRAPH.name), compress_to_fp16=False)

    return _atomic_folder(folder / OPENVINO_INT8_GRAPH.parent, build, on_progress) / OPENVINO_INT8_GRAPH.name
