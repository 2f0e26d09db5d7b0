"""The encoder: batching plan, OOM back-off, and agreement with FlagEmbedding's own encode."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from desktop_app.core.errors import ModelError
from desktop_app.core.model.encoder import (
    WIDTH_STEP,
    Encoder,
    Encoding,
    batch_size_for,
    padded_width,
    plan_batches,
)

TEXTS = [
    "Wing stall at high angle of attack.",
    "Boundary layer separation on the upper surface of an airfoil causes a sudden loss of lift " * 3,
    "Heat",
    "Panel flutter in supersonic flow is an aeroelastic instability.",
]


@pytest.fixture(scope="module")
def flag_model(lite_model_dir):
    from FlagEmbedding import BGEM3FlagModel

    return BGEM3FlagModel(str(lite_model_dir), use_fp16=False, devices="cpu", pooling_method="mean")


def test_gpu_batch_sizes_follow_chunk_length() -> None:
    assert batch_size_for(8000, "cuda") == 1
    assert batch_size_for(3000, "cuda") == 2
    assert batch_size_for(1024, "cuda") == 8
    assert 16 <= batch_size_for(300, "cuda") <= 32


def test_batches_are_length_sorted_and_cover_every_text_once() -> None:
    lengths = [5, 600, 40, 3000, 600, 12, 2995]
    batches = plan_batches(lengths, "cuda")
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert batches[0] == [3, 6]  # a 3,000-position batch holds two sequences


def test_cpu_batches_stay_within_a_token_budget() -> None:
    lengths = [512] * 40
    assert all(len(batch) * 512 <= 8192 for batch in plan_batches(lengths, "cpu"))


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_a_batch_holds_texts_of_one_padded_width(device_type: str) -> None:
    """Sixteen concurrent queries of 8-59 tokens in one batch were padded to 1.8x their own tokens, and each
    text's vectors depended on the longest text beside it; a batch now holds one padded width."""
    lengths = [59, 40, 36, 30, 28, 25, 22, 22, 20, 18, 17, 15, 13, 12, 9, 8, 512, 505, 497, 496]
    batches = plan_batches(lengths, device_type)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len({padded_width(lengths[i]) for i in batch}) == 1, batch
        assert all(padded_width(lengths[i]) - lengths[i] < WIDTH_STEP for i in batch)
    sizes = {"cpu": [1, 1, 1, 1, 1, 2, 3, 5, 4, 1], "cuda": [2, 1, 1, 1, 2, 3, 5, 4, 1]}[device_type]
    assert [len(batch) for batch in batches] == sizes, "texts of one width share a pass"
    assert padded_width(512) == 512 and padded_width(497) == 504 and padded_width(496) == 496


def test_a_texts_vectors_do_not_depend_on_what_it_is_batched_with(encoder: Encoder) -> None:
    """A chunk re-encoded alone (a watcher's change, a resumed run) got vectors a clean build, which batched it
    with a longer chunk, did not: up to 4e-4 apart in bf16, so an index kept up to date ranked near-ties
    differently from a clean rebuild (bench/soak.py). Its vectors are now the same to the last bit."""
    text = TEXTS[1]
    longer = text + " The stall spreads from the wing root towards the tips as the angle grows."
    twin = text.replace("sudden ", "")  # shorter, but of the same padded width: the same pass as ``text``
    lengths = [len(ids) for ids in encoder.tokenizer.ids([text, longer, twin], encoder.max_length)]
    assert padded_width(lengths[0]) != padded_width(lengths[1]) and lengths[0] > 0.75 * lengths[1]
    assert padded_width(lengths[0]) == padded_width(lengths[2]) and lengths[0] != lengths[2]
    alone = encoder.encode([text], colbert=True)[0]
    batched = encoder.encode([longer, TEXTS[0], twin, text], colbert=True)[3]
    assert np.array_equal(alone.dense, batched.dense)
    assert np.array_equal(alone.colbert, batched.colbert)
    assert alone.sparse == batched.sparse


def test_cpu_passes_are_short_so_a_search_waits_little(encoder: Encoder, monkeypatch) -> None:
    """An OpenVINO body runs one inference at a time, so a search waits for the indexer's pass in progress:
    4,096-token passes kept a BGE-M3-sized model's query waiting up to 24 s on a 2-core CPU. An index run's
    chunks now go at most 512 tokens a pass (bench/pass_size.py: as fast)."""
    passes: list[int] = []
    forward = encoder.forward

    def counted(batch_ids, colbert, body=None):
        passes.append(len(batch_ids) * max(map(len, batch_ids)))
        return forward(batch_ids, colbert, body)

    monkeypatch.setattr(encoder, "forward", counted)
    chunks = [f"part {n}: " + "the wing lifts " * (20 + 40 * (n % 3)) for n in range(12)]
    encoder.encode(chunks)
    assert max(passes) <= 512 < sum(passes), "every pass short, several passes"
    assert len(passes) < len(chunks), "short chunks still share a pass"


