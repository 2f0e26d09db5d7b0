"""Converting the model for the CPU runtimes: nothing half-made is kept, nothing that would not fit in
memory is started, and processes converting at once (the window and a terminal on a first start, or two
test workers) share one conversion folder beside the model."""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from desktop_app.core.model import conversion, cpu_runtime
from desktop_app.core.storage import lock

# Converts the int8 graph of the fp32 graph in argv[1]'s folder once a file named argv[2] exists.
CONVERT = """
import sys, time
from pathlib import Path
from desktop_app.core.model import conversion
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
conversion.quantize_int8(folder / "onnx-fp32" / "body.onnx", folder, lambda line: print(line, flush=True))
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def fp32_graph(tmp_path_factory) -> Path:
    """A small body's graph, exported once for this module's tests: converting it takes moments, so the
    processes these tests start leave the CPU to the tests beside them."""
    import torch

    class SmallBody(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(64, 32)
            self.mix = torch.nn.Linear(32, 32)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.mix(self.embed(input_ids)) * attention_mask.unsqueeze(-1)

    return conversion.export_onnx(SmallBody(), tmp_path_factory.mktemp("exported"), 1 << 20, lambda line: None)


@pytest.fixture
def folder(fp32_graph: Path, tmp_path: Path) -> Path:
    """A conversion folder holding only the fp32 graph, as after the export of a first start."""
    shutil.copytree(fp32_graph.parent, tmp_path / "conversions" / fp32_graph.parent.name)
    return tmp_path / "conversions"


def started(script: str, folder: Path, go: Path) -> subprocess.Popen:
    """A process running ``script`` on ``folder``, its imports done, waiting for ``go`` to exist."""
    child = subprocess.Popen([sys.executable, "-c", script, str(folder), str(go)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def listing(folder: Path) -> dict[str, list[str]]:
    return {path.name: sorted(p.name for p in path.iterdir()) if path.is_dir() else [] for path in folder.iterdir()}


def test_a_conversion_killed_halfway_leaves_nothing_that_is_used(tmp_path) -> None:
    def killed(into):
        (into / "body.onnx").write_bytes(b"half a graph")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        conversion._atomic_folder(tmp_path / "onnx-fp32", killed, print)
    assert [p.name for p in tmp_path.iterdir()] == ["onnx-fp32.lock"]  # the lock alone, empty
    built = conversion._atomic_folder(tmp_path / "onnx-fp32", lambda into: (into / "body.onnx").write_bytes(b"g"),
                                       print)
    assert (built / "body.onnx").read_bytes() == b"g"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-fp32", "onnx-fp32.lock"]


def test_a_quantisation_that_would_not_fit_in_memory_is_refused_before_it_starts(tmp_path, monkeypatch) -> None:
    """ONNX Runtime's int8 quantisation peaked at 4x the graph (8.4 GiB for real BGE-M3's size): with too
    little free memory it is refused with one line, and nothing is left that a later start would use."""
    graph = tmp_path / "onnx-fp32" / "body.onnx"
    graph.parent.mkdir()
    graph.write_bytes(b"g" * 1000)
    (graph.parent / "weights.bin").write_bytes(b"w" * 9000)  # external data counts too
    monkeypatch.setattr(conversion, "memory_available", lambda: 30_000)
    with pytest.raises(MemoryError, match=r"needs about 0\.0 GiB of free memory"):
        conversion.quantize_int8(graph, tmp_path, lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-fp32", "onnx-int8.lock"]


def test_two_processes_converting_at_once_convert_once_and_both_use_it(folder: Path, tmp_path: Path) -> None:
    """Two quantisations of one graph at once collided on ONNX Runtime's shape-inferred copy beside it
    (the CI run failed with "Wire format was corrupt"), and would double the memory peak: one converts,
    the other waits and uses its result. Both start while a third holder has the lock, so both wait."""
    go = tmp_path / "go"
    with lock.one_at_a_time(folder / "onnx-int8.lock", "testing", print):
        children = [started(CONVERT, folder, go), started(CONVERT, folder, go)]
        go.touch()
        for child in children:
            assert child.stdout.readline().startswith("waiting for another Desktop Search process that is converting")
    outputs = [child.communicate(timeout=120)[0].splitlines() for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert all(lines[-1] == "done" for lines in outputs), outputs
    assert sum("int8 quantisation" in line for output in outputs for line in output) == 1, outputs
    assert listing(folder) == {"onnx-fp32": ["body.onnx"], "onnx-int8": ["body.onnx"], "onnx-int8.lock": []}


def test_where_files_cannot_be_locked_a_conversion_goes_on_alone(folder: Path, monkeypatch) -> None:
    """A file system without locks (NFS without lockd, some shared folders) refuses every lock: that
    must not read as another process holding it, or the model would wait for ever."""
    def no_locks(handle) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock, "lock_file", no_locks)
    notices: list[str] = []
    converting_alone = threading.Thread(target=conversion.quantize_int8, daemon=True,
                                        args=(folder / "onnx-fp32" / "body.onnx", folder, notices.append))
    converting_alone.start()
    converting_alone.join(60)
    assert not converting_alone.is_alive() and (folder / "onnx-int8" / "body.onnx").is_file()
    assert not any("waiting" in line for line in notices), notices


def test_a_conversion_killed_midway_leaves_nothing_the_next_one_keeps(folder: Path, tmp_path: Path) -> None:
    """The half-made folder of a conversion killed midway is gone once the next one has converted."""
    go = tmp_path / "go"
    child = started(CONVERT, folder, go)
    go.touch()
    deadline = time.monotonic() + 60
    while not any(folder.glob("onnx-int8.tmp-*")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL and any(folder.glob("onnx-int8.tmp-*")), listing(folder)
    conversion.quantize_int8(folder / "onnx-fp32" / "body.onnx", folder, lambda line: None)
    assert listing(folder) == {"onnx-fp32": ["body.onnx"], "onnx-int8": ["body.onnx"], "onnx-int8.lock": []}


def test_a_runtime_whose_conversion_fails_in_any_way_is_rejected_and_the_model_loads(
        unconverted_spec, monkeypatch) -> None:
    """A converter's own error (protobuf's DecodeError is no OSError) rejects that runtime in the probe;
    it once stopped the model from loading at all."""
    from desktop_app.core.model.encoder import Encoder

    class DecodeError(Exception):
        pass

    def corrupt(*args, **kwargs):
        raise DecodeError("Error parsing message with type 'onnx.ModelProto': Wire format was corrupt")

    monkeypatch.setattr(cpu_runtime, "CPU_RUNTIMES", (cpu_runtime.TORCH_FP32, cpu_runtime.ONNX_INT8))
    monkeypatch.setattr(conversion, "export_onnx", lambda *args: Path("exported/body.onnx"))
    monkeypatch.setattr(conversion, "quantize_int8", corrupt)
    encoder = Encoder(unconverted_spec, device="cpu", dtype="auto").load()
    assert encoder.dtype == "fp32" and encoder.encode(["a text"])[0].dense.shape == (encoder.dim,)
    assert encoder.verdict.rejected == {"onnx-int8": "conversion failed: Error parsing message with type "
                                                     "'onnx.ModelProto': Wire format was corrupt"}


# Loads the model in argv[1] with the runtime left to the probe, once a file named argv[2] exists; the
# probe stands in for the real one (seconds of timing) and names the process that ran it.
PROBE = """
import os, sys, time
from pathlib import Path
from desktop_app.core.model import cpu_choice, cpu_runtime
from desktop_app.core.model.encoder import Encoder
from desktop_app.core.model.resolve import load_spec

