import pandas as pd
import pytest

from audioset_tools.download.plan import Candidate, ClassPlan, plan_download
from audioset_tools.errors import UserError


def _suitable(names):
    return pd.DataFrame(
        {
            "index": range(len(names)),
            "mid": [f"/m/{i}" for i in range(len(names))],
            "name": names,
            "quality": 1.0,
            "num_rated": 10,
            "num_candidates": 5,
            "split": ["train", "val", "test", "train", "train"][: len(names)],
        }
    )


def _candidates(rows):
    return pd.DataFrame(rows, columns=["class_index", "mid", "rank", "ytid", "start_seconds", "end_seconds", "subset", "labels"])


def test_slice_ranks_and_file_names():
    suitable = _suitable(["Dog", "Cat", "Bird"])
    cands = _candidates(
        [
            (1, "/m/1", 2, "bbbbbbbbbbb", 10.0, 20.0, "eval", "/m/1"),
            (1, "/m/1", 0, "aaaaaaaaaaa", 0.0, 10.0, "eval", "/m/1"),
            (1, "/m/1", 1, "../../etc/p", 0.0, 10.0, "eval", "/m/1"),  # hostile: dropped
            (1, "/m/1", 3, "ccccccccccc", 5.0, 5.0, "eval", "/m/1"),  # empty segment: dropped
            (2, "/m/2", 0, "ddddddddddd", 1.5, 11.5, "balanced", "/m/2,/m/9"),
            (0, "/m/0", 0, "eeeeeeeeeee", 1.5, 11.5, "balanced", "/m/0"),
        ]
    )
    plans = plan_download(suitable, cands, start_index=1, end_index=None, samples_per_class=7, audio_format="flac")
    assert [p.class_index for p in plans] == [1, 2]
    cat = plans[0]
    assert (cat.folder, cat.split, cat.target) == ("Cat", "val", 7)
    assert [c.ytid for c in cat.candidates] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    assert cat.candidates[1].file == "Cat/bbbbbbbbbbb_10000.flac"
    assert plans[1].candidates[0].labels == "/m/2,/m/9"


def test_max_attempts_is_a_rank_prefix_and_end_is_exclusive():
    suitable = _suitable(["Dog", "Cat", "Bird"])
    cands = _candidates([(0, "/m/0", r, f"{'abcdefghij'}{r}", 0.0, 10.0, "eval", "/m/0") for r in range(5)])
    plans = plan_download(
        suitable, cands, start_index=0, end_index=1, samples_per_class=2, audio_format="wav", max_attempts_per_class=3
    )
    assert len(plans) == 1
    assert [c.rank for c in plans[0].candidates] == [0, 1, 2]


def test_folders_do_not_depend_on_the_slice():
    suitable = _suitable(["A/B", "A B", "C"])
    cands = _candidates([])
    whole = plan_download(suitable, cands, start_index=0, end_index=None, samples_per_class=1, audio_format="wav")
    part = plan_download(suitable, cands, start_index=1, end_index=2, samples_per_class=1, audio_format="wav")
    assert part[0].folder == whole[1].folder != whole[0].folder


def test_empty_slice_is_a_user_error():
    with pytest.raises(UserError, match="lists 3 classes"):
        plan_download(_suitable(["a", "b", "c"]), _candidates([]), start_index=3, end_index=None,
                      samples_per_class=1, audio_format="wav")


def test_class_plan_refuses_paths_outside_its_folder():
    good = Candidate("abcdefghijk", 0.0, 10.0, 0, "", "Dog/abcdefghijk_0.wav")
    ClassPlan(0, "/m/0", "Dog", "train", "Dog", 1, (good,))
    for file in ["Cat/x.wav", "Dog/../x.wav", "Dog/.x.wav", "Dog/x.exe", "Dog/sub/x.wav"]:
        with pytest.raises(UserError):
            ClassPlan(0, "/m/0", "Dog", "train", "Dog", 1, (Candidate("abcdefghijk", 0.0, 10.0, 0, "", file),))
    for folder in ["..", "a/b", ".x"]:
        with pytest.raises(UserError):
            ClassPlan(0, "/m/0", "Dog", "train", folder, 1, ())
    with pytest.raises(UserError):
        ClassPlan(0, "/m/0", "Dog", "nope", "Dog", 1, ())
    with pytest.raises(UserError):
        Candidate("abc/../defg", 0.0, 10.0, 0, "", "Dog/a.wav")


def test_file_names_match_layout_and_duplicates_drop():
    import random

    from audioset_tools.dataset.layout import clip_file_name

    rng = random.Random(0)
    suitable = _suitable(["Dog", "Cat"])
    rows = [(0, "/m/0", r, f"id{r:09d}", round(rng.uniform(0, 500), rng.choice([0, 1, 3, 4])), 0, "eval", None)
            for r in range(200)]
    rows = [(c, m, r, y, s, s + 10.0, sub, lab) for c, m, r, y, s, _, sub, lab in rows]
    rows += [(0, "/m/0", 300, "id000000007", rows[7][4], rows[7][5], "eval", ""),  # same segment again
             (0, "/m/1", 301, "abcdefghijk", 0.0, 10.0, "eval", ""),  # MID of another class
             (1, "/m/1", 0, "abcdefghijk", 0.0005, 10.0, "eval", "/m/1")]
    plans = plan_download(_suitable(["Dog", "Cat"]), _candidates(rows), start_index=0, end_index=None,
                          samples_per_class=1, audio_format="wav")
    dog, cat = plans
    assert len(dog.candidates) == 200
    for c in dog.candidates:
        assert c.file == f"Dog/{clip_file_name(c.ytid, c.start_seconds, 'wav')}"
        assert c.labels == ""
    assert cat.candidates[0].file == "Cat/abcdefghijk_0.wav" and len(suitable) == 2
