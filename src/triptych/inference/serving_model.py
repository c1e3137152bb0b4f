"""The model version a replica serves (a champion, in shadow a challenger, or a
champion's int8 export for the int8 twin),
and swapping it without dropping an event.

A new version is downloaded and loaded in a background thread; only when it is
fully ready is the reference swapped. A batch takes the reference once at its
start, so every image of a batch is answered by one complete model version.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import TopicPartition

from ..bus import consumer as make_consumer
from ..config import Settings
from ..contracts import TOPIC_MODEL_UPDATES, ModelUpdate
from ..models import registry
from ..models.backends import REQUIRED_FILES, load_backend
from ..models.card import ModelCard
from ..models.null_backend import NullBackend, null_card

log = logging.getLogger("triptych.inference")


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    backend: object

    @property
    def version(self) -> str:
        return self.card.version or "unknown"


class ServingModel:
    def __init__(
        self,
        model_name: str,
        settings: Settings,
        backend_kind: str = "torch",
        threads: int | None = None,
        alias: str = registry.CHAMPION,
    ):
        self.model_name = model_name
        self.alias = alias  # champion (fp32, or int8 for the int8 twin), or challenger for a shadow replica
        self.settings = settings
        self.backend_kind = backend_kind
        self.threads = threads
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel:
        model = self._current
        if model is None:
            raise RuntimeError(f"no {self.model_name} model loaded")
        return model

    @property
    def loaded(self) -> LoadedModel | None:
        """The version served now, or None (a shadow replica whose model has no challenger)."""
        return self._current

    def load(self, version: str) -> LoadedModel:
        card, folder = registry.cached_download(
            self.model_name, version, self.settings, require=REQUIRED_FILES.get(self.backend_kind, ())
        )
        if self.settings.bench_null_models:  # `triptych bench --null-models` only: `triptych up` refuses it
            return LoadedModel(null_card(card), NullBackend(len(card.labels)))
        return LoadedModel(card, load_backend(self.backend_kind, folder, card, self.threads))

    def load_champion(self, poll_s: float = 10.0) -> LoadedModel:
        """Serve the champion; until the registry has one, wait (and say so) rather
        than crash-loop: on a fresh install the models are still being trained."""
        while (version := registry.version_for_alias(self.model_name, registry.CHAMPION, self.settings)) is None:
            log.warning(
                "%s: the registry has no champion yet; waiting (train one with `triptych models "
                "bootstrap --train`, or `--pretrained` when online)",
                self.model_name,
            )
            time.sleep(poll_s)
        self.swap_to(version)
        return self.current

    def load_if_any(self) -> LoadedModel | None:
        """Serve the alias's version when there is one this replica can run (a
        challenger; a champion whose int8 export is published), else nothing. No
        waiting: most of the time there is none, and an update will announce the next."""
        version = registry.version_for_alias(self.model_name, self.alias, self.settings)
        if version is not None and self.runnable(version):
            self.swap_to(version)
        return self._current

    def runnable(self, version: str) -> bool:
        """An int8 replica runs only a version whose int8 export passed its agreement
        gate and was published (`triptych models quantize`); any other runs every version."""
        return self.backend_kind != "onnx-int8" or registry.int8_published(self.model_name, version, self.settings)

    def drop(self) -> None:
        """Stop serving (a challenger's shadow phase ended: promoted or rejected)."""
        with self._lock:
            previous, self._current = self._current, None
        if previous is not None:
            log.info("%s: %s v%s no longer served", self.model_name, self.alias, previous.version)

    def swap_to(self, version: str) -> bool:
        """Load `version` and make it current; False if it already is."""
        with self._lock:  # one load at a time
            if self._current is not None and self._current.version == version:
                return False
            loaded = self.load(version)
            previous = self._current
            self._current = loaded  # the swap: a single reference assignment
        log.info(
            "%s: now serving version %s (was %s)", self.model_name, version, previous.version if previous else None
        )
        return True

    # -- hot swap -------------------------------------------------------------
    def watch_updates(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name=f"{self.model_name}-updates", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        # No consumer group: every replica must see every update.
        consumer = make_consumer(self.settings)
        partitions = [
            TopicPartition(TOPIC_MODEL_UPDATES, p) for p in consumer.partitions_for_topic(TOPIC_MODEL_UPDATES) or [0]
        ]
        consumer.assign(partitions)
        consumer.seek_to_end()
        try:
            while True:  # a daemon thread: it ends with the replica
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        self._apply(record.value)
        finally:
            consumer.close()

    def _apply(self, raw: bytes) -> None:
        try:
            update = ModelUpdate.model_validate_json(raw)
        except ValueError:
            log.warning("ignoring a malformed model update: %r", raw[:200])
            return
        if update.model_name != self.model_name or update.alias != self.alias:
            return
        if update.version is None:
            self.drop()
            return
        try:
            if not self.runnable(update.version):  # an int8 twin: a new champion without an int8 export yet
                self.drop()
                return
            self.swap_to(update.version)
        except Exception:  # noqa: BLE001 - keep serving the old model; the next update may work
            log.exception(
                "%s: could not load version %s; still serving %s",
                self.model_name,
                update.version,
                self._current.version if self._current else None,
            )
