"""Pretrained weights from the Hugging Face hub: the local cache first, a download with progress otherwise.

huggingface_hub honours HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE. Offline, its own download call
retries an unreachable endpoint for about 23 seconds before giving up, so a cache miss is first checked with one
quick request that is never retried: with no network the user hears why within a second or so.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from engine.errors import ModelUnavailable, UsageError
from engine.models.presets import Preset, parse_model_spec

#: Seconds the reachability check waits for the hub before calling it unreachable.
PROBE_TIMEOUT_S = 5.0


def is_available(spec: str) -> bool:
    """Whether a model's weights are already on this computer; never touches the network."""
    model = parse_model_spec(spec)
    if model.source == "file":
        return True  # parse_model_spec checked that the file exists
    if model.source == "random":
        return True
    return cached_weights(model.preset) is not None


def download(spec: str) -> Path:
    """Fetch a preset's published weights into the local cache (progress bar on stderr) → the cached file."""
    model = parse_model_spec(spec)
    if model.source != "pretrained":
        raise UsageError(f"Model {spec} needs no download: its weights are built or read on this computer.")
    return weights_path(model.preset)


def cached_weights(preset: Preset) -> Path | None:
    """The preset's weights file in the local cache, or None."""
    repo, filename = _hub_file(preset)
    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def weights_path(preset: Preset) -> Path:
    """The preset's weights file: from the cache, else downloaded; ModelUnavailable when neither works."""
    cached = cached_weights(preset)
    if cached is not None:
        return cached
    repo, filename = _hub_file(preset)
    url = hf_hub_url(repo, filename)
    missing = (
        f"The weights of model {preset.name} ({filename} from the Hugging Face repository {repo}, about "
        f"{preset.download_mb} MB) are not on this computer and"
    )
    fixes = (
        f"connect to the internet once, or download {url} and pass --model {preset.name}@/path/to/{filename}, "
        "or use the offline tiny-test preset."
    )
    if constants.is_offline_mode():
        raise ModelUnavailable(f"{missing} HF_HUB_OFFLINE forbids downloading them: unset it and {fixes}")
    try:
        get_hf_file_metadata(url, timeout=PROBE_TIMEOUT_S)
    except (httpx2.TransportError, OfflineModeIsEnabled) as error:
        raise ModelUnavailable(f"{missing} the hub cannot be reached ({_reason(error)}): {fixes}") from error
    except HfHubHTTPError as error:
        raise ModelUnavailable(f"{missing} the hub did not serve them ({_reason(error)}): {fixes}") from error
    try:
        return Path(hf_hub_download(repo, filename, library_name="glimpse"))
    except (httpx2.HTTPError, HfHubHTTPError, OSError) as error:  # OSError: disk full, cache unwritable…
        raise ModelUnavailable(f"{missing} their download failed ({_reason(error)}): {fixes}") from error


def _hub_file(preset: Preset) -> tuple[str, str]:
    if preset.hf_repo is None or preset.weights_file is None:
        raise UsageError(f"Model {preset.name} has no published weights to fetch.")
    return preset.hf_repo, preset.weights_file


def _reason(error: BaseException) -> str:
    """The first line of an error, short enough to sit inside a sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
