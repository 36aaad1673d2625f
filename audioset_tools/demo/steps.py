"""Run the whole job on the built-in miniature AudioSet, offline, step by step.

Every step goes through the real command line (``audioset-tools <command> --config
DIR/control.yaml``): the same code a real run uses, with the real yt-dlp and ffmpeg, against
a media server on 127.0.0.1 serving generated audio. After each step the demo checks what
the step should have produced, so a broken install fails here, named, in a minute or two
instead of days into a real download.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from . import catalog

# Marks a folder the demo made, so a rerun with the same --output may clear it.
MARKER = ".audioset-tools-demo"
CONFIG_NAME = "control.yaml"
SOURCES_DIR = "demo_sources"
SAMPLES_PER_CLASS = 3
EPISODE_SHAPE = {"n_way": 5, "k_shot": 1, "q_query": 2, "episodes": 3}

_CONFIG = """\
# control.yaml written by `audioset-tools demo`: the defaults, except what makes the demo
# small, fast and local. The media server at url_template lived only while the demo ran.
seed: 0
paths:
  metadata_dir: metadata
  meta_dir: MetaData
  output_dir: AudioSet_Data
download:
  samples_per_class: {samples}
  workers: 2
  url_template: "{url_template}"
  sleep_between_requests: 0
  sleep_jitter: 0
  retry_backoff_seconds: 0
  max_retries: 1
  socket_timeout: 10
postprocess:
  workers: 2