def measured(encoder, folder, weight_bytes):
    print("measuring", flush=True)
    time.sleep(3)
    return cpu_runtime.Verdict(chosen="fp32", machine=str(os.getpid()), measured_at=time.time(),
                               rechecked_at=time.time())

cpu_choice._run_probe = measured
spec, go = load_spec(Path(sys.argv[1])), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
encoder = Encoder(spec, device="cpu", dtype="auto", on_notice=lambda line: print(line, flush=True)).load()
print("verdict of", encoder.verdict.machine, flush=True)
"""


def test_two_processes_starting_at_once_probe_once_and_share_the_verdict(unconverted_spec, tmp_path: Path) -> None:
    """The window and a terminal on a first start: the second waits for the first's verdict instead of
    timing the runtimes beside it (each would skew the other's timings) and measuring twice."""
    go = tmp_path / "go"
    children = [started(PROBE, unconverted_spec.path, go), started(PROBE, unconverted_spec.path, go)]
    go.touch()
    outputs = [child.communicate(timeout=120)[0].splitlines() for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    lines = [line for output in outputs for line in output]
    assert lines.count("measuring") == 1, outputs
    prober = str(children[0].pid if "measuring" in outputs[0] else children[1].pid)
    assert [output[-1] for output in outputs] == [f"verdict of {prober}"] * 2, outputs
