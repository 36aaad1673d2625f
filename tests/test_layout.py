
import pytest

from audioset_tools.dataset.layout import (
    assign_class_folders,
    check_folder,
    clip_file_name,
    inside,
    is_clip_file_name,
    slugify,
)
from audioset_tools.errors import UserError


def test_slug_of_a_real_display_name():
    assert slugify("Male speech, man speaking") == "Male_speech_man_speaking"
    assert slugify("Hammond organ") == "Hammond_organ"
    assert slugify("Café/Bar") == "Cafe_Bar"


@pytest.mark.parametrize(
    "hostile",
    ["..", ".", "../../etc", "/etc/passwd", "a/../../b", "\\\\server\\share", "\x00", "...", "CON", "nul", "", "日本語"],
)
def test_hostile_names_give_plain_folder_names(hostile):
    folder = assign_class_folders([("/m/x", hostile)])["/m/x"]
    assert check_folder(folder) == folder
    assert "/" not in folder and "\\" not in folder and not folder.startswith(".")
    assert folder.lower() not in {"con", "nul"}


def test_colliding_names_get_distinct_folders_independent_of_order():
    pairs = [("/m/a", "Dog/Cat"), ("/m/b", "Dog Cat"), ("/m/c", "dog cat"), ("/m/d", "Bird")]
    first = assign_class_folders(pairs)
    second = assign_class_folders(list(reversed(pairs)))
    assert first == second
    assert len({f.lower() for f in first.values()}) == 4
    assert first["/m/d"] == "Bird"


def test_folder_length_is_bounded():
    folders = assign_class_folders([("/m/a", "x" * 500), ("/m/b", "x" * 400)])
    assert all(len(f) <= 80 for f in folders.values())
    assert folders["/m/a"] != folders["/m/b"]


def test_clip_file_name_validates_ytid_and_rounds_ms():
    assert clip_file_name("abcdefghijk", 30.0, "wav") == "abcdefghijk_30000.wav"
    assert clip_file_name("-bc_efghijk", 0.5004, "flac") == "-bc_efghijk_500.flac"
    assert is_clip_file_name("abcdefghijk_30000.wav")
    for bad in ["../abcdefgh", "abc/efghijk", "short", "abcdefghijkl", "abcdefghij.", "abcdefghij\x00"]:
        with pytest.raises(ValueError):
            clip_file_name(bad, 0, "wav")
    with pytest.raises(ValueError):
        clip_file_name("abcdefghijk", 0, "exe")


def test_inside_refuses_escapes(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert inside(root, "A/b.wav") == (root / "A" / "b.wav").resolve()
    for bad in ["../x.wav", "/etc/passwd", "A/../../x", "", "A\\..\\x", "./a"]:
        with pytest.raises(UserError):
            inside(root, bad)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UserError):
        inside(root, "link/x.wav")


@pytest.mark.parametrize("bad", ["", ".", "..", ".hidden", "a/b", "a\\b"])
def test_check_folder_rejects(bad):
    with pytest.raises(UserError):
        check_folder(bad)


@pytest.mark.parametrize(
    "name",
    ["manifest.csv", "metadata.csv", "ledger.sqlite3", "rebuild_report.csv", "Manifest.CSV", "ledger.sqlite3-wal",
     "validation.csv", "report", "REPORT", "_quarantine", ".download.lock"],
)
def test_class_folders_never_take_the_tools_own_names(name):
    from audioset_tools.dataset.layout import OWN_ROOT_NAMES

    folder = assign_class_folders([("/m/x", name), ("/m/y", "Bird")])["/m/x"]
    assert folder.lower() not in OWN_ROOT_NAMES
    assert check_folder(folder) == folder
    # Read from a shared manifest, such a folder is refused with a message, not used.
    if name.lower() in OWN_ROOT_NAMES:
        with pytest.raises(UserError):
            check_folder(name)


def test_own_root_names_cover_every_file_the_tool_writes_at_the_root():
    from audioset_tools.dataset.layout import OWN_ROOT_NAMES, QUARANTINE_DIR
    from audioset_tools.dataset.manifest import HF_METADATA_NAME, MANIFEST_NAME
    from audioset_tools.dataset.validate import VALIDATION_NAME
    from audioset_tools.download.ledger import LEDGER_NAME
    from audioset_tools.download.rebuild import REBUILD_REPORT_NAME
    from audioset_tools.download.report import REPORT_DIR_NAME
    from audioset_tools.download.runner import LOCK_NAME

    for name in (LEDGER_NAME, LOCK_NAME, QUARANTINE_DIR, HF_METADATA_NAME, MANIFEST_NAME, REBUILD_REPORT_NAME,
                 REPORT_DIR_NAME, VALIDATION_NAME):
        assert name.lower() in OWN_ROOT_NAMES
