"""The one typed configuration: every parameter of every step, loaded from control.yaml.

Library functions never read YAML; entry points call :func:`load_config` once and pass
the validated model (or parts of it) down.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import UserError
from .legacy_config import translate_legacy_keys, translate_legacy_override

log = logging.getLogger(__name__)

DEFAULT_CONFIG_NAME = "control.yaml"

# Keys that no longer mean anything: an old control.yaml that still sets them loads, with a
# warning saying what replaced them, instead of failing as an unknown key.
DEPRECATED_KEYS: dict[tuple[str, ...], str] = {
    ("postprocess", "clean", "length_tolerance"): (
        "clip lengths are checked exactly, in samples (round(seconds x sample_rate)), so there is "
        "no tolerance any more"
    ),
}

Subset = Literal["balanced", "unbalanced", "eval"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


class _Section(BaseModel):
    # Unknown keys are almost always typos; silently ignoring them would run the wrong job.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PathsConfig(_Section):
    metadata_dir: Path = Field(
        Path("metadata"),
        description=(
            "The official AudioSet metadata files (ontology.json, qa_true_counts.csv and the "
            "three segment CSVs, plain or .csv.gz). Any file missing here is downloaded from "
            "Google's published URL and checked against its known SHA-256."
        ),
    )
    meta_dir: Path = Field(
        Path("MetaData"),
        description=(
            "Outputs of get_relevant_meta_data.py (suitable_classes.csv, candidates.csv, "
            "splits, selection.json, ...)."
        ),
    )
    output_dir: Path = Field(
        Path("AudioSet_Data"),
        description="The dataset: audio, manifests and the download ledger (download_data.py).",
    )


class SelectionConfig(_Section):
    subsets: list[Subset] = Field(
        default_factory=lambda: ["balanced", "unbalanced", "eval"], min_length=1,
        description=(
            "Which segment lists to draw clips from. All three by default, as the original "
            "tool (evaluation in meta-learning is class-wise, so eval clips are fair game)."
        ),
    )
    leaf_only: bool = Field(True, description="Keep only leaf classes of the ontology.")
    quality_threshold: Fraction = Field(
        0.8,
        description=(
            "Minimum label quality, inclusive; quality = num_true / num_rated from "
            "qa_true_counts.csv."
        ),
    )
    unknown_quality: Literal["exclude", "include"] = Field(
        "exclude",
        description=(
            "Classes nobody rated (num_rated = 0, or missing from qa_true_counts.csv): "
            "exclude or include them."
        ),
    )
    exclude_restrictions: list[Literal["blacklist", "abstract"]] = Field(
        default_factory=lambda: ["blacklist", "abstract"],
        description="Drop ontology nodes carrying any of these restrictions.",
    )
    min_candidates: NonNegativeInt = Field(
        0,
        description="Drop classes with fewer candidate clips than this.",
    )
    classes: list[str] = Field(
        default_factory=list,
        description=(
            "Select exactly these classes, by MID or exact display name, in ontology order; "
            "the leaf, quality, restriction and min_candidates rules do not filter them (the "
            "summary warns about each listed class a rule would have dropped). [] = the rules "
            "choose. Not together with include."
        ),
    )
    include: list[str] = Field(
        default_factory=list,
        description=(
            'Classes to force in, by MID (/m/05zppz) or exact display name ("Male speech, '
            'man speaking"). An include bypasses the restriction, leaf and quality rules, '
            "not min_candidates. A name that matches no class is an error (with "
            "suggestions)."
        ),
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Classes to force out, by MID or exact display name. Exclude always wins.",
    )
    label_policy: Literal["any", "exclusive"] = Field(
        "exclusive",
        description=(
            "any: a clip is a candidate of every selected class it carries (the original "
            "tool). exclusive: every clip of a video whose segments carry two or more "
            "selected classes is dropped, so no audio is shared between classes and none "
            "leaks between meta-train and meta-test."
        ),
    )
    segment_seconds: PositiveFloat | None = Field(
        10.0,
        description=(
            "Keep only segments lasting exactly this many seconds (to the millisecond of the "
            "metadata), as the original tool, which rejected any clip that was not 10 s: "
            "AudioSet has shorter segments where a video ends early. null = keep every "
            "length. The selection summary says how many segments this removed."
        ),
    )
    strict: bool = Field(
        False,
        description=(
            "Malformed metadata rows: false = skip them and count them in the summary; true "
            "= fail."
        ),
    )
    plot: bool = Field(
        False,
        description=(
            "Also write quality_threshold.png (classes passing each threshold). Same as "
            "--plot."
        ),
    )

    @field_validator("subsets")
    @classmethod
    def _no_repeated_subsets(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each subset may be named once")
        return value

    @model_validator(mode="after")
    def _classes_or_include(self) -> SelectionConfig:
        # classes is the whole selection; include adds to what the rules keep. Both at once
        # would leave it unclear whether the rules still apply.
        if self.classes and self.include:
            raise ValueError(
                "set classes or include, not both: classes selects exactly the listed classes, "
                "include adds classes to those the rules keep"
            )
        return self


class SplitsConfig(_Section):
    train: Fraction = Field(
        0.7,
        description=(
            "Share of the suitable classes in meta-train. train + val + test must sum to 1; "
            "whole class counts by largest remainder (142 classes give 100 / 14 / 28)."
        ),
    )
    val: Fraction = Field(0.1, description="Share of the suitable classes in meta-validation.")
    test: Fraction = Field(0.2, description="Share of the suitable classes in meta-test.")
    seed: NonNegativeInt = Field(
        0,
        description="Seed of the class order the split is cut from; independent of the master seed.",
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitsConfig:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


_EXTRACTOR_NAME = re.compile(r"\A[a-z0-9][a-z0-9_:+.-]*\Z")
_EXTRACTOR_ARG = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]*\Z")


class YoutubeConfig(_Section):
    extractor_args: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description=(
            "Passed to yt-dlp as its extractor_args: extractor -> argument -> list of values, "
            "e.g. {youtube: {player_client: [default, mweb]}} to choose player clients, or a "
            "PO-token provider plugin's options under its own extractor name (e.g. "
            "youtubepot-bgutilhttp: {base_url: [http://127.0.0.1:4416]}). A single value may be "
            "written without the list. {} = yt-dlp's defaults."
        ),
    )

    max_wait_for_format_seconds: NonNegativeFloat = Field(
        120.0,
        description=(
            "YouTube may make a format readable only from a given time (yt-dlp's "
            "available_at, e.g. after a pre-roll ad); reading earlier gives 403. A clip waits "
            "up to this many seconds for it; a longer wait is a transient failure, tried "
            "again later."
        ),
    )

    @field_validator("extractor_args", mode="before")
    @classmethod
    def _extractor_args_shape(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of extractor -> {argument: [values]}")
        shaped: dict[str, dict[str, list[str]]] = {}
        for extractor, arguments in value.items():
            name = str(extractor).strip().lower()
            if not _EXTRACTOR_NAME.match(name):
                raise ValueError(f"{extractor!r} is not an extractor name (e.g. youtube)")
            if not isinstance(arguments, dict):
                raise ValueError(f"{name}: expected a mapping of argument -> [values], got {arguments!r}")
            shaped[name] = {}
            for argument, values in arguments.items():
                if not _EXTRACTOR_ARG.match(str(argument)):
                    raise ValueError(f"{name}: {argument!r} is not an argument name (e.g. player_client)")
                items = values if isinstance(values, list) else [values]
                texts = []
                for item in items:
                    if isinstance(item, (dict, list)) or item is None:
                        raise ValueError(f"{name}.{argument}: values must be plain text, got {item!r}")
                    texts.append(str(item).lower() if isinstance(item, bool) else str(item))
                shaped[name][str(argument)] = texts
        return shaped


_SOURCE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,39}\Z")
SOURCE_KINDS = ("archive", "youtube")
ARCHIVE_FORMATS = ("auto", "folder", "hdf5", "parquet")


class SourceConfig(_Section):
    kind: Literal["archive", "youtube"] = Field(
        description=(
            "archive: clips already on disk (a folder of clips, PANNs/PaSST HDF5 packs, "
            "Hugging Face Parquet); youtube: fetched with yt-dlp and ffmpeg using "
            "url_template, cookies_file, proxies and js_runtime."
        ),
    )
    name: str | None = Field(
        None,
        description=(
            "What the manifest's source column, the ledger and --retry-failed call this "
            "source: letters, digits, _ . - (up to 40). null = youtube, or archive1, "
            "archive2, ... in the order listed."
        ),
    )
    path: str | None = Field(
        None,
        description=(
            "archive only: a folder, a file, or a glob of files (e.g. /data/audioset/*.h5); "
            "relative paths are relative to control.yaml's folder."
        ),
    )
    format: Literal["auto", "folder", "hdf5", "parquet"] = Field(
        "auto",
        description=(
            "archive only: auto (from the files found), folder (audio files named by YouTube "
            "ID), hdf5 (PANNs waveform or PaSST mp3 packs) or parquet (Hugging Face layout)."
        ),
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and not _SOURCE_NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits, _ . - (up to 40, starting with a letter or digit)")
        return value

    @model_validator(mode="after")
    def _path_for_archives_only(self) -> SourceConfig:
        if self.kind == "archive" and not (self.path or "").strip():
            raise ValueError("an archive source needs path: (a folder, a file or a glob of files)")
        if self.kind == "youtube" and (self.path is not None or self.format != "auto"):
            raise ValueError("a youtube source takes no path or format (it uses download.url_template)")
        return self


class DaskConfig(_Section):
    scheduler: str | None = Field(
        None,
        description=(
            "Address of a running Dask scheduler (tcp://host:8786 or tls://...), started with "
            "'dask scheduler'; null = a LocalCluster of download.workers processes on this "
            "machine. Used when download.executor is dask."
        ),
    )

    shared_output_dir: bool = Field(
        False,
        description=(
            "true when every Dask worker sees paths.output_dir at the same path (a shared "
            "filesystem): workers then write each clip into place themselves, and this process "
            "still checks its checksum and length. false = workers send each clip back as bytes."
        ),
    )

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"\A(tcp|tls|inproc|ucx)://\S+\Z", value.strip()):
            raise ValueError(f"{value!r}: expected an address such as tcp://10.0.0.5:8786")
        return value.strip() if value is not None else None


class DownloadConfig(_Section):
    samples_per_class: PositiveInt = Field(
        10,
        description="Target clips per class (the original tool's max_per_class).",
    )
    start_index: NonNegativeInt = Field(
        0,
        description=(
            "First class of the slice of suitable_classes.csv to work on: [start_index, "
            "end_index). Also --start."
        ),
    )
    end_index: NonNegativeInt | None = Field(
        None,
        description=(
            "End of the class slice, exclusive; null = to the end. Also --end. The original "
            "tool's string 'None' means null."
        ),
    )
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        1,
        description=(
            "Parallel downloads. The dataset is identical to workers: 1 given the same "
            "availability."
        ),
    )
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(kind="youtube")],
        description=(
            "Where clips come from, tried in this order for each clip; the first that has it "
            "wins, and a clip is unavailable only when every source failed it. Each entry: "
            "kind (archive | youtube), name, and for archives path and format. [{kind: "
            "youtube}] = YouTube only."
        ),
    )
    url_template: str = Field(
        "https://www.youtube.com/watch?v={ytid}",
        description=(
            "Where a clip is fetched from; {ytid} (required) is replaced by the YouTube ID. "
            "A mirror or a local test server can stand in for YouTube."
        ),
    )
    cookies_file: Path | None = Field(
        None,
        description=(
            "Netscape-format cookies exported from a logged-in browser (helps against "
            "sign-in walls). Never modified or logged; each worker uses a private temporary "
            "copy. null = none."
        ),
    )
    fetch_strategy: Literal["range", "whole_file"] = Field(
        "range",
        description=(
            "range: read only the segment from the stream (fast, few bytes). whole_file: "
            "download the whole stream, then trim (for sources that cannot seek)."
        ),
    )
    max_retries: NonNegativeInt = Field(
        3,
        description=(
            "Retries of a transient failure (5xx, timeout, reset, DNS) per clip, with "
            "exponential backoff."
        ),
    )
    retry_backoff_seconds: NonNegativeFloat = Field(
        2.0,
        description=(
            "Wait before the first such retry, in seconds; it doubles on each further retry, "
            "capped at backoff_max_seconds. 0 = retry at once."
        ),
    )
    max_attempts_per_class: PositiveInt | None = Field(
        None,
        description=(
            "Only the first N candidates of a class, in rank order, are ever tried (so "
            "reruns agree); null = until its candidates run out."
        ),
    )
    sleep_between_requests: NonNegativeFloat = Field(
        1.0,
        description=(
            "Pause between two requests, shared by all workers, in seconds, plus up to "
            "sleep_jitter at random."
        ),
    )
    sleep_jitter: NonNegativeFloat = Field(
        0.5,
        description=(
            "Upper bound of the random extra pause added to sleep_between_requests, in "
            "seconds."
        ),
    )
    max_requests_per_hour: PositiveInt | None = Field(
        None,
        description=(
            "Global cap on requests per hour across all workers, spread evenly (one every "
            "3600/(N*(1-rate_safety_margin)) s, so no window holds more than N); null = no cap "
            "(the allowed rate is then learned from rate limits). YouTube throttles around 300 "
            "videos/hour per address."
        ),
    )
    max_consecutive_rate_limits: PositiveInt = Field(
        5,
        description=(
            "After this many rate limits / sign-in walls in a row the run stops cleanly "
            "(exit 3, resumable)."
        ),
    )
    max_consecutive_tooling_errors: PositiveInt = Field(
        3,
        description=(
            "After this many clips in a row fail because yt-dlp itself is out of date or "
            "incomplete (JS challenge not solved, no JavaScript runtime, SABR-only formats, "
            "no usable format) the run stops cleanly (exit 6) with what to update; those "
            "clips stay retryable."
        ),
    )
    max_consecutive_transient: PositiveInt = Field(
        10,
        description=(
            "After this many clips in a row fail with network errors (timeouts, resets, DNS: "
            "the connection or a proxy is down) the run stops cleanly (exit 4) instead of "
            "burning through every candidate; rerun when the network is back."
        ),
    )
    backoff_base_seconds: PositiveFloat = Field(
        30.0,
        description=(
            "First pause of every worker after a rate limit without Retry-After, in seconds; "
            "it doubles with each consecutive one, capped at backoff_max_seconds. When the "
            "server sends Retry-After, the pause is exactly what it asks for."
        ),
    )
    backoff_max_seconds: PositiveFloat = Field(
        1800.0,
        description="Cap of the rate-limit backoff, in seconds.",
    )
    rate_safety_margin: float = Field(
        0.05,
        ge=0.0,
        le=0.5,
        description=(
            "Share of max_requests_per_hour kept in reserve: requests are spread evenly at "
            "N * (1 - margin) per hour, so a request that leaves a little late never makes a "
            "window of the server's hold more than N. 0.05 = pace at 95 % of the budget."
        ),
    )
    learned_rate_fraction: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description=(
            "After a rate limit, each address is paced at this fraction of the allowed rate "
            "learned from the throttled answers (and the server's Retry-After), instead of "
            "running into the limit again. Applies with or without a budget; the pace never "
            "exceeds the budget."
        ),
    )
    executor: Literal["threads", "dask"] = Field(
        "threads",
        description=(
            "Where the per-clip work runs: threads in this process, or the workers of a Dask "
            "cluster (extra [dask]; see download.dask). This process alone writes the ledger, "
            "the manifests and the clips either way, and the dataset is the same."
        ),
    )
    dask: DaskConfig = Field(
        default_factory=DaskConfig,
        description="The Dask cluster used when download.executor is dask.",
    )
    source_addresses: list[str] = Field(
        default_factory=list,
        description=(
            "Local IP addresses of this machine to spread requests over (yt-dlp's "
            "source_address and ffmpeg's local_addr, always together); each is paced on its "
            "own. [] = the default route, one address."
        ),
    )
    proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Proxy URLs (http://host:port or http://user:password@host:port); each worker "
            "keeps one, round robin when there are more workers than proxies. Only http:// "
            "proxies: ffmpeg, which reads the audio, cannot tunnel through socks. [] = "
            "direct."
        ),
    )
    js_runtime: str | None = Field(
        None,
        description=(
            "JavaScript runtime for YouTube extraction, e.g. node or deno:/usr/bin/deno; "
            "null = the deno binary installed with audioset-tools."
        ),
    )
    youtube: YoutubeConfig = Field(
        default_factory=YoutubeConfig,
        description="YouTube-only yt-dlp options (player clients, PO-token providers).",
    )
    ffmpeg_path: Path | None = Field(
        None,
        description=(
            "ffmpeg binary; null = $AUDIOSET_TOOLS_FFMPEG, else imageio-ffmpeg's bundled "
            "ffmpeg, else ffmpeg on PATH."
        ),
    )
    socket_timeout: PositiveFloat = Field(
        30.0,
        description=(
            "Network timeout for one request, in seconds (a stalled server never hangs the "
            "job)."
        ),
    )
    resolve_timeout: PositiveFloat = Field(
        120.0,
        description=(
            "Longest time one clip's resolve (yt-dlp reading the page or media headers) may "
            "take, in seconds, whatever the server does; past it the clip is a transient "
            "failure and the worker moves on."
        ),
    )
    duration_tolerance: PositiveFloat = Field(
        0.05,
        description=(
            "Every clip holds exactly round((end - start) x sample_rate) samples per channel. "
            "This is how much earlier than the segment's end, in seconds, the source may run "
            "out and still give a clip: lossy codecs (AAC, Opus) deliver ~20 ms less than a "
            "video's length, so a segment ending with its video would otherwise never be "
            "complete. That gap is filled with silence; a source ending earlier is too_short, "
            "never padded."
        ),
    )

    @field_validator("end_index", mode="before")
    @classmethod
    def _none_string(cls, value: Any) -> Any:
        # The original tool's control.yaml spelled "all classes" as the string 'None'.
        if isinstance(value, str) and value.strip().lower() in {"none", "null", ""}:
            return None
        return value

    @field_validator("sources")
    @classmethod
    def _named_sources(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        if not value:
            raise ValueError("list at least one source, e.g. [{kind: youtube}]")
        if sum(source.kind == "youtube" for source in value) > 1:
            raise ValueError("list youtube at most once (proxies and cookies already spread its requests)")
        named, archives = [], 0
        for source in value:
            if source.kind == "archive":
                archives += 1
            default = "youtube" if source.kind == "youtube" else f"archive{archives}"
            named.append(source if source.name else source.model_copy(update={"name": default}))
        names = [source.name for source in named]
        repeated = next((name for name in names if names.count(name) > 1), None)
        if repeated is not None:
            raise ValueError(f"two sources are named {repeated!r}; give each its own name")
        return named

    @field_validator("url_template")
    @classmethod
    def _has_ytid_placeholder(cls, value: str) -> str:
        if "{ytid}" not in value:
            raise ValueError("must contain the placeholder {ytid}")
        return value

    @field_validator("source_addresses")
    @classmethod
    def _ip_addresses(cls, value: list[str]) -> list[str]:
        import ipaddress

        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address (e.g. 203.0.113.10 or 2001:db8::10)") from None
        if len(set(value)) != len(value):
            raise ValueError("an address is listed twice")
        return value

    @model_validator(mode="after")
    def _dask_combinations(self) -> DownloadConfig:
        if self.executor == "dask" and self.source_addresses:
            raise ValueError(
                "executor dask spreads requests over the workers' own addresses; source_addresses "
                "applies to executor threads only (list one or the other)"
            )
        if self.executor == "dask" and self.cookies_file is not None:
            raise ValueError(
                "cookies_file with executor dask is not supported: the cookies would travel to the "
                "workers over the cluster's network; use executor threads (with source_addresses)"
            )
        return self

    @field_validator("proxies")
    @classmethod
    def _http_proxies_only(cls, value: list[str]) -> list[str]:
        # ffmpeg reads the audio and only tunnels through HTTP proxies; a socks proxy would
        # silently leave the media requests going direct.
        for proxy in value:
            if not proxy.lower().startswith("http://"):
                raise ValueError(f"{proxy!r}: only http://host:port proxies are supported (ffmpeg has no socks support)")
        return value

    @model_validator(mode="after")
    def _ordered_slice(self) -> DownloadConfig:
        if self.end_index is not None and self.start_index > self.end_index:
            raise ValueError(
                f"start_index ({self.start_index}) must not exceed end_index ({self.end_index})"
            )
        return self


class AudioConfig(_Section):
    format: Literal["wav", "flac"] = Field(
        "wav",
        description="Output container and codec: wav (16-bit PCM) or flac.",
    )
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = Field(
        16000,
        description="Output sample rate in Hz.",
    )
    channels: Annotated[int, Field(ge=1, le=8)] = Field(1, description="Output channel count.")


class CleanConfig(_Section):
    expected_seconds: PositiveFloat | None = Field(
        None,
        description=(
            "A clip's expected length in seconds; null = its segment's end_seconds - "
            "start_seconds from the manifest. Checked exactly, in samples: a clip must hold "
            "round(expected_seconds x sample_rate) samples per channel (160,000 for 10 s at "
            "16 kHz, the only clips MetaAudio accepts)."
        ),
    )
    silence_std: NonNegativeFloat = Field(
        0.0,
        description=(
            "A clip whose standard deviation is at most this is silent (0.0 = exactly "
            "constant, as MetaAudio). Samples are floats in [-1, 1]; one 16-bit step is "
            "3.05e-05."
        ),
    )


class NpyConfig(_Section):
    dtype: Literal["float32", "int16"] = Field(
        "float32",
        description="Array type: float32 (samples in [-1, 1]) or int16 (the PCM values as stored).",
    )
    zscore: bool = Field(
        False,
        description=(
            "Per-clip z-normalisation (subtract the clip's mean, divide by its std; a "
            "constant clip becomes zeros). Needs dtype float32."
        ),
    )

    @model_validator(mode="after")
    def _zscore_needs_float(self) -> NpyConfig:
        if self.zscore and self.dtype == "int16":
            raise ValueError("zscore needs dtype float32 (z-normalised values do not fit int16)")
        return self


class MelspecConfig(_Section):
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = Field(
        16000,
        description=(
            "Sample rate the clips must have, in Hz; a clip at another rate is reported and "
            "skipped, never resampled."
        ),
    )
    n_fft: Annotated[int, Field(ge=16, le=65536)] = Field(1024, description="FFT size in samples.")
    hop_length: PositiveInt = Field(512, description="Hop between frames in samples.")
    n_mels: PositiveInt = Field(128, description="Number of mel bands.")
    fmin: NonNegativeFloat = Field(0.0, description="Lowest mel band edge in Hz.")
    fmax: PositiveFloat | None = Field(
        None,
        description=(
            "Highest mel band edge in Hz; null = sample_rate / 2. Needs fmin < fmax <= "
            "sample_rate / 2."
        ),
    )
    power: Literal[1.0, 2.0] = Field(
        2.0,
        description="Exponent of the magnitude: 2.0 (power) or 1.0 (amplitude).",
    )
    to_db: bool = Field(
        True,
        description=(
            "Convert to decibels like librosa.power_to_db(ref=1.0, amin=1e-10, "
            "top_db=top_db)."
        ),
    )
    top_db: PositiveFloat | None = Field(
        80.0,
        description="Clip each spectrogram at its peak minus this many dB; null = no clipping.",
    )
    pad_mode: Literal["reflect", "constant"] = Field(
        "reflect",
        description=(
            "Padding of n_fft // 2 on each side before framing: reflect (librosa < 0.10, as "
            "in MetaAudio) or constant (zeros, the default of librosa >= 0.10)."
        ),
    )
    style: Literal["librosa", "metaaudio"] = Field(
        "librosa",
        description=(
            "librosa: power_to_db as above. metaaudio: MetaAudio's recipe, each clip's waveform "
            "z-normalised first, then 10*log10(mel + eps) (20/power*log10 for power 1), no "
            "top_db clipping."
        ),
    )
    chunk_seconds: PositiveFloat | None = Field(
        None,
        description=(
            "Variable-length option: cut each clip into chunks of this many seconds, stored "
            "as [n_chunks, n_mels, frames]; each chunk is one item for stats, pack and the "
            "loaders. null = one spectrogram per clip (a 10 s clip at 16 kHz gives 128 x "
            "313)."
        ),
    )
    chunk_remainder: Literal["pad", "drop"] = Field(
        "pad",
        description=(
            "The last, incomplete chunk: pad (with zeros, kept if it holds at least half a "
            "chunk) or drop. A clip too short for one chunk is reported."
        ),
    )

    @model_validator(mode="after")
    def _bands_below_nyquist(self) -> MelspecConfig:
        if self.style == "metaaudio" and not self.to_db:
            raise ValueError("style metaaudio computes decibels; it needs to_db: true")
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if top > self.sample_rate / 2 or self.fmin >= top:
            raise ValueError(
                f"need fmin < fmax <= sample_rate / 2, got fmin={self.fmin:g}, fmax={top:g}, "
                f"sample_rate={self.sample_rate}"
            )
        return self


class PackConfig(_Section):
    source: Literal["melspec", "npy"] = Field(
        "melspec",
        description="Which derived folder to pack: melspec (features_dir) or npy (npy_dir).",
    )
    splits: list[Literal["train", "val", "test"]] = Field(
        default_factory=lambda: ["train", "val", "test"], min_length=1,
        description="Splits to pack; one file per split.",
    )


class StatsConfig(_Section):
    source: Literal["melspec", "npy"] = Field(
        "melspec",
        description=(
            "Which derived folder to compute normalisation statistics on: melspec "
            "(features_dir) or npy (npy_dir). Always from the meta-train classes only; "
            "written to <that folder>/stats.json."
        ),
    )


class PostprocessConfig(_Section):
    npy_dir: Path = Field(
        Path("AudioSet_npy"),
        description=(
            "to-npy writes one .npy waveform per clip here, mirroring the dataset's class "
            "folders, with index.csv (one row per array) and params.json (the settings that "
            "made them)."
        ),
    )
    features_dir: Path = Field(
        Path("AudioSet_melspec"),
        description=(
            "melspec writes one .npy log-mel spectrogram per clip here, mirroring the "
            "dataset's class folders, with index.csv and params.json."
        ),
    )
    packed_dir: Path = Field(
        Path("AudioSet_packed"),
        description="pack writes <source>/<split>.npy (memory-mappable) and <split>.csv here.",
    )
    workers: Annotated[int, Field(ge=1, le=256)] | None = Field(
        None,
        description="Worker processes for to-npy, melspec and clean; null = all cores.",
    )
    batch_clips: Annotated[int, Field(ge=1, le=4096)] = Field(
        32,
        description=(
            "Clips handed to a worker at a time; melspec batches their frames into one FFT "
            "and one matrix product."
        ),
    )
    normalisation: Literal["none", "global", "per_channel"] = Field(
        "per_channel",
        description=(
            "What the PyTorch loaders do with stats.json: none, global (one mean/std) or "
            "per_channel (one mean/std per mel band, or per audio channel for waveforms)."
        ),
    )
    clean: CleanConfig = Field(
        default_factory=CleanConfig,
        description="audioset-tools clean: which clips are quarantined.",
    )
    npy: NpyConfig = Field(
        default_factory=NpyConfig,
        description="audioset-tools to-npy: the waveform arrays.",
    )
    melspec: MelspecConfig = Field(
        default_factory=MelspecConfig,
        description=(
            "audioset-tools melspec: the log-mel spectrograms (MetaAudio's settings by "
            "default)."
        ),
    )
    pack: PackConfig = Field(
        default_factory=PackConfig,
        description="audioset-tools pack: one memory-mappable file per split.",
    )
    stats: StatsConfig = Field(
        default_factory=StatsConfig,
        description="audioset-tools stats: normalisation statistics.",
    )


class Config(_Section):
    seed: NonNegativeInt = Field(
        0,
        description=(
            "Master seed of the candidate order. The same seed and the same inputs give "
            "byte-identical outputs."
        ),
    )
    paths: PathsConfig = Field(
        default_factory=PathsConfig,
        description="Where the official metadata, the selection outputs and the dataset live.",
    )
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig,
        description="Which classes and candidate clips get_relevant_meta_data.py selects.",
    )
    splits: SplitsConfig = Field(
        default_factory=SplitsConfig,
        description="Meta-learning class splits: class proportions (summing to 1) and their seed.",
    )
    download: DownloadConfig = Field(
        default_factory=DownloadConfig,
        description=(
            "How download_data.py (and rebuild_from_manifest.py) fetch the clips: workers, "
            "source, cookies, pacing, retries, tools."
        ),
    )
    audio: AudioConfig = Field(
        default_factory=AudioConfig,
        description="The format of the clips written by download_data.py.",
    )
    postprocess: PostprocessConfig = Field(
        default_factory=PostprocessConfig,
        description=(
            "Post-processing for meta-learning (audioset-tools clean / to-npy / melspec / "
            "stats / pack)."
        ),
    )
    # Where this config was read from; relative paths in it were resolved against its folder.
    source: Path | None = Field(default=None, exclude=True)


_PATH_FIELDS = (
    ("paths", "metadata_dir"),
    ("paths", "meta_dir"),
    ("paths", "output_dir"),
    ("download", "cookies_file"),
    ("download", "ffmpeg_path"),
    ("postprocess", "npy_dir"),
    ("postprocess", "features_dir"),
    ("postprocess", "packed_dir"),
)


def load_config(
    path: Path | str | None = None, overrides: list[str] | None = None, *, required: bool = True
) -> Config:
    """Read, override and validate a control.yaml; raise :class:`UserError` on any problem.

    ``path`` None means ./control.yaml. With ``required=False`` and no explicit ``path``,
    a missing ./control.yaml means the defaults (plus ``overrides``), with relative paths
    resolved against the current directory and ``source`` None. ``overrides`` are
    ``dotted.key=value`` strings whose value is parsed as YAML. Relative paths resolve
    against the config file's folder, so a job behaves the same whatever the current
    directory is.
    """
    config_path = Path(path if path is not None else DEFAULT_CONFIG_NAME)
    if config_path.is_file():
        raw, source = _read_yaml(config_path), config_path.resolve()
    elif required or path is not None:
        raise UserError(
            f"config file not found: {config_path}\n"
            f"  Copy control.yaml from the audioset-tools repository next to your data, "
            f"or pass --config PATH."
        )
    else:
        raw, source = {}, None
    for override in overrides or []:
        _apply_override(raw, translate_legacy_override(override))
    _drop_deprecated(raw, config_path if source is not None else Path("--set overrides"))
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        where = config_path if source is not None else Path("--set overrides")
        raise UserError(format_validation_error(where, exc, raw)) from None
    base = source.parent if source is not None else Path.cwd()
    return _resolve_paths(config, base).model_copy(update={"source": source})


def _read_yaml(config_path: Path) -> dict[str, Any]:
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_path}: cannot read the config file ({exc})") from None
    try:
        raw = _load_unique_keys(text, config_path)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(
            f"{config_path}: not valid YAML{where}: {problem}\n"
            f"  Fix the syntax there (indentation, a missing ':' or an unclosed quote)."
        ) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(
            f"{config_path}: the top level must be a mapping of sections "
            f"(seed, paths, selection, splits, download, audio), got {type(raw).__name__}"
        )
    return translate_legacy_keys(raw, config_path)


def _load_unique_keys(text: str, config_path: Path) -> Any:
    """``yaml.safe_load``, except that a key given twice in one mapping is an error.

    PyYAML keeps the last value silently: a second ``leaf_only`` further down would change
    the job without a word. The document is composed into nodes (which know their lines),
    checked, then constructed.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _reject_duplicate_keys(node, (), config_path, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _reject_duplicate_keys(node: yaml.Node, where: tuple[str, ...], config_path: Path, seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *defaults' entries are meant to be overridden
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            line = key_node.start_mark.line + 1
            if key in first_line:
                dotted = ".".join((*where, key))
                raise UserError(
                    f"{config_path}: key {dotted} is given twice, at line {first_line[key]} and line {line}; "
                    f"YAML would silently keep the last one.\n  Delete one of them."
                )
            first_line[key] = line
            _reject_duplicate_keys(value_node, (*where, key), config_path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*where, str(position)), config_path, seen)


def _drop_deprecated(raw: dict[str, Any], where: Path) -> None:
    for keys, reason in DEPRECATED_KEYS.items():
        node: Any = raw
        for part in keys[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and keys[-1] in node:
            del node[keys[-1]]
            log.warning("%s: %s is deprecated and ignored: %s; remove it.", where, ".".join(keys), reason)


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, value_text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {override!r}: expected dotted.key=value, e.g. --set download.workers=4")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        value = value_text
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise UserError(f"--set {override!r}: {prefix} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _lookup(raw: Any, loc: tuple[Any, ...]) -> tuple[bool, Any]:
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return [name for name, f in model.model_fields.items() if not f.exclude]


def format_validation_error(config_path: Path, exc: ValidationError, raw: dict[str, Any]) -> str:
    """One readable message per problem: file, dotted key, the bad value and what is allowed."""
    lines = [f"{config_path}: invalid configuration"]
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc[:-1]))
            lines.append(f"  {key}: unknown key. Allowed here: {allowed}")
            continue
        found, value = _lookup(raw, loc)
        # A model-level rule (e.g. proportions summing to 1) names the section, whose
        # whole mapping would only be noise; its message already quotes the values.
        shown = f" (got {value!r})" if found and not isinstance(value, dict) else ""
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        lines.append(f"  {key}: {message}{shown}")
    lines.append("  Fix these keys in the file (or the matching --set overrides); see the comments in control.yaml.")
    return "\n".join(lines)


def _resolve_paths(config: Config, base: Path) -> Config:
    updates: dict[str, dict[str, Any]] = {}
    for section, name in _PATH_FIELDS:
        value = getattr(getattr(config, section), name)
        if value is not None:
            resolved = value.expanduser()
            if not resolved.is_absolute():
                resolved = base / resolved
            updates.setdefault(section, {})[name] = resolved
    # Archive paths may be globs, so they stay text; only a relative start is anchored.
    updates.setdefault("download", {})["sources"] = [_anchored(s, base) for s in config.download.sources]
    return config.model_copy(
        update={
            section: getattr(config, section).model_copy(update=fields)
            for section, fields in updates.items()
        }
    )


def _anchored(source: SourceConfig, base: Path) -> SourceConfig:
    """An archive's path (which may be a glob, so it stays text) with a relative start anchored at ``base``."""
    if source.path is None:
        return source
    path = Path(source.path).expanduser()
    return source.model_copy(update={"path": str(path if path.is_absolute() else base / path)})
