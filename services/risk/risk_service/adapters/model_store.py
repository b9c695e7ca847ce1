"""Versioned model artifacts on disk, verified before use.

Layout: ``<RISK_MODEL_DIR>/<version>/model.joblib`` and ``manifest.json`` holding the sha256 of
the artifact, the learner, the feature names and the held-out metrics. An artifact whose
sha256 differs from its manifest (tampered, truncated, poisoned) is refused before it is
unpickled. The directory must be writable only by the trainer: the manifest check detects a
changed artifact, not an attacker who can rewrite both files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

from ecomops_platform.errors import NotFound, Unprocessable

from ..domain.features import FEATURES, vector
from ..domain.models import q
from ..domain.scoring import ModelManifest, ModelOutput

log = logging.getLogger("risk.model")

ARTIFACT = "model.joblib"
MANIFEST = "manifest.json"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

model_loaded = Gauge("risk_model_loaded", "1 when a verified model is used in scoring")
model_fallback_total = Counter(
    "risk_model_fallback_total",
    "Times the risk service fell back to rules only (model missing, tampered or failing)",
    ["reason"],
)


class ModelLoadError(Exception):
    """An artifact that cannot be used: missing, tampered, unreadable or incompatible."""


#: A version's manifest (the domain's record of a trained model).
Manifest = ModelManifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ModelLoadError(f"invalid model version {version!r}")
    return version


def read_manifest(model_dir: Path, version: str) -> Manifest:
    path = model_dir / check_version(version) / MANIFEST
    try:
        raw = json.loads(path.read_text())
        return Manifest(
            version=str(raw["version"]),
            algorithm=str(raw["algorithm"]),
            features=tuple(str(f) for f in raw["features"]),
            metrics={str(k): str(v) for k, v in dict(raw.get("metrics", {})).items()},
            sha256=str(raw["sha256"]),
            created_at=datetime.fromisoformat(str(raw["created_at"])),
            extra=dict(raw.get("extra", {})),
        )
    except FileNotFoundError:
        raise ModelLoadError(f"model {version}: no manifest at {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"model {version}: unreadable manifest ({exc})") from None


def list_manifests(model_dir: Path) -> list[Manifest]:
    if not model_dir.is_dir():
        return []
    out = []
    for child in model_dir.iterdir():
        if child.is_dir() and VERSION_RE.match(child.name):
            try:
                out.append(read_manifest(model_dir, child.name))
            except ModelLoadError as exc:
                log.warning("skipping model directory %s: %s", child, exc)
    return sorted(out, key=lambda m: (m.created_at, m.version), reverse=True)


def save_artifact(
    model_dir: Path,
    estimator: Any,
    *,
    algorithm: str,
    features: Sequence[str],
    metrics: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
    version: str | None = None,
) -> Manifest:
    """Write a new versioned artifact and its manifest (blocking; off the event loop)."""
    import joblib

    created = datetime.now(UTC)
    version = check_version(version or created.strftime("%Y%m%dT%H%M%S%fZ"))
    target = model_dir / version
    target.mkdir(parents=True, exist_ok=False)
    artifact = target / ARTIFACT
    joblib.dump(estimator, artifact)
    manifest = Manifest(
        version=version,
        algorithm=algorithm,
        features=tuple(features),
        metrics={k: f"{v:.6f}" for k, v in metrics.items()},
        sha256=sha256_file(artifact),
        created_at=created,
        extra=dict(extra or {}),
    )
    (target / MANIFEST).write_text(
        json.dumps(
            {
                "version": manifest.version,
                "algorithm": manifest.algorithm,
                "features": list(manifest.features),
                "metrics": dict(manifest.metrics),
                "sha256": manifest.sha256,
                "created_at": manifest.created_at.isoformat(),
                "extra": dict(manifest.extra),
            },
            indent=2,
        )
    )
    return manifest


@dataclass(frozen=True, slots=True)
class LoadedModel:
    manifest: Manifest
    estimator: Any

    def predict(self, features: Mapping[str, float]) -> ModelOutput:
        import numpy as np

        row = np.asarray([vector(features, list(self.manifest.features))], dtype=float)
        probability = float(self.estimator.predict_proba(row)[0][1])
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"model returned probability {probability}")
        return ModelOutput(self.manifest.version, q(Decimal(repr(probability))))


def load_artifact(model_dir: Path, version: str) -> LoadedModel:
    """Verify and load one version (blocking; off the event loop). Raises ModelLoadError."""
    manifest = read_manifest(model_dir, version)
    artifact = model_dir / version / ARTIFACT
    if not artifact.is_file():
        raise ModelLoadError(f"model {version}: artifact {artifact} is missing")
    actual = sha256_file(artifact)
    if actual != manifest.sha256:
        raise ModelLoadError(
            f"model {version}: artifact sha256 {actual[:12]}… does not match its manifest "
            f"({manifest.sha256[:12]}…); refusing a tampered or corrupted artifact"
        )
    unknown = [f for f in manifest.features if f not in FEATURES]
    if unknown:
        raise ModelLoadError(
            f"model {version}: expects features the service does not produce: "
            f"{', '.join(unknown[:10])}"
        )
    try:
        import joblib

        estimator = joblib.load(artifact)
        probe = LoadedModel(manifest, estimator)
        probe.predict(dict.fromkeys(FEATURES, 0.0))
    except Exception as exc:
        raise ModelLoadError(f"model {version}: cannot be loaded ({exc})") from exc
    return probe


class ModelHolder:
    """The model this process scores with (None: rules only), and the versions on disk: the
    service layer's ``ModelStore`` port."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.current: LoadedModel | None = None
        self.wanted: str | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()
        model_loaded.set(0)

    def use(self, version: str | None) -> None:
        """Load ``version`` (blocking); on failure fall back to rules only, loudly."""
        with self._lock:
            self.wanted = version
            if version is None:
                self.current = None
                self.last_error = None
                model_loaded.set(0)
                return
            if self.current is not None and self.current.manifest.version == version:
                return
            try:
                loaded = load_artifact(self.model_dir, version)
            except ModelLoadError as exc:
                self.current = None
                self.last_error = str(exc)
                model_loaded.set(0)
                model_fallback_total.labels("load_failed").inc()
                log.error("risk model fallback to rules only: %s", exc)
                return
            self.current = loaded
            self.last_error = None
            model_loaded.set(1)
            log.info("risk model %s loaded (%s)", version, loaded.manifest.algorithm)

    @property
    def active_version(self) -> str | None:
        current = self.current
        return None if current is None else current.manifest.version

    def predict(self, features: Mapping[str, float]) -> tuple[ModelOutput | None, str | None]:
        """Score with the current model (blocking). A model failing at scoring time is
        reported (the caller fails closed: review, never approve), never raised."""
        model = self.current
        if model is None:
            return None, None
        try:
            return model.predict(features), None
        except Exception as exc:  # noqa: BLE001 - fail closed in scoring: review, never approve
            log.error("risk model %s failed at scoring: %s", model.manifest.version, exc)
            model_fallback_total.labels("predict_failed").inc()
            return None, f"model {model.manifest.version} failed at scoring time"

    def verify(self, version: str) -> ModelManifest:
        """Load ``version`` to check it (blocking): NotFound when it does not exist,
        Unprocessable when its artifact is refused."""
        try:
            return load_artifact(self.model_dir, version).manifest
        except ModelLoadError as exc:
            if "no manifest" in str(exc) or "invalid model version" in str(exc):
                raise NotFound(str(exc)) from None
            raise Unprocessable(str(exc), code="model-invalid", title="Model refused") from None

    def manifests(self) -> list[ModelManifest]:
        return list_manifests(self.model_dir)
