"""A second look at the CPU probe's kept verdict, taken while the encoder is idle on a quiet machine.

The probe (:func:`desktop_app.core.model.cpu_runtime.probe`) times its candidates once, so one busy
moment could decide hours of indexing. The verdict is therefore timed again against its closest rival
(the fastest other runtime that passed the fidelity gate): soon after the first probe, then monthly,
only when this process has not encoded for a while and the machine's load is low. A rival replaces
the choice only when it is clearly faster (:data:`MARGIN`) in two re-checks at least an hour apart;
the switch takes effect at once (both runtimes passed the gate) and is kept for the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.model import conversion, cpu_runtime, fidelity
from desktop_app.core.model.cpu_runtime import Verdict

if TYPE_CHECKING:
    from desktop_app.core.model.cpu_runtime import Body
    from desktop_app.core.model.encoder import Encoder
    from desktop_app.core.model.encoding import Encoding

log = logging.getLogger(__name__)

RECHECK_EVERY_S = 30 * 24 * 3600.0
RECHECK_CHALLENGED_AFTER_S = 3600.0  # a rival that won once is timed again after this, not in a month
IDLE_S = 60.0  # no encoding in this process for this long before the re-check starts
MARGIN = 1.10
QUIET_LOAD_PER_CORE = 0.5
POLL_S = 1.0


def due(verdict: Verdict, now: float) -> bool:
    if not verdict.rechecked_at:
        return True
    wait = RECHECK_CHALLENGED_AFTER_S if verdict.challenger else RECHECK_EVERY_S
    return now - verdict.rechecked_at >= wait


def rival_of(verdict: Verdict) -> str:
    """The fastest runtime other than the chosen one among those the probe timed ("" when none)."""
    others = {name: speed for name, speed in verdict.tokens_per_s.items() if name != verdict.chosen}
    return max(others, key=others.__getitem__) if others else ""


def judged(verdict: Verdict, rival: str, speed: dict[str, float], now: float) -> Verdict:
    """The verdict after a re-timing of its choice and ``rival`` (``speed``: tokens/s of both)."""
    faster = speed[rival] >= MARGIN * speed[verdict.chosen]
    tokens = {**verdict.tokens_per_s, **speed}
    if faster and verdict.challenger == rival:
        return replace(verdict, chosen=rival, tokens_per_s=tokens, challenger="", rechecked_at=now)
    return replace(verdict, tokens_per_s=tokens, challenger=rival if faster else "", rechecked_at=now)


def machine_is_quiet() -> bool:
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1) < QUIET_LOAD_PER_CORE
    except OSError:  # no load average on this platform: the idle wait alone has to do
        return True


class VerdictRecheck:
    """The re-check of one encoder's kept verdict, in a thread of its own until done or stopped."""

    def __init__(self, encoder: Encoder, folder: Path, key: str) -> None:
        self.encoder = encoder
        self.folder = folder
        self.key = key
        self.stopped = threading.Event()
        # A daemon while it waits, so a process exits at once; the timing itself runs in a thread that is
        # not (see _run).
        self.thread = threading.Thread(target=self._run, name="cpu-verdict-recheck", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _keep_going(self) -> bool:
        """Nobody has encoded meanwhile (a search or an indexing job aborts the timing), nor asked to stop."""
        return (not self.stopped.is_set() and threading.main_thread().is_alive()
                and self.encoder.idle_for() >= IDLE_S)

    def _run(self) -> None:
        while self._quiet_moment_came():
            again: list[bool] = []
            # Not a daemon, so a process never exits inside a runtime's compile; it stops within a timing
            # of the probe texts once stop() is called or the main thread has ended.
            worker = threading.Thread(target=self._recheck_into, args=(again,), name="cpu-verdict-retime")
            worker.start()
            worker.join()
            if not again or not again[0]:
                return

    def _recheck_into(self, again: list[bool]) -> None:
        try:
            again.append(self._recheck())
        except Exception as error:  # noqa: BLE001 - a failed second look keeps the first verdict
            log.info("re-checking the CPU runtime verdict failed: %s", error)
        finally:
            self.encoder.release_torch_model()

    def _quiet_moment_came(self) -> bool:
        """Wait until the verdict is due, the encoder idle and the machine quiet; False when stopped first."""
        while not (self.encoder.verdict is not None and due(self.encoder.verdict, time.time())
                   and self.encoder.idle_for() >= IDLE_S and machine_is_quiet()):
            if self.stopped.wait(POLL_S) or not threading.main_thread().is_alive():
                return False
        return True

    def _recheck(self) -> bool:
        """Time the choice against its rival once; True when another look is wanted later."""
        verdict = self.encoder.verdict
        if verdict is None:
            return False
        rival = rival_of(verdict)
        if not rival:
            self._keep(replace(verdict, rechecked_at=time.time()))
            return False
        weight_bytes = self.encoder.weight_bytes()
        # A second body, and the torch weights too where a start from a kept graph did without them.
        needed = weight_bytes if self.encoder.model is not None else 2 * weight_bytes
        if conversion.memory_available() < needed:
            log.info("not re-checking the CPU runtime verdict: too little free memory for a second body")
            return False
        # The torch model is loaded for this where it was not, and let go after (_recheck_into).
        rival_body = cpu_runtime.build_body(rival, self.encoder.torch_module(), self.folder, weight_bytes,
                                            log.info, self.encoder.calibration_inputs)
        texts = list(fidelity.TIMING_TEXTS)
        try:
            speed = cpu_runtime.time_race(self._encode_with, {verdict.chosen: self.encoder.body, rival: rival_body},
                                          texts, self.encoder.count_tokens(texts, fidelity.TIMING_MAX_TOKENS),
                                          self._keep_going)
        except cpu_runtime.RaceStopped:  # the encoder got work, or the app is closing: at the next quiet moment
            return True
        after = judged(verdict, rival, speed, time.time())
        log.info("CPU runtime re-check: %s", after)
        if after.chosen != verdict.chosen:
            self.encoder.switch_body(after.chosen, rival_body)
        self._keep(after)
        return bool(after.challenger)

    def _encode_with(self, body: Body, texts: list[str]) -> list[Encoding]:
        return self.encoder.encode(texts, max_length=fidelity.TIMING_MAX_TOKENS, colbert=True, body=body)

    def _keep(self, verdict: Verdict) -> None:
        self.encoder.verdict = verdict
        try:
            cpu_runtime.write_verdict(self.folder, self.key, verdict)
        except OSError as error:
            log.info("could not keep the re-checked CPU verdict in %s: %s", self.folder, error)
