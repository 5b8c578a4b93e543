"""Build the spaCy pipelines and train the Rasa model, reproducibly.

Models are named `safe-report-<date>-<time>-<git revision>-<data fingerprint>.tar.gz`.
The fingerprint covers everything training reads, so "is there a model for the current
data?" is a file-name check, and rolling back is serving an older file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from bot.nlp.pipeline import (
    build_nlu_pipeline,
    load_situation_vocabulary,
    sources_fingerprint,
    synonyms_yaml,
)
from bot.settings import Settings

SYNONYMS_FILE = Path("bot/data/nlu/synonyms.yml")
# What a trained model depends on (relative to the project root).
TRAINING_INPUTS = [
    "config.yml", "domain.yml", "bot/data",
    "bot/nlp/patterns", "bot/nlp/pipeline.py", "bot/nlp/safety_net.py", "bot/nlp/intent_vote.py",
    "bot/policies",
]


def rasa_environment() -> dict[str, str]:
    """Environment for every Rasa process: no telemetry, reproducible, quiet about text."""
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONHASHSEED": "0",
            "TF_DETERMINISTIC_OPS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # The graph cache would reuse a stale spaCy pipeline (it fingerprints the path).
            "RASA_MAX_CACHE_SIZE": "0",
            "SANIC_ACCESS_LOG": "False",
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        }
    )
    level = env.get("LOG_LEVEL", "INFO").upper()
    # DEBUG makes Rasa log message text (processor.message.parse); never allow it.
    env["LOG_LEVEL"] = "INFO" if level == "DEBUG" else level
    env["LOG_LEVEL_LIBRARIES"] = "ERROR"
    return env


def nlp_pipeline_current(settings: Settings) -> bool:
    stamp = settings.spacy_nlu_pipeline / "SOURCES"
    return stamp.exists() and stamp.read_text() == sources_fingerprint()


def build_nlp(settings: Settings, force: bool = False) -> Path:
    """Build the NLU spaCy pipeline and the synonyms file if their sources changed."""
    root = settings.project_root
    vocabulary = load_situation_vocabulary()
    synonyms = root / SYNONYMS_FILE
    text = synonyms_yaml(vocabulary)
    if not synonyms.exists() or synonyms.read_text() != text:
        synonyms.write_text(text)
    if force or not nlp_pipeline_current(settings):
        build_nlu_pipeline(settings.spacy_nlu_pipeline)
        (settings.spacy_nlu_pipeline / "SOURCES").write_text(sources_fingerprint())
    return settings.spacy_nlu_pipeline


def data_fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for item in TRAINING_INPUTS:
        path = root / item
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:10]


def git_revision(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        )
        return out.stdout.strip() or "nogit"
    except OSError:
        return "nogit"


def models_for_current_data(settings: Settings) -> list[Path]:
    fingerprint = data_fingerprint(settings.project_root)
    return sorted(
        settings.models_dir.glob(f"safe-report-*-{fingerprint}.tar.gz"),
        key=lambda p: p.stat().st_mtime,
    )


def newest_model(settings: Settings) -> Path | None:
    models = sorted(settings.models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def train(settings: Settings, force: bool = False) -> Path:
    """Train a model for the current data unless one exists. Returns the model path."""
    build_nlp(settings)
    existing = models_for_current_data(settings)
    if existing and not force:
        return existing[-1]
    root = settings.project_root
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"safe-report-{stamp}-{git_revision(root)}-{data_fingerprint(root)}"
    command = [
        sys.executable, "-m", "rasa", "train",
        "--data", "bot/data", "--config", "config.yml", "--domain", "domain.yml",
        "--out", str(settings.models_dir), "--fixed-model-name", name,
    ]
    subprocess.run(command, cwd=root, env=rasa_environment(), check=True)
    return settings.models_dir / f"{name}.tar.gz"