"""


class StepFailed(Exception):
    """A step ran but did not produce what it should have."""


@dataclass
class DemoContext:
    folder: Path
    command_options: list[str]
    url_template: str = ""

    @property
    def config(self) -> Path:
        return self.folder / CONFIG_NAME

    @property
    def dataset(self) -> Path:
        return self.folder / "AudioSet_Data"

    def cli(self, *arguments: str, config: bool = True, expected_exit: int = 0) -> None:
        """Run one ``audioset-tools`` command; any other exit status than expected fails the step."""
        from ..cli import main

        argv = [*arguments, *self.command_options, *(["--config", str(self.config)] if config else [])]
        code = main(argv)
        if code != expected_exit:
            raise StepFailed(f"`audioset-tools {' '.join(arguments)}` exited with status {code}"
                             f" (expected {expected_exit})")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _relative(ctx: DemoContext, path: Path) -> str:
    return str(path.relative_to(ctx.folder))


# -- the steps --------------------------------------------------------------------------------

def step_select(ctx: DemoContext) -> str:
    import pandas as pd

    ctx.cli("select")
    classes = pd.read_csv(ctx.folder / "MetaData" / "suitable_classes.csv")
    _expect(len(classes) == 7, f"expected 7 suitable classes from the demo metadata, got {len(classes)}")
    splits = classes["split"].value_counts().to_dict()
    return (f"chose {len(classes)} classes (train {splits.get('train', 0)}, val {splits.get('val', 0)}, "
            f"test {splits.get('test', 0)}) and ranked their candidates; look at MetaData/suitable_classes.csv "
            f"and MetaData/candidates.csv")


def step_download(ctx: DemoContext) -> str:
    from ..dataset.audio_info import probe_audio, segment_frames
    from ..dataset.manifest import MANIFEST_NAME, read_manifest
    from ..download.ledger import LEDGER_NAME, Ledger

    ctx.cli("download")
    with Ledger(ctx.dataset / LEDGER_NAME, read_only=True) as ledger:
        latest = ledger.latest_outcomes()
    wrong = [
        f"{ytid}: {outcome} (expected {catalog.expected_outcome(ytid)})"
        for ytid, outcome in zip(latest["ytid"], latest["outcome"])
        if outcome != catalog.expected_outcome(ytid)
    ]
    _expect(not wrong, "unexpected download outcomes: " + "; ".join(wrong))
    manifest = read_manifest(ctx.dataset / MANIFEST_NAME)
    ok = int((latest["outcome"] == "ok").sum())
    _expect(len(manifest) == ok, f"manifest.csv lists {len(manifest)} clips, the ledger {ok}")
    # Exact lengths, also for the segment that starts at 0 s (where a seek used to lose a codec frame).
    inexact = [
        f"{row.file}: {info.frames} samples, not {expected}"
        for row in manifest.itertuples()
        for info, expected in [(probe_audio(ctx.dataset / row.file),
                                segment_frames(row.start_seconds, row.end_seconds, int(row.sample_rate)))]
        if info.frames != expected
    ]
    _expect(not inexact, "clips without the exact sample count: " + "; ".join(inexact))
    counts = latest["outcome"].value_counts().to_dict()
    failed = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()) if outcome != "ok")
    return (f"fetched {ok} clips through yt-dlp + ffmpeg from the local server; recorded failures: {failed}; "
            f"look at AudioSet_Data/manifest.csv and AudioSet_Data/{LEDGER_NAME}")


def _silent_videos() -> set[str]:
    return {ytid for ytid, kind in catalog.SPECIAL.items() if kind == catalog.SILENT}


def step_validate(ctx: DemoContext) -> str:
    import pandas as pd

    from ..dataset.validate import default_details_path

    # The silent video downloads fine; validate must catch it (exit 1 = damaged) and nothing else.
    ctx.cli("validate", str(ctx.dataset), expected_exit=1)
    details = default_details_path(ctx.dataset)
    problems = pd.read_csv(details, dtype=str)
    found = set(zip(problems["kind"], problems["ytid"]))
    expected = {("silent", ytid) for ytid in _silent_videos()}
    _expect(found == expected, f"validate should flag exactly {sorted(expected)}, found {sorted(found)}")
    return (f"every clip matches manifest.csv except {len(expected)} all-silent clip(s), as planted; "
            f"look at {_relative(ctx, details)}")


def step_validate_again(ctx: DemoContext) -> str:
    from ..dataset.validate import default_details_path

    ctx.cli("validate", str(ctx.dataset))
    return f"after clean the dataset is intact; look at {_relative(ctx, default_details_path(ctx.dataset))}"


def step_report(ctx: DemoContext) -> str:
    from ..download.report import REPORT_DIR_NAME

    ctx.cli("report", str(ctx.dataset), config=False)
    summary = ctx.dataset / REPORT_DIR_NAME / "summary.md"
    _expect(summary.is_file(), f"report wrote no {summary}")
    return f"figures and a summary; look at {_relative(ctx, summary.parent)}/"


def step_clean(ctx: DemoContext) -> str:
    from ..dataset.quarantine import quarantine_list_path, read_quarantine_list

    ctx.cli("clean")
    listed = read_quarantine_list(ctx.dataset)
    _expect(set(listed["ytid"]) == _silent_videos(),
            f"clean should quarantine exactly {sorted(_silent_videos())}, listed {sorted(set(listed['ytid']))}")
    return (f"set aside {len(listed)} bad clip(s) ({', '.join(sorted(set(listed['reason'])))}); "
            f"look at {_relative(ctx, quarantine_list_path(ctx.dataset))}")


def step_melspec(ctx: DemoContext) -> str:
    import pandas as pd

    from ..post.derived import index_path

    ctx.cli("melspec")
    index = pd.read_csv(index_path(ctx.folder / "AudioSet_melspec"))
    _expect(len(index) > 0, "melspec wrote an empty index")
    shapes = sorted(set(index["shape"]))
    # Every demo segment lasts 10 s, so every clip must have the same sample count and
    # every spectrogram the same shape; pack (and a training batch) depends on it.
    _expect(len(shapes) == 1,
            f"10 s clips gave spectrograms of different shapes ({', '.join(shapes)}): the download "
            f"did not cut every clip to an exact sample count")
    return f"{len(index)} log-mel spectrograms of shape {shapes[0]}; look at AudioSet_melspec/"


def step_stats(ctx: DemoContext) -> str:
    from ..post.stats import stats_path

    ctx.cli("stats")
    stats = stats_path(ctx.folder / "AudioSet_melspec")
    _expect(stats.is_file(), f"stats wrote no {stats}")
    return f"mean and std per mel band from the train classes only; look at {_relative(ctx, stats)}"


def step_pack(ctx: DemoContext) -> str:
    import numpy as np

    ctx.cli("pack")
    packed = ctx.folder / "AudioSet_packed" / "melspec"
    shapes = {}
    for split in ("train", "val", "test"):
        path = packed / f"{split}.npy"
        _expect(path.is_file(), f"pack wrote no {path}")
        shapes[split] = np.load(path, mmap_mode="r").shape
    shown = ", ".join(f"{split} {'x'.join(map(str, shape))}" for split, shape in shapes.items())
    return f"one memory-mappable array per split ({shown}); look at AudioSet_packed/melspec/"


def step_episodes(ctx: DemoContext) -> str:
    from .episodes import sample_episodes

    shapes = sample_episodes(ctx.folder / "AudioSet_packed", "melspec", "train", **EPISODE_SHAPE)
    _expect(shapes.episodes == EPISODE_SHAPE["episodes"], f"drew {shapes.episodes} episodes")
    n, k, q = EPISODE_SHAPE["n_way"], EPISODE_SHAPE["k_shot"], EPISODE_SHAPE["q_query"]
    _expect(shapes.support[0] == n * k and shapes.query[0] == n * q, f"wrong episode shapes {shapes}")
    how = ("the PyTorch loaders (PackedDataset + episode_loader)" if shapes.backend == "torch"
           else "numpy on the packed arrays (pip install '.[torch]' for the PyTorch loaders)")
    return (f"{shapes.episodes} {n}-way {k}-shot episodes of the train split through {how}: "
            f"support {list(shapes.support)}, query {list(shapes.query)}")


STEPS: tuple[tuple[str, Callable[[DemoContext], str]], ...] = (
    ("select", step_select),
    ("download", step_download),
    ("validate", step_validate),
    ("report", step_report),
    ("clean", step_clean),
    ("validate again", step_validate_again),
    ("melspec", step_melspec),
    ("stats", step_stats),
    ("pack", step_pack),
    ("episodes", step_episodes),
)


# -- the folder and the run -------------------------------------------------------------------

def prepare_folder(output: Path | None) -> tuple[Path, bool]:
    """The demo folder (created) and whether the demo made it as a temporary one."""
    if output is None:
        return Path(tempfile.mkdtemp(prefix="audioset-tools-demo-")), True
    output = Path(output).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if not (output / MARKER).is_file():
            raise UserError(
                f"--output {output}: the folder is not empty and not an earlier demo's; "
                f"give a new or empty folder (the demo clears only its own folders)"
            )
        for entry in output.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    output.mkdir(parents=True, exist_ok=True)
    return output, False


def _setup(ctx: DemoContext) -> None:
    shutil.copytree(catalog.metadata_folder(), ctx.folder / "metadata",
                    ignore=shutil.ignore_patterns("README.md", "__pycache__"))
    ctx.config.write_text(_CONFIG.format(samples=SAMPLES_PER_CLASS, url_template=ctx.url_template), encoding="utf-8")


@contextlib.contextmanager
def _direct_to_localhost() -> Iterator[None]:
    """Keep a proxy set in the environment (yt-dlp, ffmpeg and urllib all read it) away from
    the demo's own server on 127.0.0.1."""
    saved = {name: os.environ.get(name) for name in _NO_PROXY_NAMES}
    current = saved["no_proxy"] or saved["NO_PROXY"] or ""
    value = ",".join(part for part in (current, "127.0.0.1", "localhost") if part)
    for name in _NO_PROXY_NAMES:
        os.environ[name] = value
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


