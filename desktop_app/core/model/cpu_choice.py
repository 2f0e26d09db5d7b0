"""Which body encodes on the CPU for an encoder: a kept graph's, built before anything else loads; the
runtime asked for; or the probe's verdict for this machine and model, measured once and kept
(:mod:`~desktop_app.core.model.cpu_runtime`), with its second look scheduled when due
(:mod:`~desktop_app.core.model.recheck`)."""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.model import cpu_runtime, fidelity, recheck
from desktop_app.core.model.cpu_runtime import RUNTIME_LABELS, Body, TorchBody, Verdict
from desktop_app.core.model.encoding import Encoding
from desktop_app.core.storage.lock import one_at_a_time

if TYPE_CHECKING:
    from desktop_app.core.model.encoder import Encoder

log = logging.getLogger(__name__)

PROBE_LOCK = "probe.lock"


def chosen_body(encoder: Encoder) -> Body:
    """The body's runtime: the one asked for, or (auto) the probe's verdict for this machine and model."""
    weight_bytes = encoder.weight_bytes()
    fingerprint = encoder.spec.fingerprint()
    folder = cpu_runtime.conversion_folder(encoder.spec.path, fingerprint)
    if encoder.dtype == "auto":
        key = cpu_runtime.machine_key(fingerprint)
        encoder.verdict = cpu_runtime.read_verdict(folder, key)
        if encoder.verdict is None:
            encoder.verdict = _probe_once(encoder, folder, key, weight_bytes)
        encoder.dtype = encoder.verdict.chosen
        schedule_recheck(encoder)
    early, encoder.early_body = encoder.early_body, None
    if early is not None and early[0] == encoder.dtype:
        try:
            return early[1].result()
        except Exception as error:  # noqa: BLE001 - see _run_probe: the body is built again below
            log.info("compiling the body early failed (%s): building it again", error)
    try:
        return cpu_runtime.build_body(encoder.dtype, encoder.model.model, folder, weight_bytes, encoder.on_notice,
                                      encoder.calibration_inputs)
    except Exception as error:  # noqa: BLE001 - see _run_probe: torch fp32 always runs
        encoder.on_notice(f"{RUNTIME_LABELS.get(encoder.dtype, encoder.dtype)} is not usable here "
                          f"({error}): encoding with torch fp32")
        encoder.dtype = cpu_runtime.TORCH_FP32
        return TorchBody(encoder.model.model, bf16=False)


def _probe_once(encoder: Encoder, folder: Path, key: str, weight_bytes: int) -> Verdict:
    """The probe's verdict, measured by one process at a time: a second process on a first start (the
    window and a terminal) waits and reads the first's, rather than timing beside it, which would skew
    both verdicts and double the work."""
    with one_at_a_time(folder / PROBE_LOCK, "measuring the CPU runtimes for this model", encoder.on_notice):
        verdict = cpu_runtime.read_verdict(folder, key)
        if verdict is not None:
            return verdict
        verdict = _run_probe(encoder, folder, weight_bytes)
        try:
            cpu_runtime.write_verdict(folder, key, verdict)
        except OSError as error:
            encoder.on_notice(f"could not keep the CPU probe's verdict in {folder}: {error}")
        return verdict


def schedule_recheck(encoder: Encoder) -> None:
    """A second look at a kept verdict when one is due (core/model/recheck.py)."""
    verdict = encoder.verdict
    if verdict is not None and encoder.requested_dtype == "auto" and recheck.due(verdict, time.time()):
        fingerprint = encoder.spec.fingerprint()
        folder = cpu_runtime.conversion_folder(encoder.spec.path, fingerprint)
        encoder.verdict_recheck = recheck.VerdictRecheck(encoder, folder, cpu_runtime.machine_key(fingerprint))


def kept_body(encoder: Encoder) -> tuple[str, Future[Body]] | None:
    """Start building the body of this machine's kept verdict (or of the runtime asked for) from its
    converted graph, before anything else loads: OpenVINO's compile runs in C++ on the other cores (2 s
    of a BGE-M3-sized model's load on 2 cores). Skipped where a GPU may take the model instead, or
    where the graph is not converted yet."""
    if encoder.requested_device not in ("auto", "cpu") or (encoder.requested_device == "auto" and _gpu_possible()):
        return None
    fingerprint = encoder.spec.fingerprint()
    folder = cpu_runtime.conversion_folder(encoder.spec.path, fingerprint)
    runtime = encoder.requested_dtype
    if runtime == "auto":
        encoder.verdict = cpu_runtime.read_verdict(folder, cpu_runtime.machine_key(fingerprint))
        runtime = encoder.verdict.chosen if encoder.verdict is not None else ""
    if cpu_runtime.converted_graph(runtime, folder) is None:
        return None
    built: Future[Body] = Future()

    def build() -> None:
        try:
            built.set_result(cpu_runtime.body_from_graph(runtime, folder))
        except Exception as error:  # noqa: BLE001 - handed to the loader, which builds the body again
            built.set_exception(error)

    # Not a daemon: a process that exits meanwhile waits for the compile rather than tearing OpenVINO down under it.
    threading.Thread(target=build, name="kept-body-build").start()
    return runtime, built


def _run_probe(encoder: Encoder, folder: Path, weight_bytes: int) -> Verdict:
    """Convert the model for every CPU runtime this machine has, then let the probe pick
    (core/model/cpu_runtime.py)."""
    runtimes, rejected = [], {}
    for name in cpu_runtime.CPU_RUNTIMES:
        reason = cpu_runtime.available(name)
        if not reason:
            try:
                cpu_runtime.convert(name, encoder.model.model, folder, weight_bytes, encoder.on_notice,
                                    encoder.calibration_inputs)
            # The converters raise their own kinds too (protobuf's DecodeError on a damaged graph, onnx's
            # checker, NNCF): a runtime that cannot be made is rejected, and the model still loads.
            except Exception as error:  # noqa: BLE001
                reason = f"conversion failed: {error}"
        if reason:
            rejected[name] = reason
        else:
            runtimes.append(name)

    def build(name: str) -> Body:
        return cpu_runtime.build_body(name, encoder.model.model, folder, weight_bytes, encoder.on_notice,
                                      encoder.calibration_inputs)

    def encode_with(body: Body, texts: list[str]) -> list[Encoding]:
        return encoder.encode(texts, max_length=fidelity.TIMING_MAX_TOKENS, colbert=True, body=body)

    timing = list(fidelity.TIMING_TEXTS)
    encoder.on_notice("measuring which runtime encodes fastest on this CPU (once per machine and model)")
    verdict = cpu_runtime.probe(encode_with, build, runtimes, list(fidelity.PROBE_TEXTS), timing,
                                encoder.count_tokens(timing, fidelity.TIMING_MAX_TOKENS), weight_bytes, rejected,
                                cpu_runtime.cpu_model())
    log.info("CPU runtime probe: %s", verdict)
    return verdict


def _gpu_possible() -> bool:
    """An NVIDIA driver is present (torch may then pick CUDA); cheap, without importing torch."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()
    return shutil.which("nvidia-smi") is not None
