"""The one typed configuration: every parameter of every step, loaded from control.yaml.

Library functions never read YAML; entry points call :func:`load_config` once and pass
the validated model (or parts of it) down.
"""

from __future__ import annotations

import logging
import math
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
    metadata_dir: Path = Path("metadata")
    meta_dir: Path = Path("MetaData")
    output_dir: Path = Path("AudioSet_Data")


class SelectionConfig(_Section):
    subsets: list[Subset] = Field(default_factory=lambda: ["balanced", "unbalanced", "eval"], min_length=1)
    leaf_only: bool = True
    quality_threshold: Fraction = 0.8
    unknown_quality: Literal["exclude", "include"] = "exclude"
    exclude_restrictions: list[Literal["blacklist", "abstract"]] = Field(
        default_factory=lambda: ["blacklist", "abstract"]
    )
    min_candidates: NonNegativeInt = 0
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    label_policy: Literal["any", "exclusive"] = "exclusive"
    segment_seconds: PositiveFloat | None = 10.0
    strict: bool = False
    plot: bool = False

    @field_validator("subsets")
    @classmethod
    def _no_repeated_subsets(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each subset may be named once")
        return value


class SplitsConfig(_Section):
    train: Fraction = 0.7
    val: Fraction = 0.1
    test: Fraction = 0.2
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitsConfig:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class DownloadConfig(_Section):
    samples_per_class: PositiveInt = 10
    start_index: NonNegativeInt = 0
    end_index: NonNegativeInt | None = None
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    url_template: str = "https://www.youtube.com/watch?v={ytid}"
    cookies_file: Path | None = None
    fetch_strategy: Literal["range", "whole_file"] = "range"
    max_retries: NonNegativeInt = 3
    retry_backoff_seconds: NonNegativeFloat = 2.0
    max_attempts_per_class: PositiveInt | None = None
    sleep_between_requests: NonNegativeFloat = 1.0
    sleep_jitter: NonNegativeFloat = 0.5
    max_requests_per_hour: PositiveInt | None = None
    max_consecutive_rate_limits: PositiveInt = 5
    max_consecutive_transient: PositiveInt = 10
    backoff_base_seconds: PositiveFloat = 30.0
    backoff_max_seconds: PositiveFloat = 1800.0
    proxies: list[str] = Field(default_factory=list)
    js_runtime: str | None = None
    ffmpeg_path: Path | None = None
    socket_timeout: PositiveFloat = 30.0
    duration_tolerance: PositiveFloat = 0.05

    @field_validator("end_index", mode="before")
    @classmethod
    def _none_string(cls, value: Any) -> Any:
        # The original tool's control.yaml spelled "all classes" as the string 'None'.
        if isinstance(value, str) and value.strip().lower() in {"none", "null", ""}:
            return None
        return value

    @field_validator("url_template")
    @classmethod
    def _has_ytid_placeholder(cls, value: str) -> str:
        if "{ytid}" not in value:
            raise ValueError("must contain the placeholder {ytid}")
        return value

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
    format: Literal["wav", "flac"] = "wav"
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = 16000
    channels: Annotated[int, Field(ge=1, le=8)] = 1


class CleanConfig(_Section):
    expected_seconds: PositiveFloat | None = None
    silence_std: NonNegativeFloat = 0.0


class NpyConfig(_Section):
    dtype: Literal["float32", "int16"] = "float32"
    zscore: bool = False

    @model_validator(mode="after")
    def _zscore_needs_float(self) -> NpyConfig:
        if self.zscore and self.dtype == "int16":
            raise ValueError("zscore needs dtype float32 (z-normalised values do not fit int16)")
        return self


class MelspecConfig(_Section):
    sample_rate: Annotated[int, Field(ge=1000, le=192000)] = 16000
    n_fft: Annotated[int, Field(ge=16, le=65536)] = 1024
    hop_length: PositiveInt = 512
    n_mels: PositiveInt = 128
    fmin: NonNegativeFloat = 0.0
    fmax: PositiveFloat | None = None
    power: Literal[1.0, 2.0] = 2.0
    to_db: bool = True
    top_db: PositiveFloat | None = 80.0
    pad_mode: Literal["reflect", "constant"] = "reflect"
    chunk_seconds: PositiveFloat | None = None
    chunk_remainder: Literal["pad", "drop"] = "pad"

    @model_validator(mode="after")
    def _bands_below_nyquist(self) -> MelspecConfig:
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if top > self.sample_rate / 2 or self.fmin >= top:
            raise ValueError(
                f"need fmin < fmax <= sample_rate / 2, got fmin={self.fmin:g}, fmax={top:g}, "
                f"sample_rate={self.sample_rate}"
            )
        return self


class PackConfig(_Section):
    source: Literal["melspec", "npy"] = "melspec"
    splits: list[Literal["train", "val", "test"]] = Field(
        default_factory=lambda: ["train", "val", "test"], min_length=1
    )


class StatsConfig(_Section):
    source: Literal["melspec", "npy"] = "melspec"


class PostprocessConfig(_Section):
    npy_dir: Path = Path("AudioSet_npy")
    features_dir: Path = Path("AudioSet_melspec")
    packed_dir: Path = Path("AudioSet_packed")
    workers: Annotated[int, Field(ge=1, le=256)] | None = None
    batch_clips: Annotated[int, Field(ge=1, le=4096)] = 32
    normalisation: Literal["none", "global", "per_channel"] = "per_channel"
    clean: CleanConfig = Field(default_factory=CleanConfig)
    npy: NpyConfig = Field(default_factory=NpyConfig)
    melspec: MelspecConfig = Field(default_factory=MelspecConfig)
    pack: PackConfig = Field(default_factory=PackConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)


class Config(_Section):
    seed: NonNegativeInt = 0
    paths: PathsConfig = Field(default_factory=PathsConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
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
        _apply_override(raw, override)
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
        raw = yaml.safe_load(text)
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
    return raw


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
    return config.model_copy(
        update={
            section: getattr(config, section).model_copy(update=fields)
            for section, fields in updates.items()
        }
    )