def test_dense_and_lexical_weights_match_flagembedding(encoder: Encoder, flag_model) -> None:
    ours = encoder.encode(TEXTS)
    theirs = flag_model.encode(TEXTS, batch_size=2, max_length=512, return_dense=True, return_sparse=True)
    for mine, dense, lexical in zip(ours, theirs["dense_vecs"], theirs["lexical_weights"]):
        np.testing.assert_allclose(mine.dense, dense, atol=1e-4)
        assert set(mine.sparse) == {int(t) for t in lexical}
        for token, weight in lexical.items():
            assert mine.sparse[int(token)] == pytest.approx(float(weight), abs=1e-4)


def test_colbert_vectors_match_flagembedding(encoder: Encoder, flag_model) -> None:
    ours = encoder.encode(TEXTS[:2], colbert=True)
    theirs = flag_model.encode(TEXTS[:2], batch_size=2, max_length=512, return_dense=False, return_colbert_vecs=True)
    for mine, vectors in zip(ours, theirs["colbert_vecs"]):
        np.testing.assert_allclose(mine.colbert, vectors, atol=1e-4)


def test_lite_model_loads_its_heads_instead_of_random_ones(lite_model_dir, caplog) -> None:
    from FlagEmbedding import BGEM3FlagModel

    with caplog.at_level(logging.INFO):
        BGEM3FlagModel(str(lite_model_dir), use_fp16=False, devices="cpu")
    assert "loading existing colbert_linear and sparse_linear" in caplog.text
    assert "new initialize" not in caplog.text


def test_sparse_head_weights_rare_words_above_common_ones(encoder: Encoder) -> None:
    weights = encoder.encode(["the flutter of the wing"])[0].sparse
    by_word = {encoder.tokenizer.token(token): weight for token, weight in weights.items()}
    assert by_word["flutter"] > 3 * by_word["the"]


def test_cuda_out_of_memory_halves_the_batch_then_falls_back_to_cpu(spec) -> None:
    notices: list[str] = []
    fresh = Encoder(spec, device="cpu", dtype="fp32", on_notice=notices.append).load()
    texts = [f"Panel flutter case {n}." for n in range(4)]  # one padded width: one batch of four
    expected = fresh.encode(texts)
    real_forward = fresh.forward
    sizes: list[int] = []

    def forward_that_runs_out_of_gpu_memory(batch_ids, colbert, body):
        sizes.append(len(batch_ids))
        if fresh.device.startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(batch_ids, colbert, body)

    fresh.forward = forward_that_runs_out_of_gpu_memory
    fresh.device = "cuda:0"
    results = fresh.encode(texts)
    assert sizes[:3] == [4, 2, 1]
    assert fresh.device == "cpu"
    assert len(notices) == 1 and "continuing on the CPU" in notices[0]
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got.dense, want.dense, atol=1e-5)


def test_other_errors_surface_at_once_without_retrying(spec) -> None:
    fresh = Encoder(spec, device="cpu").load()
    calls = []

    def broken_forward(batch_ids, colbert, body=None):
        calls.append(len(batch_ids))
        raise RuntimeError("shape mismatch")

    fresh.forward = broken_forward
    with pytest.raises(RuntimeError, match="shape mismatch"):
        fresh.encode(TEXTS)
    assert len(calls) == 1, "the first forward pass raised it, and nothing was retried"


def test_out_of_memory_on_one_chunk_on_the_cpu_is_a_clear_error(spec) -> None:
    fresh = Encoder(spec, device="cpu").load()

    def always_out_of_memory(batch_ids, colbert, body=None):
        raise torch.cuda.OutOfMemoryError("simulated")

    fresh.forward = always_out_of_memory
    with pytest.raises(ModelError, match="out of memory encoding one chunk"):
        fresh.encode(["one text"])


def test_cuda_requested_without_a_gpu_is_a_clear_error(spec) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelError, match="no CUDA GPU"):
        Encoder(spec, device="cuda").load()


