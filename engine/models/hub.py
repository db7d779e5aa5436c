"""Pretrained weights from the Hugging Face hub: the local cache first, a download with progress otherwise.

huggingface_hub honours HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE. Offline, its own download call
retries an unreachable endpoint for about 23 seconds before giving up, so a cache miss is first checked with one
quick request that is never retried: with no network the user hears why within a second or so.

A preset names the file open_clip's registry names (`open_clip_pytorch_model.bin`); like open_clip, Glimpse
prefers the repository's safetensors twin (`open_clip_model.safetensors`) where it has one, since it loads
without unpickling, and takes whichever of the two is already cached: open_clip's own downloads land in the
same huggingface_hub cache, so weights open_clip fetched are used as they are.
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
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled

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


def weights_files(preset: Preset) -> tuple[str, ...]:
    """The files of the preset's hub repository that can hold its weights, preferred first: open_clip's order.

    open_clip (`pretrained._get_safe_alternatives`) tries `open_clip_model.safetensors` before its default
    `open_clip_pytorch_model.bin`, and `NAME.safetensors` before any other `NAME.bin` or `NAME.pth`.
    """
    _, filename = _hub_file(preset)
    if filename == "open_clip_pytorch_model.bin":
        return ("open_clip_model.safetensors", filename)
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors", filename)
    return (filename,)


def cached_weights(preset: Preset) -> Path | None:
    """The preset's weights file in the local cache (the safetensors one first), or None."""
    repo, _ = _hub_file(preset)
    for filename in weights_files(preset):
        # A str is a cached file; huggingface_hub also remembers files the hub said it did not have.
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


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
        served = _first_on_hub(repo, weights_files(preset))
    except (httpx2.TransportError, OfflineModeIsEnabled) as error:
        raise ModelUnavailable(f"{missing} the hub cannot be reached ({_reason(error)}): {fixes}") from error
    except HfHubHTTPError as error:
        raise ModelUnavailable(f"{missing} the hub did not serve them ({_reason(error)}): {fixes}") from error
    try:
        return Path(hf_hub_download(repo, served, library_name="glimpse"))
    except (httpx2.HTTPError, HfHubHTTPError, OSError) as error:  # OSError: disk full, cache unwritable…
        raise ModelUnavailable(f"{missing} their download failed ({_reason(error)}): {fixes}") from error


def _first_on_hub(repo: str, filenames: tuple[str, ...]) -> str:
    """The first of `filenames` that the hub has in `repo`: one quick request each, never retried."""
    for filename in filenames[:-1]:
        try:
            get_hf_file_metadata(hf_hub_url(repo, filename), timeout=PROBE_TIMEOUT_S)
            return filename
        except EntryNotFoundError:
            continue  # not in this repository: the next one
    get_hf_file_metadata(hf_hub_url(repo, filenames[-1]), timeout=PROBE_TIMEOUT_S)
    return filenames[-1]


def _hub_file(preset: Preset) -> tuple[str, str]:
    if preset.hf_repo is None or preset.weights_file is None:
        raise UsageError(f"Model {preset.name} has no published weights to fetch.")
    return preset.hf_repo, preset.weights_file


def _reason(error: BaseException) -> str:
    """The first line of an error, short enough to sit inside a sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
