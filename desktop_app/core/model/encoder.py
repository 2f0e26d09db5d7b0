"""BGE-M3 through FlagEmbedding: device and dtype choice, length-sorted batching, OOM backoff.

FlagEmbedding's own ``encode`` runs a trial pass per call, defaults to 512 tokens and retries
forever on any RuntimeError, so we load ``BGEM3FlagModel`` for its weights and heads and drive
its forward pass ourselves. torch and FlagEmbedding are imported on first use only.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from desktop_app.core.errors import ModelError, UsageError
from desktop_app.core.model import cpu_runtime, fidelity, recheck
from desktop_app.core.model.cpu_runtime import RUNTIME_LABELS, TorchBody, Verdict
from desktop_app.core.model.encoding import Encoding
from desktop_app.core.model.recheck import VerdictRecheck
from desktop_app.core.model.resolve import ModelSpec

log = logging.getLogger(__name__)

CPU_TOKENS_PER_BATCH = 4096
MAX_CPU_BATCH = 32


def batch_size_for(tokens: int, device_type: str) -> int:
    """How many sequences of ``tokens`` tokens go in one forward pass."""
    if device_type == "cuda":
        if tokens > 4096:
            return 1
        if tokens > 2048:
            return 2
        if tokens > 512:
            return 8
        return 32
    return max(1, min(MAX_CPU_BATCH, CPU_TOKENS_PER_BATCH // max(tokens, 1)))


def plan_batches(lengths: list[int], device_type: str) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first, so padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, position = [], 0
    while position < len(order):
        size = batch_size_for(lengths[order[position]], device_type)
        batches.append(order[position:position + size])
        position += size
    return batches


class Encoder:
    """Loads the model lazily and encodes texts into :class:`Encoding` objects."""

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "auto",
        dtype: str = "auto",
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.requested_device = device
        self.requested_dtype = dtype
        self.on_notice = on_notice or (lambda message: log.warning("%s", message))
        self.device = "cpu"
        self.dtype = "fp32"
        self.model = None
        self.body: Callable | None = None  # the transformer body on the CPU (core/model/cpu_runtime.py); None on CUDA
        self.verdict: Verdict | None = None  # what the CPU probe measured, when it ran
        self.load_lock = threading.Lock()  # two threads asking at once load the weights once
        self.tokenizer = None
        self.per_thread = threading.local()
        self.unused_token_ids: set[int] = set()
        self.early_body: tuple[str, Future[Callable]] | None = None  # an OpenVINO body compiling during the load
        self.verdict_recheck: VerdictRecheck | None = None  # a second look at a kept CPU verdict
        self.encoding = 0  # encode() calls in progress (the probe's and the re-check's own not counted)
        self.encoding_lock = threading.Lock()
        self.last_encoded = time.monotonic()

    @property
    def dim(self) -> int:
        return self.spec.hidden_size

    @property
    def max_length(self) -> int:
        return self.spec.max_positions

    @property
    def loaded(self) -> bool:
        """Weights in and, on the CPU, the body's runtime chosen: another thread may encode now."""
        return self.model is not None and (self.body is not None or self.device.startswith("cuda"))

    def describe(self) -> str:
        where = "CUDA" if self.device.startswith("cuda") else "CPU"
        return f"{self.spec.display_name} on {where} ({RUNTIME_LABELS.get(self.dtype, self.dtype)})"

    def load(self) -> Encoder:
        """Import torch/FlagEmbedding and load the weights; safe to call more than once, from any thread."""
        if self.loaded:
            return self
        with self.load_lock:
            if not self.loaded:
                self._load()
        return self

    def load_in_background(self) -> None:
        """Start loading in a thread of its own (seconds on a CPU) unless loaded. A load that fails here
        fails again, with its reason, where the model is next asked for."""
        if self.loaded:
            return

        def load() -> None:
            try:
                self.load()
            except Exception as error:  # noqa: BLE001 - the next load() reports it
                log.info("loading the model in the background failed: %s", error)

        # Not a daemon: a process that exits meanwhile waits for the load rather than exiting inside an import.
        threading.Thread(target=load, name="model-load").start()

    def _load(self) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.early_body = self._compile_early()
        import torch

        self.device = self.pick_device(torch)
        self.dtype = self.pick_dtype()
        if self.dtype not in ("fp16", "fp32", "bf16") and self.device.startswith("cuda"):
            raise UsageError(f"{self.dtype} is a CPU runtime; on CUDA use fp16 or fp32")
        try:
            from FlagEmbedding import BGEM3FlagModel

            flag = BGEM3FlagModel(
                str(self.spec.path),
                use_fp16=self.dtype == "fp16",
                devices=self.device,
                pooling_method=self.spec.pooling,
                normalize_embeddings=True,
            )
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelError(f"cannot load model {self.spec.name}: {error}") from None
        self.tokenizer = flag.tokenizer
        model = flag.model.to(self.device).eval()
        if self.device == "cpu":
            model.float()
        special = self.tokenizer.special_tokens_map
        self.unused_token_ids = {
            self.tokenizer.convert_tokens_to_ids(special[name])
            for name in ("cls_token", "eos_token", "pad_token", "unk_token")
            if name in special
        }
        self.model = model
        if self.device == "cpu":
            self.body = self.cpu_body()
        self.early_body = None  # on CUDA, or for another runtime: not used
        self.last_encoded = time.monotonic()
        if self.verdict_recheck is not None:
            self.verdict_recheck.start()

    def idle_for(self) -> float:
        """Seconds since this encoder last encoded for its users (0 while it does)."""
        return 0.0 if self.encoding else time.monotonic() - self.last_encoded

    def switch_body(self, runtime: str, body: Callable) -> None:
        """Encode with ``body`` (``runtime``'s, which passed the fidelity gate) from the next batch on."""
        self.body, self.dtype = body, runtime

    def close(self) -> None:
        """Stop background work (the verdict's re-check); the encoder still encodes afterwards."""
        if self.verdict_recheck is not None:
            self.verdict_recheck.stop()

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(ids) for ids in self.thread_tokenizer()(list(texts), truncation=True,
                                                               max_length=self.max_length)["input_ids"])

    def cpu_body(self) -> Callable:
        """The body's runtime: the one asked for, or (auto) the probe's verdict for this machine and model."""
        weight_bytes = sum(p.numel() * 4 for p in self.model.model.parameters())
        fingerprint = self.spec.fingerprint()
        folder = cpu_runtime.conversion_folder(self.spec.path, fingerprint)
        if self.dtype == "auto":
            key = cpu_runtime.machine_key(fingerprint)
            self.verdict = cpu_runtime.read_verdict(folder, key)
            if self.verdict is None:
                self.verdict = self.run_probe(folder, weight_bytes)
                try:
                    cpu_runtime.write_verdict(folder, key, self.verdict)
                except OSError as error:
                    self.on_notice(f"could not keep the CPU probe's verdict in {folder}: {error}")
            self.dtype = self.verdict.chosen
            if recheck.due(self.verdict, time.time()):
                self.verdict_recheck = recheck.VerdictRecheck(self, folder, key, weight_bytes)
        early, self.early_body = self.early_body, None
        if early is not None and early[0] == self.dtype:
            try:
                return early[1].result()
            except (MemoryError, OSError, RuntimeError, ImportError) as error:
                log.info("compiling the OpenVINO body early failed (%s): building it again", error)
        try:
            return cpu_runtime.build_body(self.dtype, self.model.model, folder, weight_bytes, self.on_notice,
                                          self.calibration_inputs)
        except (MemoryError, OSError, RuntimeError, ImportError) as error:
            self.on_notice(f"{RUNTIME_LABELS.get(self.dtype, self.dtype)} is not usable here "
                           f"({error}): encoding with torch fp32")
            self.dtype = cpu_runtime.TORCH_FP32
            return TorchBody(self.model.model, bf16=False)

    def _compile_early(self) -> tuple[str, Future[Callable]] | None:
        """Start compiling the OpenVINO body that this machine's kept verdict (or the runtime asked for)
        names, from its converted graph, while torch and FlagEmbedding import: the compile runs in C++ on
        the other cores (2 s of the BGE-M3-sized model's 6-7 s load on 2 cores). Skipped where a GPU may
        take the model instead."""
        if self.requested_device not in ("auto", "cpu") or (self.requested_device == "auto" and _gpu_possible()):
            return None
        fingerprint = self.spec.fingerprint()
        folder = cpu_runtime.conversion_folder(self.spec.path, fingerprint)
        runtime = self.requested_dtype
        if runtime == "auto":
            verdict = cpu_runtime.read_verdict(folder, cpu_runtime.machine_key(fingerprint))
            runtime = verdict.chosen if verdict is not None else ""
        graph = cpu_runtime.converted_graph(runtime, folder)
        if graph is None:
            return None
        compiled: Future[Callable] = Future()

        def compile_body() -> None:
            try:
                compiled.set_result(cpu_runtime.OpenVinoBody(graph, cpu_runtime.openvino_precision(runtime)))
            except Exception as error:  # noqa: BLE001 - handed to cpu_body, which builds the body again
                compiled.set_exception(error)

        # Not a daemon: a process that exits meanwhile waits for the compile rather than tearing OpenVINO down under it.
        threading.Thread(target=compile_body, name="openvino-compile").start()
        return runtime, compiled

    def calibration_inputs(self) -> list[dict[str, np.ndarray]]:
        """The body's inputs for :data:`~desktop_app.core.model.fidelity.CALIBRATION_TEXTS`, one text each."""
        tokenizer = self.thread_tokenizer()
        return [{name: values.astype(np.int64) for name, values in
                 tokenizer([text], truncation=True, max_length=self.max_length, return_tensors="np").items()
                 if name in ("input_ids", "attention_mask")} for text in fidelity.CALIBRATION_TEXTS]

    def run_probe(self, folder: Path, weight_bytes: int) -> Verdict:
        """Convert the model for every CPU runtime this machine has, then let the probe pick
        (core/model/cpu_runtime.py)."""
        runtimes, rejected = [], {}
        for name in cpu_runtime.CPU_RUNTIMES:
            reason = cpu_runtime.available(name)
            if not reason:
                try:
                    cpu_runtime.convert(name, self.model.model, folder, weight_bytes, self.on_notice,
                                        self.calibration_inputs)
                except (MemoryError, OSError, RuntimeError, ImportError) as error:
                    reason = f"conversion failed: {error}"
            if reason:
                rejected[name] = reason
            else:
                runtimes.append(name)

        def build(name: str) -> Callable:
            return cpu_runtime.build_body(name, self.model.model, folder, weight_bytes, self.on_notice,
                                          self.calibration_inputs)

        def encode_with(body: Callable, probe_texts: list[str]) -> list[Encoding]:
            return self.encode(probe_texts, colbert=True, body=body)

        texts = list(fidelity.PROBE_TEXTS)
        self.on_notice("measuring which runtime encodes fastest on this CPU (once per machine and model)")
        verdict = cpu_runtime.probe(encode_with, build, runtimes, texts, self.count_tokens(texts), weight_bytes,
                                    rejected, cpu_runtime.cpu_model())
        log.info("CPU runtime probe: %s", verdict)
        return verdict

    def pick_device(self, torch: object) -> str:
        cuda_ok = torch.cuda.is_available()
        if self.requested_device == "cuda" and not cuda_ok:
            raise ModelError("CUDA was requested but no CUDA GPU is available to torch")
        return "cuda:0" if self.requested_device in ("auto", "cuda") and cuda_ok else "cpu"

    def pick_dtype(self) -> str:
        on_cuda = self.device.startswith("cuda")
        if self.requested_dtype == "auto":
            return "fp16" if on_cuda else "auto"  # on the CPU the probe decides (cpu_body)
        if self.requested_dtype == "fp16" and not on_cuda:
            raise UsageError("fp16 needs a CUDA GPU; on the CPU use fp32 or bf16")
        return self.requested_dtype

    def encode(self, texts: list[str], max_length: int | None = None, colbert: bool = False,
               checkpoint: Callable[[], None] | None = None, body: Callable | None = None) -> list[Encoding]:
        """Encode ``texts`` (any order, any lengths) and return results in the same order.

        ``checkpoint`` runs before every forward pass: it may block (pause) or raise (cancel).
        """
        if not texts:
            return []
        if self.model is None:
            self.load()
        if body is not None:  # the probe's or the re-check's own timing
            return self._encode(texts, max_length, colbert, checkpoint, body)
        with self.encoding_lock:
            self.encoding += 1
        try:
            return self._encode(texts, max_length, colbert, checkpoint, None)
        finally:
            with self.encoding_lock:
                self.encoding -= 1
                self.last_encoded = time.monotonic()

    def _encode(self, texts: list[str], max_length: int | None, colbert: bool,
                checkpoint: Callable[[], None] | None, body: Callable | None) -> list[Encoding]:
        max_length = min(max_length or self.max_length, self.max_length)
        features = self.thread_tokenizer()(
            list(texts), truncation=True, max_length=max_length, return_attention_mask=False
        )["input_ids"]
        lengths = [len(ids) for ids in features]
        results: list[Encoding | None] = [None] * len(texts)
        pending = deque(plan_batches(lengths, "cuda" if self.device.startswith("cuda") else "cpu"))
        while pending:
            batch = pending.popleft()
            if checkpoint is not None:
                checkpoint()
            try:
                encoded = self.forward([features[i] for i in batch], colbert, body or self.body)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                pending.extendleft(reversed(self.back_off(batch, lengths)))
                continue
            for index, encoding in zip(batch, encoded):
                results[index] = encoding
        return results  # type: ignore[return-value]

    def thread_tokenizer(self) -> object:
        """This thread's copy of the tokenizer: a Hugging Face fast tokenizer sets its truncation
        state on every call, so two threads sharing one (search during indexing) fail with
        "Already borrowed"."""
        tokenizer = getattr(self.per_thread, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self.per_thread.tokenizer = copy.deepcopy(self.tokenizer)
        return tokenizer

    def back_off(self, batch: list[int], lengths: list[int]) -> list[list[int]]:
        """After an out-of-memory error: halve the batch, or at size 1 move to the CPU."""
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if len(batch) > 1:
            half = len(batch) // 2
            return [batch[:half], batch[half:]]
        if not self.device.startswith("cuda"):
            raise ModelError(f"out of memory encoding one chunk of {lengths[batch[0]]} tokens on the CPU")
        self.on_notice(
            f"GPU out of memory on a single {lengths[batch[0]]}-token chunk: continuing on the CPU (slower)"
        )
        self.device, self.dtype = "cpu", "fp32"
        self.model.to("cpu").float()
        self.body = TorchBody(self.model.model, bf16=False)
        return [batch]

    def forward(self, batch_ids: list[list[int]], colbert: bool, body: Callable | None = None) -> list[Encoding]:
        """One padded forward pass; returns dense, lexical weights and optional ColBERT vectors.

        On the CPU ``body`` runs the transformer and the heads follow in torch on the fp32 weights,
        as FlagEmbedding computes them; on CUDA the model runs whole, in fp16.
        """
        import torch

        width = max(len(ids) for ids in batch_ids)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, ids in enumerate(batch_ids):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        if body is not None:
            dense, weights, vectors = self.heads(body(input_ids, mask), input_ids, mask, colbert)
        else:
            inputs = {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}
            with torch.inference_mode():
                out = self.model(inputs, return_dense=True, return_sparse=True, return_colbert_vecs=colbert)
            dense = out["dense_vecs"].float().cpu().numpy()
            weights = out["sparse_vecs"].squeeze(-1).float().cpu().numpy()
            vectors = out["colbert_vecs"].float().cpu().numpy() if colbert else None
        encodings = []
        for row, ids in enumerate(batch_ids):
            encodings.append(Encoding(
                dense=np.ascontiguousarray(dense[row], dtype=np.float32),
                sparse=self.lexical_weights(ids, weights[row]),
                colbert=vectors[row, :len(ids) - 1].copy() if vectors is not None else None,
            ))
        return encodings

    def heads(self, hidden: object, input_ids: object, mask: object,
              colbert: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """BGE-M3's three heads on the body's last hidden state (FlagEmbedding's own functions)."""
        import torch
        import torch.nn.functional as functional

        with torch.inference_mode():
            dense = functional.normalize(self.model._dense_embedding(hidden, mask), dim=-1)
            weights = self.model._sparse_embedding(hidden, input_ids, return_embedding=False).squeeze(-1)
            vectors = functional.normalize(self.model._colbert_embedding(hidden, mask), dim=-1) if colbert else None
        return dense.numpy(), weights.numpy(), vectors.numpy() if vectors is not None else None

    def lexical_weights(self, ids: list[int], weights: np.ndarray) -> dict[int, float]:
        """Token id -> max weight over its occurrences; special tokens and zeros dropped."""
        result: dict[int, float] = {}
        for token, weight in zip(ids, weights[:len(ids)].tolist()):
            if weight > 0 and token not in self.unused_token_ids and weight > result.get(token, 0.0):
                result[token] = weight
        return result

    def lexical_text(self, weights: dict[int, float]) -> dict[str, float]:
        """Lexical weights keyed by token text instead of id, as BGE-M3's ``convert_id_to_token`` gives
        them (each id decoded alone); ids that decode to the same text keep the higher weight."""
        tokenizer = self.thread_tokenizer()
        texts: dict[str, float] = {}
        for token, weight in weights.items():
            text = tokenizer.decode([token])
            if weight > texts.get(text, 0.0):
                texts[text] = weight
        return texts

    def word_tokens(self, text: str) -> dict[str, set[int]]:
        """Each word of ``text`` (lower-cased) -> the ids of the tokens it was cut into.

        Sub-word pieces ("shi", "##mmy") mean little to a reader; mapping tokens back to the
        words they came from lets highlighted terms be whole words.
        """
        self.load()
        encoded = self.thread_tokenizer()(text, add_special_tokens=False, return_offsets_mapping=True)
        words: dict[str, set[int]] = {}
        spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
        for token, (start, _) in zip(encoded["input_ids"], encoded["offset_mapping"]):
            for word_start, word_end in spans:
                if word_start <= start < word_end:
                    words.setdefault(text[word_start:word_end].lower(), set()).add(token)
                    break
        return words


def is_out_of_memory(error: BaseException) -> bool:
    """Only a CUDA out-of-memory error may trigger back-off; everything else surfaces."""
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError)


def _gpu_possible() -> bool:
    """An NVIDIA driver is present (torch may then pick CUDA); cheap, without importing torch."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()
    return shutil.which("nvidia-smi") is not None