def test_texts_longer_than_the_model_window_are_truncated(encoder: Encoder) -> None:
    long_text = "supersonic " * 2000
    assert encoder.encode([long_text])[0].dense.shape == (encoder.dim,)


def test_the_cpu_probe_keeps_only_runtimes_that_pass_the_fidelity_gate_and_its_verdict(unconverted_spec,
                                                                                      monkeypatch) -> None:
    """A runtime whose signals drift from fp32 (here torch bf16 made to add noise) is rejected with its
    figures; the fastest that passes encodes; the verdict is kept and read at the next load."""

    from desktop_app.core.model import cpu_runtime

    copy = unconverted_spec

    class NoisyBody(cpu_runtime.TorchBody):
        def __call__(self, input_ids, mask):
            hidden = super().__call__(input_ids, mask)
            return hidden + 0.5 * hidden.std() * np.random.default_rng(0).standard_normal(hidden.shape, np.float32)

    real_build = cpu_runtime.build_body

    def build(runtime, module, folder, weight_bytes, on_progress, calibration=None):
        if runtime == cpu_runtime.TORCH_BF16:
            return NoisyBody(module, bf16=False)
        return real_build(runtime, module, folder, weight_bytes, on_progress, calibration)

    monkeypatch.setattr(cpu_runtime, "build_body", build)
    monkeypatch.setattr(cpu_runtime, "available", lambda runtime: "" if runtime in ("fp32", "bf16") else "absent here")
    first = Encoder(copy, device="cpu", dtype="auto").load()
    verdict = first.verdict
    assert verdict.chosen == "fp32" and first.dtype == "fp32" and first.describe().endswith("on CPU (fp32)")
    assert verdict.rejected["bf16"].startswith("fidelity below the gate: dense cosine")
    assert verdict.fidelity["bf16"]["dense_cosine"] < 0.99 and verdict.tokens_per_s["fp32"] > 0
    assert verdict.rejected["openvino-fp32"] == "absent here"

    def no_probe(*args, **kwargs):
        raise AssertionError("the kept verdict must be used")

    monkeypatch.setattr(cpu_runtime, "probe", no_probe)
    again = Encoder(copy, device="cpu", dtype="auto").load()
    assert again.dtype == "fp32" and again.verdict == verdict
    assert again.encode(TEXTS)[0].dense @ first.encode(TEXTS)[0].dense == pytest.approx(1.0, abs=1e-5)


def test_fidelity_compares_every_signal_with_fp32() -> None:
    from desktop_app.core.model import fidelity
    rng = np.random.default_rng(0)
    unit = rng.standard_normal(8).astype(np.float32)
    unit /= np.linalg.norm(unit)
    vectors = np.eye(3, 8, dtype=np.float32)
    weights = {token: 1.0 / token for token in range(1, 13)}
    reference = Encoding(unit, weights, vectors)
    assert fidelity.measure([reference], [reference]).passes
    two_swapped = {**weights, 9: 0.0, 10: 0.0, 20: 0.9, 21: 0.8}  # two of the top ten replaced
    found = fidelity.measure([reference], [Encoding(unit, two_swapped, vectors)])
    assert found.sparse_top_overlap == pytest.approx(0.8) and not found.passes
    assert not fidelity.measure([reference], [Encoding(unit, weights, np.roll(vectors, 1, axis=1))]).passes


def test_a_runtime_that_cannot_convert_falls_back_to_fp32_with_one_line(unconverted_spec, monkeypatch) -> None:
    from desktop_app.core.model import cpu_runtime
    def no_room(*args, **kwargs):
        raise MemoryError("converting the model needs about 5.6 GiB of free memory, 1.2 GiB are free")

    monkeypatch.setattr(cpu_runtime, "build_body", no_room)
    notices = []
    fallback = Encoder(unconverted_spec, device="cpu", dtype="onnx-int8", on_notice=notices.append).load()
    assert fallback.dtype == "fp32" and fallback.encode(TEXTS)[0].dense.shape == (fallback.dim,)
    assert notices == ["ONNX Runtime int8 is not usable here (converting the model needs about 5.6 GiB of free "
                       "memory, 1.2 GiB are free): encoding with torch fp32"]


def test_bf16_encodings_stay_close_to_fp32(spec, encoder) -> None:
    bf16 = Encoder(spec, device="cpu", dtype="bf16").load()
    for full, half in zip(encoder.encode(TEXTS), bf16.encode(TEXTS)):
        assert float(full.dense @ half.dense) > 0.99


