"""BGE-M3 through FlagEmbedding: device and dtype choice, length-sorted batching, OOM backoff.

FlagEmbedding's own ``encode`` runs a trial pass per call, defaults to 512 tokens and retries
forever on any RuntimeError, so we load ``BGEM3FlagModel`` for its weights and heads and drive
its forward pass ourselves. On the CPU the transformer body runs in the runtime the probe chose
(:mod:`~desktop_app.core.model.cpu_runtime`) and the heads in numpy
(:mod:`~desktop_app.core.model.heads`); once a converted graph and the heads are kept, a start
loads neither torch nor FlagEmbedding nor the torch weights (seconds and gigabytes on a laptop).
torch is imported on first use only.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core.errors import ModelError, UsageError
from desktop_app.core.model import cpu_choice, cpu_runtime, fidelity
from desktop_app.core.model.cpu_runtime import RUNTIME_LABELS, TorchBody, Verdict
from desktop_app.core.model.encoding import Encoding
from desktop_app.core.model.heads import Heads
from desktop_app.core.model.recheck import VerdictRecheck
from desktop_app.core.model.resolve import WEIGHT_FILES, ModelSpec
from desktop_app.core.model.tokenizer import ModelTokenizer

if TYPE_CHECKING:
    import torch
    from FlagEmbedding.finetune.embedder.encoder_only.m3.modeling import EncoderOnlyEmbedderM3Model

log = logging.getLogger(__name__)

# transformers' loading is not thread-safe (accelerate's empty-weights context patches torch.nn.Module for the
# whole process): a model loading in one thread while another loads (a re-check's torch weights, another
# engine's model) got weights on the "meta" device and failed with "Cannot copy out of meta tensor".
_FLAG_MODEL_LOAD = threading.Lock()
# Tokens in one CPU forward pass. An OpenVINO body runs one inference at a time (its CPU plugin serialises a
# one-stream body's requests), so a search's query waits for the indexer's pass in progress: with 4,096-token
# passes a BGE-M3-sized model kept a query waiting up to 24 s on a 2-core AVX2 VM, with 512 up to 6.6 s, and it
# encoded as fast (146 and 154 tokens/s; the lite model 2,419-2,532 and 2,337-2,379). bench/pass_size.py.
CPU_TOKENS_PER_BATCH = 512
# What one stage-2 batch claims on a CPU, in multiply-adds (about 12 x hidden size^2 per token and layer): about
# 1 s on two cores (the lite model, 6 layers of 384, at 2,800 tokens/s), and one pass of a BGE-M3-sized model
# (24 of 1,024, 100-260 tokens/s). Newer work (a watcher's new file) waits for the batch under way. Set by the
# model, not by the pace a run measures: the same work claims the same batches in every run.
CPU_BATCH_MULTIPLY_ADDS = 3e10
MAX_CPU_BATCH = 32
# A pass holds texts of one padded width only, each text's length rounded up to WIDTH_STEP, so a text's vectors
# follow from its own length and never from what it was batched with. Measured on the lite model (OpenVINO bf16
# and fp32, torch bf16 and fp32): at one width a text's vectors were bit-identical alone and in batches of 2-8
# (268 cases each), while another width moved them up to 4e-4 in bf16. Before, a file re-indexed alone (a
# watcher's change, a resumed run) got vectors a clean build did not, and a query's vector depended on the other
# searches in its pass. With 8, Cranfield's short abstracts indexed and 50 API clients searched as fast as
# before, within the machine's noise (bench/README.md). Not measured on CUDA.
WIDTH_STEP = 8


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


def cpu_batch_tokens(spec: ModelSpec) -> int:
    """The most tokens one stage-2 batch claims on a CPU (never less than one pass)."""
    per_token = 12 * spec.layers * spec.hidden_size ** 2
    return max(CPU_TOKENS_PER_BATCH, int(CPU_BATCH_MULTIPLY_ADDS // per_token))


def padded_width(tokens: int) -> int:
    """The positions a text of ``tokens`` tokens is encoded at: its length rounded up to ``WIDTH_STEP``
    (``Encoder.forward`` stops at the model's own positions)."""
    return -(-tokens // WIDTH_STEP) * WIDTH_STEP


def plan_batches(lengths: list[int], device_type: str) -> list[list[int]]:
    """Indices grouped into batches of one padded width, longest first.

    A batch never mixes padded widths (see ``WIDTH_STEP``), which also bounds its padding: under one step
    per text, where sixteen concurrent queries of 8-59 tokens in one pass were padded to 1.8x their tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, position = [], 0
    while position < len(order):
        width = padded_width(lengths[order[position]])
        batch = [i for i in order[position:position + batch_size_for(width, device_type)]
                 if padded_width(lengths[i]) == width]  # longest first: the texts of this width lead
        batches.append(batch)
        position += len(batch)
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
        # FlagEmbedding's torch model: on CUDA it runs whole; on the CPU it is there only to convert, probe,
        # re-check or run a torch body, and a start from a kept graph does without it.
        self.model: EncoderOnlyEmbedderM3Model | None = None
        self.torch_lock = threading.Lock()
        self.body: cpu_runtime.Body | None = None  # the transformer body on the CPU; None on CUDA
        self.heads: Heads | None = None  # the three heads in numpy, after the body on the CPU
        self.verdict: Verdict | None = None  # what the CPU probe measured, when it ran
        self.load_lock = threading.Lock()  # two threads asking at once load the weights once
        self.tokenizer: ModelTokenizer | None = None
        self.unused_token_ids: set[int] = set()
        self.early_body: tuple[str, Future[cpu_runtime.Body]] | None = None  # a kept graph's body being built
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
        """The body's runtime chosen and ready (or, on CUDA, the model in): another thread may encode now."""
        if self.tokenizer is None:
            return False
        return self.body is not None or (self.model is not None and self.device.startswith("cuda"))

    def describe(self) -> str:
        where = "CUDA" if self.device.startswith("cuda") else "CPU"
        return f"{self.spec.display_name} on {where} ({RUNTIME_LABELS.get(self.dtype, self.dtype)})"

    def load(self) -> Encoder:
        """Load the tokenizer, the heads and the body (torch and FlagEmbedding where no kept graph does without
        them); safe to call more than once, from any thread."""
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
        self.early_body = cpu_choice.kept_body(self)
        self.tokenizer = ModelTokenizer(self.spec.path)
        self.unused_token_ids = self.tokenizer.unweighted_ids
        if self.early_body is not None and self._load_from_graph(*self.early_body):
            return
        import torch

        self.device = self.pick_device(torch)
        self.dtype = self.pick_dtype()
        if self.dtype not in ("fp16", "fp32", "bf16") and self.device.startswith("cuda"):
            raise UsageError(f"{self.dtype} is a CPU runtime; on CUDA use fp16 or fp32")
        self.model = self._flag_model(self.device, fp16=self.dtype == "fp16")
        self.heads = Heads.of_model(self.model)
        if self.device == "cpu":
            self._keep_heads()
            self.body = cpu_choice.chosen_body(self)
            if self.verdict_recheck is None:
                self.release_torch_model()
        self.early_body = None  # on CUDA, or for another runtime: not used
        self._loaded()

    def _loaded(self) -> None:
        self.last_encoded = time.monotonic()
        if self.verdict_recheck is not None:
            self.verdict_recheck.start()

    def _load_from_graph(self, runtime: str, body: Future[cpu_runtime.Body]) -> bool:
        """Use the kept graph's body with the kept heads: no torch, no FlagEmbedding, no torch weights.
        False (the caller loads with torch) when the heads were never kept or the body failed to build."""
        self.heads = Heads.read(self.heads_file())
        if self.heads is None:
            return False
        try:
            self.body = body.result()
        except Exception as error:  # noqa: BLE001 - a torch load follows, which builds (or refuses) it again
            log.info("building the %s body from its kept graph failed (%s): loading with torch", runtime, error)
            return False
        self.device, self.dtype, self.early_body = "cpu", runtime, None
        cpu_choice.schedule_recheck(self)
        self._loaded()
        return True

    def _flag_model(self, device: str, fp16: bool) -> EncoderOnlyEmbedderM3Model:
        """FlagEmbedding's BGE-M3 model (imports torch and FlagEmbedding: seconds), fp32 on the CPU."""
        try:
            from FlagEmbedding import BGEM3FlagModel

            with _FLAG_MODEL_LOAD:
                flag = BGEM3FlagModel(
                    str(self.spec.path),
                    use_fp16=fp16,
                    devices=device,
                    pooling_method=self.spec.pooling,
                    normalize_embeddings=True,
                )
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelError(f"cannot load model {self.spec.name}: {error}") from None
        model = flag.model.to(device).eval()
        if device == "cpu":
            model.float()
        return model

    def torch_module(self) -> torch.nn.Module:
        """The transformer body in torch on the CPU, loading FlagEmbedding's model now if a graph start did
        without it (the verdict's re-check needs it to build a rival)."""
        with self.torch_lock:
            if self.model is None:
                self.model = self._flag_model("cpu", fp16=False)
            return self.model.model

    def release_torch_model(self) -> None:
        """Let go of the torch weights (gigabytes with BGE-M3) where the CPU body does not run on them."""
        with self.torch_lock:
            if self.device == "cpu" and not isinstance(self.body, TorchBody):
                self.model = None

    def heads_file(self) -> Path:
        folder = cpu_runtime.conversion_folder(self.spec.path, self.spec.fingerprint())
        return folder / f"heads-{self.spec.fingerprint()[:16]}.npz"

    def _keep_heads(self) -> None:
        """Keep the heads beside the conversions, so the next start from a kept graph needs no torch."""
        path = self.heads_file()
        if path.exists() or self.heads is None:
            return
        try:
            self.heads.write(path)
        except OSError as error:
            log.info("could not keep the model's heads in %s: %s", path, error)

    def weight_bytes(self) -> int:
        """The fp32 weights' size: counted when the torch model is in, else the weights file's size."""
        if self.model is not None:
            return sum(p.numel() * 4 for p in self.model.model.parameters())
        return next(((self.spec.path / name).stat().st_size for name in WEIGHT_FILES
                     if (self.spec.path / name).is_file()), 0)

    def idle_for(self) -> float:
        """Seconds since this encoder last encoded for its users (0 while it does)."""
        return 0.0 if self.encoding else time.monotonic() - self.last_encoded

    def switch_body(self, runtime: str, body: cpu_runtime.Body) -> None:
        """Encode with ``body`` (``runtime``'s, which passed the fidelity gate) from the next batch on."""
        self.body, self.dtype = body, runtime

    def close(self) -> None:
        """Stop background work (the verdict's re-check); the encoder still encodes afterwards."""
        if self.verdict_recheck is not None:
            self.verdict_recheck.stop()

    def count_tokens(self, texts: Sequence[str], max_length: int | None = None) -> int:
        return sum(len(ids) for ids in self.tokenizer.ids(texts, min(max_length or self.max_length, self.max_length)))

    def calibration_inputs(self) -> list[dict[str, np.ndarray]]:
        """The body's inputs for :data:`~desktop_app.core.model.fidelity.CALIBRATION_TEXTS`, one text each."""
        inputs = []
        for ids in self.tokenizer.ids(fidelity.CALIBRATION_TEXTS, self.max_length):
            row = np.array([ids], dtype=np.int64)
            inputs.append({"input_ids": row, "attention_mask": np.ones_like(row)})
        return inputs

    def pick_device(self, torch: object) -> str:
        cuda_ok = torch.cuda.is_available()
        if self.requested_device == "cuda" and not cuda_ok:
            raise ModelError("CUDA was requested but no CUDA GPU is available to torch")
        return "cuda:0" if self.requested_device in ("auto", "cuda") and cuda_ok else "cpu"

    def pick_dtype(self) -> str:
        on_cuda = self.device.startswith("cuda")
        if self.requested_dtype == "auto":
            return "fp16" if on_cuda else "auto"  # on the CPU the probe decides (cpu_choice.chosen_body)
        if self.requested_dtype == "fp16" and not on_cuda:
            raise UsageError("fp16 needs a CUDA GPU; on the CPU use fp32 or bf16")
        return self.requested_dtype

    def encode(self, texts: list[str], max_length: int | None = None, colbert: bool = False,
               checkpoint: Callable[[], None] | None = None,
               body: cpu_runtime.Body | None = None) -> list[Encoding]:
        """Encode ``texts`` (any order, any lengths) and return results in the same order.

        ``checkpoint`` runs before every forward pass: it may block (pause) or raise (cancel).
        """
        if not texts:
            return []
        if body is not None:  # the probe's or the re-check's own timing
            return self._encode(texts, max_length, colbert, checkpoint, body)
        if not self.loaded:
            self.load()
        with self.encoding_lock:
            self.encoding += 1
        try:
            return self._encode(texts, max_length, colbert, checkpoint, None)
        finally:
            with self.encoding_lock:
                self.encoding -= 1
                self.last_encoded = time.monotonic()

    def _encode(self, texts: list[str], max_length: int | None, colbert: bool,
                checkpoint: Callable[[], None] | None, body: cpu_runtime.Body | None) -> list[Encoding]:
        max_length = min(max_length or self.max_length, self.max_length)
        features = self.tokenizer.ids(texts, max_length)
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

    def forward(self, batch_ids: list[list[int]], colbert: bool,
                body: cpu_runtime.Body | None = None) -> list[Encoding]:
        """One padded forward pass; returns dense, lexical weights and optional ColBERT vectors.

        On the CPU ``body`` runs the transformer and the heads follow in numpy on the fp32 weights, as
        FlagEmbedding defines them; on CUDA the model runs whole, in fp16.
        """
        longest = max(len(ids) for ids in batch_ids)
        width = max(longest, min(padded_width(longest), self.max_length))  # never past the model's positions
        input_ids = np.full((len(batch_ids), width), self.tokenizer.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch_ids), width), dtype=np.int64)
        for row, ids in enumerate(batch_ids):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        if body is not None:
            dense, weights, vectors = self.heads(body(input_ids, mask), mask, colbert)
        else:
            import torch

            inputs = {"input_ids": torch.from_numpy(input_ids).to(self.device),
                      "attention_mask": torch.from_numpy(mask).to(self.device)}
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
        texts: dict[str, float] = {}
        for token, weight in weights.items():
            text = self.tokenizer.decode([token])
            if weight > texts.get(text, 0.0):
                texts[text] = weight
        return texts

    def word_tokens(self, text: str) -> dict[str, set[int]]:
        """Each word of ``text`` (lower-cased) -> the ids of the tokens it was cut into.

        Sub-word pieces ("shi", "##mmy") mean little to a reader; mapping tokens back to the
        words they came from lets highlighted terms be whole words.
        """
        self.load()
        ids, offsets = self.tokenizer.pieces(text)
        words: dict[str, set[int]] = {}
        spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
        for token, (start, _) in zip(ids, offsets):
            for word_start, word_end in spans:
                if word_start <= start < word_end:
                    words.setdefault(text[word_start:word_end].lower(), set()).add(token)
                    break
        return words


def is_out_of_memory(error: BaseException) -> bool:
    """Only a CUDA out-of-memory error may trigger back-off; everything else surfaces. (Without torch
    imported, as on a start from a kept graph, there is none.)"""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(error, torch.cuda.OutOfMemoryError)
