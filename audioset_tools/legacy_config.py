"""The original tool's control.yaml (AudioSet-For-Meta-Learning): its keys read in their new places.

Its file had three sections of its own, ``classes``, ``data`` and ``dir``; ``seed`` is
unchanged. Each old key is moved to the key that now means the same, with one warning
naming the new key, so a user can rename it once and for all. The string ``'None'``
(the original's spelling of "no value") becomes null. Only the raw mapping is touched;
validation happens afterwards, on the translated keys, as for any control.yaml.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .errors import UserError

log = logging.getLogger(__name__)

# (old section, old key) -> (new section, new key)
RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("classes", "leafs"): ("selection", "leaf_only"),
    ("classes", "quality_threshold"): ("selection", "quality_threshold"),
    ("data", "max_per_class"): ("download", "samples_per_class"),
    ("data", "start_index"): ("download", "start_index"),
    ("data", "end_index"): ("download", "end_index"),
    ("dir", "meta_folder"): ("paths", "meta_dir"),
    ("dir", "cookie_path"): ("download", "cookies_file"),
}
# Old keys that mean nothing now, and why.
IGNORED: dict[tuple[str, str], str] = {
    ("dir", "df_file"): "the original tool never read it either",
}
LEGACY_SECTIONS = ("classes", "data", "dir")


def translate_legacy_keys(raw: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """``raw`` with the original tool's sections replaced by the current keys (a new dict).

    Raises :class:`UserError` for an old key with no current meaning, or an old key whose
    new place the file also sets (two values for one setting: which one was meant?).
    """
    if isinstance(raw.get("classes"), list):
        raise UserError(
            f"{config_path}: classes: a list of classes belongs under the selection section "
            f"(selection.classes); a top-level classes section is the original tool's (leafs, quality_threshold)."
        )
    if not any(isinstance(raw.get(section), dict) for section in LEGACY_SECTIONS):
        return raw
    translated = {key: (dict(value) if isinstance(value, dict) else value) for key, value in raw.items()}
    for section in LEGACY_SECTIONS:
        old_section = translated.get(section)
        if not isinstance(old_section, dict):
            continue
        del translated[section]
        for key, value in old_section.items():
            old = f"{section}.{key}"
            if (section, key) in IGNORED:
                log.info("%s: note: %s is ignored (%s); you can delete it", config_path, old, IGNORED[section, key])
                continue
            if (section, key) not in RENAMED:
                known = ", ".join(k for s, k in [*RENAMED, *IGNORED] if s == section)
                raise UserError(
                    f"{config_path}: {old}: unknown key of the original tool's control.yaml "
                    f"(its {section} section had: {known}).\n"
                    f"  Remove it, or write the setting you mean with its current key (see control.yaml)."
                )
            new_section, new_key = RENAMED[section, key]
            new = f"{new_section}.{new_key}"
            target = translated.setdefault(new_section, {})
            if not isinstance(target, dict):
                continue  # a malformed section: validation reports it with its own message
            if new_key in target:
                raise UserError(
                    f"{config_path}: both {old} (the original tool's key) and {new} are set; "
                    f"they are the same setting. Keep {new} and delete {old}."
                )
            value = _none_string(value)
            note = ""
            if (section, key) == ("dir", "cookie_path") and value is not None:
                cookies = Path(str(value)).expanduser()
                if not (cookies if cookies.is_absolute() else config_path.parent / cookies).exists():
                    log.warning(
                        "%s: %s (the original tool's key) names %s, which does not exist: no cookies are used. "
                        "Set %s when you have one.",
                        config_path, old, value, new,
                    )
                    continue
            if (section, key) == ("classes", "leafs") and value is False:
                note = " (the original tool kept leaf classes only whatever this said; now false means all nodes)"
            target[new_key] = value
            log.warning("%s: %s is the original tool's key, read as %s%s; write %s instead to silence this",
                        config_path, old, new, note, new)
    return translated


def translate_legacy_override(override: str) -> str:
    """``--set data.max_per_class=5`` as ``--set download.samples_per_class=5`` (with a warning)."""
    key, sep, value = override.partition("=")
    section, _, name = key.strip().partition(".")
    if not sep or (section, name) not in RENAMED:
        return override
    new = ".".join(RENAMED[section, name])
    log.warning("--set %s: the original tool's key, read as %s", key.strip(), new)
    return f"{new}={value}"


def _none_string(value: Any) -> Any:
    # The original control.yaml wrote "no value" as the quoted string 'None'.
    return None if isinstance(value, str) and value.strip() == "None" else value