def test_search_and_indexing_threads_can_share_one_encoder(encoder: Encoder) -> None:
    """The window searches while the indexer encodes with the same Encoder."""
    import threading

    errors: list[BaseException] = []
    long_texts = ["boundary layer separation on a swept wing " * 400] * 32

    def hammer(work) -> None:
        try:
            for _ in range(15):
                work()
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(lambda: encoder.encode(long_texts, max_length=16),)),
               threading.Thread(target=hammer, args=(lambda: encoder.word_tokens("jet noise of chevrons"),)),
               threading.Thread(target=hammer, args=(lambda: encoder.encode(["short query"]),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]


def test_openvino_int8_is_offered_only_where_int8_instructions_pay(monkeypatch) -> None:
    from desktop_app.core.model import cpu_runtime

    monkeypatch.setattr(cpu_runtime, "cpu_flags", lambda: {"avx2", "fma"})
    assert "VNNI or AMX" in cpu_runtime.available(cpu_runtime.OPENVINO_INT8)
    monkeypatch.setattr(cpu_runtime, "cpu_flags", lambda: {"avx2", "avx512_vnni"})
    assert cpu_runtime.available(cpu_runtime.OPENVINO_INT8) == ""
    monkeypatch.setattr(cpu_runtime, "_version", lambda name: f"{name} absent" if name == "nncf" else "1.0")
    assert cpu_runtime.available(cpu_runtime.OPENVINO_INT8) == "OpenVINO or NNCF is not installed"


def test_int8_calibration_texts_are_not_the_probe_texts() -> None:
    """The gate judges a quantised model on texts it was not calibrated on."""
    from desktop_app.core.model import fidelity

    assert not set(fidelity.CALIBRATION_TEXTS) & set(fidelity.PROBE_TEXTS)


def test_a_kept_graph_and_heads_start_without_torch_and_encode_as_fp32(unconverted_spec, tmp_path) -> None:
    """Once the graph is converted and the heads kept, a start with the verdict on it imports neither torch
    nor FlagEmbedding nor transformers (seconds of a CPU start, and the torch weights' gigabytes), even with
    a re-check due; its three signals still match torch fp32's."""
    import json
    import subprocess
    import sys

    from desktop_app.core.model import cpu_runtime

    copy = unconverted_spec
    Encoder(copy, device="cpu", dtype=cpu_runtime.OPENVINO_FP32).load()  # converts the graph, keeps the heads
    folder = cpu_runtime.conversion_folder(copy.path, copy.fingerprint())
    cpu_runtime.write_verdict(folder, cpu_runtime.machine_key(copy.fingerprint()), cpu_runtime.Verdict(
        cpu_runtime.OPENVINO_FP32, {cpu_runtime.OPENVINO_FP32: 900.0, cpu_runtime.TORCH_FP32: 600.0}))
    texts = [f"{text} (copy {n})" for n in range(12) for text in TEXTS]  # several batches
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    code = ("import json, sys\n"
            "from pathlib import Path\n"
            "from desktop_app.core.model.encoder import Encoder\n"
            "from desktop_app.core.model.resolve import load_spec\n"
            "encoder = Encoder(load_spec(Path(sys.argv[1])), device='cpu', dtype='auto').load()\n"
            "found = encoder.encode(json.load(open(sys.argv[2])), colbert=True)\n"
            "print(json.dumps({'runtime': encoder.dtype, 'recheck': encoder.verdict_recheck is not None,\n"
            "                  'imported': sorted({'torch', 'FlagEmbedding', 'transformers'} & set(sys.modules)),\n"
            "                  'dense': [e.dense.tolist() for e in found],\n"
            "                  'sparse': [sorted(e.sparse) for e in found],\n"
            "                  'colbert': [e.colbert.tolist() for e in found]}))\n"
            "encoder.close()\n")
    done = subprocess.run([sys.executable, "-c", code, str(copy.path), str(tmp_path / "texts.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    child = json.loads(done.stdout)
    assert child["runtime"] == cpu_runtime.OPENVINO_FP32 and child["recheck"] and child["imported"] == []
    reference = Encoder(copy, device="cpu", dtype="fp32").encode(texts, colbert=True)
    for want, dense, sparse, colbert in zip(reference, child["dense"], child["sparse"], child["colbert"]):
        assert float(want.dense @ np.array(dense)) == pytest.approx(1.0, abs=1e-4)
        assert sorted(want.sparse) == sparse
        np.testing.assert_allclose(np.array(colbert), want.colbert, atol=2e-3)


def test_without_kept_heads_the_graphs_body_compiles_while_torch_loads(unconverted_spec, monkeypatch) -> None:
    """A graph converted before the heads were kept: the compile (2 s of a BGE-M3-sized model's load)
    starts before torch is imported, and that body is the one used: nothing is built again."""
    from desktop_app.core.model import cpu_runtime

    copy = unconverted_spec
    first = Encoder(copy, device="cpu", dtype=cpu_runtime.OPENVINO_FP32).load()  # converts the graph once
    texts = [f"{text} (copy {n})" for n in range(20) for text in TEXTS]  # several batches
    reference = [encoding.dense for encoding in Encoder(copy, device="cpu", dtype="fp32").encode(texts)]
    first.heads_file().unlink()
    events: list[str] = []
    real_body = cpu_runtime.OpenVinoBody

    class Recorded(real_body):
        def __init__(self, graph, precision, cache=None):
            events.append("compile")
            super().__init__(graph, precision, cache)

    def built_again(*args, **kwargs):
        raise AssertionError("the early body must be used")

    import FlagEmbedding

    real_model = FlagEmbedding.BGEM3FlagModel

    def model(*args, **kwargs):
        events.append("weights")
        return real_model(*args, **kwargs)

    monkeypatch.setattr(cpu_runtime, "OpenVinoBody", Recorded)
    monkeypatch.setattr(cpu_runtime, "build_body", built_again)
    monkeypatch.setattr(FlagEmbedding, "BGEM3FlagModel", model)
    loaded = Encoder(copy, device="cpu", dtype=cpu_runtime.OPENVINO_FP32).load()
    assert events == ["compile", "weights"] and isinstance(loaded.body, Recorded) and loaded.early_body is None
    assert loaded.describe().endswith("(OpenVINO fp32)") and loaded.heads_file().exists()
    assert loaded.model is None  # the torch weights are let go: the body does not run on them
    found = [encoding.dense for encoding in loaded.encode(texts)]
    assert [float(a @ b) for a, b in zip(found, reference)] == pytest.approx([1.0] * len(texts), abs=1e-4)


def test_the_kept_openvino_body_starts_from_its_cache_and_survives_a_damaged_one(unconverted_spec,
                                                                                 monkeypatch) -> None:
    """Loading OpenVINO's cached body took 0.56 s against 2.2-2.4 s to compile the BGE-M3-sized int8 graph at
    every start. Only the kept runtime's cache stays; a truncated one compiles again, with the same output;
    a disk without the room writes none."""
    import shutil

    from desktop_app.core.model import cpu_runtime

    copy = unconverted_spec
    Encoder(copy, device="cpu", dtype=cpu_runtime.OPENVINO_FP32).load()  # converts the graph
    folder = cpu_runtime.conversion_folder(copy.path, copy.fingerprint())
    cache = folder / cpu_runtime.OPENVINO_CACHE / cpu_runtime.OPENVINO_FP32
    stale = folder / cpu_runtime.OPENVINO_CACHE / cpu_runtime.OPENVINO_BF16
    stale.mkdir(parents=True)
    (stale / "blob").write_bytes(b"an old verdict's body")
    ids = np.array([[101, 7592, 2088, 102], [101, 2088, 102, 0]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    compiled = cpu_runtime.body_from_graph(cpu_runtime.OPENVINO_FP32, folder)(ids, mask)
    blobs = [path for path in cache.iterdir() if path.is_file()]
    assert blobs and not stale.exists()
    np.testing.assert_allclose(cpu_runtime.body_from_graph(cpu_runtime.OPENVINO_FP32, folder)(ids, mask), compiled,
                               atol=1e-5)
    for blob in blobs:
        blob.write_bytes(blob.read_bytes()[:len(blob.read_bytes()) // 2])
    np.testing.assert_allclose(cpu_runtime.body_from_graph(cpu_runtime.OPENVINO_FP32, folder)(ids, mask), compiled,
                               atol=1e-5)
    shutil.rmtree(cache)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12, 0))
    cpu_runtime.body_from_graph(cpu_runtime.OPENVINO_FP32, folder)
    assert not cache.exists()


def test_a_rival_replaces_the_kept_verdict_only_after_winning_two_rechecks() -> None:
    from desktop_app.core.model import cpu_runtime, recheck

    kept = cpu_runtime.Verdict("openvino-bf16", {"openvino-bf16": 400.0, "bf16": 300.0, "fp32": 100.0})
    assert recheck.due(kept, now=1.0) and recheck.rival_of(kept) == "bf16"
    close_call = recheck.judged(kept, "bf16", {"openvino-bf16": 400.0, "bf16": 420.0}, now=10.0)
    assert close_call.chosen == "openvino-bf16" and close_call.challenger == "" and not recheck.due(close_call, 20.0)
    once = recheck.judged(kept, "bf16", {"openvino-bf16": 300.0, "bf16": 400.0}, now=10.0)
    assert once.chosen == "openvino-bf16" and once.challenger == "bf16"
    assert not recheck.due(once, 10.0 + 60) and recheck.due(once, 10.0 + recheck.RECHECK_CHALLENGED_AFTER_S)
    twice = recheck.judged(once, "bf16", {"openvino-bf16": 300.0, "bf16": 400.0}, now=4000.0)
    assert twice.chosen == "bf16" and twice.challenger == "" and twice.tokens_per_s["bf16"] == 400.0
    with pytest.raises(cpu_runtime.RaceStopped):
        cpu_runtime.time_race(lambda body, texts: [], {"a": print}, ["text"], 10, keep_going=lambda: False)


def test_an_idle_encoder_rechecks_a_kept_verdict_and_switches_to_the_faster_runtime(unconverted_spec,
                                                                                    monkeypatch) -> None:
    """The probe once chose a runtime in a busy moment (here made slow on purpose); with the encoder idle
    on a quiet machine the re-check times it against its rival, and after two wins the rival encodes,
    at once and at the next start. Closing the encoder stops the re-check."""
    import time

    from desktop_app.core.model import cpu_runtime, recheck

    copy = unconverted_spec
    folder = cpu_runtime.conversion_folder(copy.path, copy.fingerprint())
    key = cpu_runtime.machine_key(copy.fingerprint())
    cpu_runtime.write_verdict(folder, key, cpu_runtime.Verdict(
        cpu_runtime.OPENVINO_FP32, {cpu_runtime.OPENVINO_FP32: 900.0, cpu_runtime.TORCH_FP32: 600.0}))

    class SlowBody(cpu_runtime.TorchBody):
        def __call__(self, input_ids, mask):
            started = time.perf_counter()
            hidden = super().__call__(input_ids, mask)
            # Three times as slow, and more: a busy machine's noise cannot decide the race.
            time.sleep(0.3 + 2 * (time.perf_counter() - started))
            return hidden

    def build(runtime, module, folder, weight_bytes, on_progress, calibration=None):
        return SlowBody(module, bf16=False) if runtime == cpu_runtime.OPENVINO_FP32 else \
            cpu_runtime.TorchBody(module, bf16=False)

    monkeypatch.setattr(cpu_runtime, "build_body", build)
    monkeypatch.setattr(recheck, "IDLE_S", 0.3)
    monkeypatch.setattr(recheck, "POLL_S", 0.05)
    monkeypatch.setattr(recheck, "RECHECK_CHALLENGED_AFTER_S", 0.0)
    monkeypatch.setattr(recheck, "machine_is_quiet", lambda: True)
    monkeypatch.setattr(cpu_runtime, "PROBE_ROUNDS", 1)  # the slow body is slow enough in every round
    loaded = Encoder(copy, device="cpu", dtype="auto").load()
    assert loaded.dtype == cpu_runtime.OPENVINO_FP32 and isinstance(loaded.body, SlowBody)
    deadline = time.monotonic() + 60
    while loaded.dtype != cpu_runtime.TORCH_FP32 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert loaded.dtype == cpu_runtime.TORCH_FP32 and not isinstance(loaded.body, SlowBody), loaded.verdict
    loaded.verdict_recheck.thread.join(10)
    assert not loaded.verdict_recheck.thread.is_alive()
    kept = cpu_runtime.read_verdict(folder, key)
    assert kept.chosen == cpu_runtime.TORCH_FP32 and kept.challenger == "" and kept.rechecked_at > 0
    assert kept.tokens_per_s[cpu_runtime.TORCH_FP32] > kept.tokens_per_s[cpu_runtime.OPENVINO_FP32]
    again = Encoder(copy, device="cpu", dtype="auto").load()
    assert again.dtype == cpu_runtime.TORCH_FP32 and again.verdict_recheck is None  # not due for a month

    cpu_runtime.write_verdict(folder, key, cpu_runtime.Verdict(
        cpu_runtime.OPENVINO_FP32, {cpu_runtime.OPENVINO_FP32: 900.0, cpu_runtime.TORCH_FP32: 600.0}))
    monkeypatch.setattr(recheck, "IDLE_S", 3600.0)
    waiting = Encoder(copy, device="cpu", dtype="auto").load()
    assert waiting.verdict_recheck.thread.is_alive()
    waiting.close()
    waiting.verdict_recheck.thread.join(5)
    assert not waiting.verdict_recheck.thread.is_alive() and waiting.dtype == cpu_runtime.OPENVINO_FP32


def test_the_lexical_gate_ignores_weights_too_small_to_rank_anything() -> None:
    """Seen on the BGE-M3-sized model with real BGE-M3's vocabulary: fp32 gave one text a single token of
    weight 0.006 (others reach 0.18), bf16 rounded it to 0, and the gate said "top-10 lexical tokens kept
    0%" for a runtime whose vectors kept cosine 0.9999. A real change among the material tokens still fails."""
    from desktop_app.core.model import fidelity

    unit = np.ones(4, dtype=np.float32) / 2
    strong = {1: 0.18, 2: 0.15, 3: 0.12, 4: 0.09}
    reference = [Encoding(unit, strong, None), Encoding(unit, {7: 0.006}, None), Encoding(unit, {}, None)]
    rounded = [Encoding(unit, {1: 0.17, 2: 0.15, 3: 0.11, 4: 0.09}, None), Encoding(unit, {}, None),
               Encoding(unit, {8: 0.004}, None)]
    assert fidelity.measure(reference, rounded).sparse_top_overlap == 1.0
    reordered = [Encoding(unit, {1: 0.17, 2: 0.15, 3: 0.11, 9: 0.10, 4: 0.001}, None), *rounded[1:]]
    assert fidelity.measure(reference, reordered).sparse_top_overlap == 0.75
    invented = [rounded[0], Encoding(unit, {5: 0.12}, None), rounded[2]]
    assert fidelity.measure(reference, invented).sparse_top_overlap == 0.0


def test_the_probe_converts_first_then_holds_two_bodies_at_most_and_skips_one_that_would_not_fit(
        unconverted_spec, monkeypatch) -> None:
    """With real BGE-M3's size every compiled body held at once, and NNCF's quantisation beside them, took
    the probe to 16.9 GiB; now conversions come first, each candidate races the fastest so far and the
    slower is released, and a body that would not fit in the free memory is skipped with its reason."""
    from desktop_app.core.model import conversion, cpu_runtime

    copy = unconverted_spec
    events: list[str] = []
    alive: list[int] = [0]
    most: list[int] = [0]

    class Counted(cpu_runtime.TorchBody):
        def __init__(self, module) -> None:
            super().__init__(module, bf16=False)
            alive[0] += 1
            most[0] = max(most[0], alive[0])

        def __del__(self) -> None:
            alive[0] -= 1

    def build(runtime, module, folder, weight_bytes, on_progress, calibration=None):
        events.append(f"build {runtime}")
        if runtime == cpu_runtime.OPENVINO_BF16:
            raise AssertionError("a body that does not fit must not be built")
        return Counted(module)

    monkeypatch.setattr(cpu_runtime, "convert", lambda runtime, *args: events.append(f"convert {runtime}"))
    monkeypatch.setattr(cpu_runtime, "build_body", build)
    monkeypatch.setattr(cpu_runtime, "available", lambda runtime: "")
    monkeypatch.setattr(cpu_runtime, "BODY_MEMORY_SHARE", {**cpu_runtime.BODY_MEMORY_SHARE,
                                                           cpu_runtime.OPENVINO_BF16: 1e6})
    monkeypatch.setattr(conversion, "memory_available", lambda: 1 << 40)  # 1 TiB: all but that one fit
    monkeypatch.setattr(cpu_runtime, "PROBE_ROUNDS", 1)  # what is held matters here, not the timing
    verdict = Encoder(copy, device="cpu", dtype="auto").load().verdict
    converted = [event for event in events if event.startswith("convert")]
    assert len(converted) == len(cpu_runtime.CPU_RUNTIMES) and events[:len(converted)] == converted
    assert verdict.rejected[cpu_runtime.OPENVINO_BF16].startswith("skipped: it needs about")
    assert set(verdict.tokens_per_s) == set(cpu_runtime.CPU_RUNTIMES) - {cpu_runtime.OPENVINO_BF16}
    assert most[0] <= 3  # torch fp32 (the reference), the fastest so far, the challenger


def test_the_probe_races_runtimes_on_passages_as_long_as_the_chunks(unconverted_spec, monkeypatch) -> None:
    """The probe once timed short texts only (4-194 tokens), where runtimes rank otherwise than on the
    512-token chunks an index run encodes: ONNX Runtime int8 tied OpenVINO int8 at 25 tokens and ran at half
    its speed at 500."""
    from desktop_app.core.model import cpu_runtime, fidelity

    asked: dict[str, object] = {}

    def recorded(encode_with, build, runtimes, texts, timing_texts, timing_tokens, *rest):
        asked.update(texts=texts, timing=timing_texts, tokens=timing_tokens)
        return cpu_runtime.Verdict(cpu_runtime.TORCH_FP32, {cpu_runtime.TORCH_FP32: 1.0})

    monkeypatch.setattr(cpu_runtime, "probe", recorded)
    monkeypatch.setattr(cpu_runtime, "available", lambda runtime: "" if runtime == "fp32" else "absent here")
    encoder = Encoder(unconverted_spec, device="cpu", dtype="auto").load()
    assert asked["texts"] == list(fidelity.PROBE_TEXTS)
    whole = [len(ids) for ids in encoder.tokenizer.ids(asked["timing"], 10**6)]
    assert sum(1 for length in whole if length >= fidelity.TIMING_MAX_TOKENS) >= 2
    assert asked["tokens"] == encoder.count_tokens(asked["timing"], fidelity.TIMING_MAX_TOKENS)
    assert asked["tokens"] >= 2 * fidelity.TIMING_MAX_TOKENS


def test_models_loading_in_several_threads_at_once_all_get_their_weights(spec) -> None:
    """A fresh clone's `make test` failed with "Cannot copy out of meta tensor": a verdict's re-check loaded
    the torch weights in its thread while another encoder loaded, and transformers' loading is not
    thread-safe."""
    import threading

    loaded: list[Encoder] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            loaded.append(Encoder(spec, device="cpu", dtype="fp32").load())
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert all(encoder.encode(["wing"])[0].dense.shape == (encoder.dim,) for encoder in loaded)


def test_the_probes_figures_order_as_its_races_did(monkeypatch) -> None:
    """Each race times the fastest so far again, and a runtime timed beside another one's spinning thread
    pool reads slower: figures taken as they came showed torch bf16 at 203.5 tokens/s beside the chosen
    OpenVINO bf16 at 149.0. Chained from each one's first race they order as the races did."""
    from desktop_app.core.model import cpu_runtime

    races = [{"fp32": 70.0, "bf16": 200.0}, {"bf16": 203.5, "openvino-bf16": 250.0},
             {"openvino-bf16": 149.0, "onnx-int8": 146.0}]
    monkeypatch.setattr(cpu_runtime, "time_race", lambda encode_with, bodies, texts, tokens: races.pop(0))
    unit = np.ones(4, dtype=np.float32) / 2
    verdict = cpu_runtime.probe(lambda body, texts: [Encoding(unit, {1: 1.0}, None)], lambda name: name,
                                ["fp32", "bf16", "openvino-bf16", "onnx-int8"], ["text"], ["text"], 100, 1, {},
                                "cpu")
    assert verdict.chosen == "openvino-bf16" and not races
    assert max(verdict.tokens_per_s, key=verdict.tokens_per_s.get) == "openvino-bf16", verdict.tokens_per_s
    assert verdict.tokens_per_s["fp32"] == 70.0 and verdict.tokens_per_s["bf16"] == 200.0


def test_a_waiting_recheck_does_not_hold_a_process_at_exit(tmp_path) -> None:
    """A CLI `index` ends long before the encoder has been idle a minute: the waiting re-check must let the
    process exit at once rather than at its next poll (an encoder that is never idle stands in)."""
    import subprocess
    import sys
    import time

    code = ("from pathlib import Path\n"
            "from types import SimpleNamespace\n"
            "from desktop_app.core.model import cpu_runtime, recheck\n"
            "recheck.POLL_S = 5.0\n"
            "busy = SimpleNamespace(verdict=cpu_runtime.Verdict('fp32', {'fp32': 5.0, 'bf16': 4.0}),\n"
            "                       idle_for=lambda: 0.0)\n"
            f"waiting = recheck.VerdictRecheck(busy, Path({str(tmp_path)!r}), 'key')\n"
            "waiting.start()\n"
            "print('waiting', flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "waiting"
    started = time.monotonic()
    assert child.wait(30) == 0
    assert time.monotonic() - started < 2.0  # the poll alone would hold it 5 s