_NO_PROXY_NAMES = ("no_proxy", "NO_PROXY")


def run_demo(output: Path | None, *, keep: bool, command_options: Sequence[str] = (),
             say: Callable[[str], None] = print) -> int:
    """Run every step into ``output`` (a new temporary folder when None); 0 when all passed."""
    from ..sources.ffmpeg_bin import find_ffmpeg
    from .server import DemoMediaServer
    from .sounds import make_sources

    total = len(STEPS) + 1
    folder, temporary = prepare_folder(output)
    (folder / MARKER).write_text("made by audioset-tools demo; a rerun of the demo may clear this folder\n")
    ctx = DemoContext(folder, list(command_options))
    started = time.monotonic()
    say(f"audioset-tools demo: the whole job on a built-in miniature AudioSet, offline, in {folder}")
    step_name = "media"
    try:
        say(f"\n== 1/{total} media: generate source audio and start a media server on 127.0.0.1")
        sources = make_sources(folder / SOURCES_DIR, find_ffmpeg())
        with DemoMediaServer(sources.lookup) as server, _direct_to_localhost():
            ctx.url_template = server.url_template("webm")
            _setup(ctx)
            say(f"   -> serving generated audio at {server.base_url} (HTTP Range); wrote {CONFIG_NAME} "
                f"and a copy of the demo metadata in metadata/")
            for number, (step_name, step) in enumerate(STEPS, start=2):
                say(f"\n== {number}/{total} {step_name}")
                summary = step(ctx)
                say(f"   -> {summary}")
    except (StepFailed, UserError) as exc:
        return _failed(say, step_name, str(exc), folder)
    except KeyboardInterrupt:
        say(f"\ndemo interrupted during step '{step_name}'; its folder is left at {folder}")
        return 130
    except Exception as exc:  # noqa: BLE001 - a self-test must name the step whatever broke
        say(traceback.format_exc())
        return _failed(say, step_name, f"{type(exc).__name__}: {exc}", folder)
    elapsed = time.monotonic() - started
    say(f"\ndemo passed: all {total} steps in {elapsed:.0f} s.")
    if temporary and not keep:
        shutil.rmtree(folder, ignore_errors=True)
        say(f"removed {folder} (rerun with --keep, or --output DIR, to look at the files)")
    else:
        say(f"everything is in {folder}; rerun any step there with --config {folder / CONFIG_NAME}")
    say("next, the real run: edit control.yaml, then get_relevant_meta_data.py and download_data.py "
        "(or audioset-tools select, then audioset-tools download)")
    return 0


def _failed(say: Callable[[str], None], step: str, reason: str, folder: Path) -> int:
    say(f"\ndemo FAILED at step '{step}': {reason}")
    say(f"the demo folder is kept for inspection: {folder}")
    return 1
