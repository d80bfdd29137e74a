"""The column headers of Moodle's offline grading worksheet, in the languages Moodle ships.

Moodle writes the worksheet's headers in the downloading user's language and reads an
uploaded worksheet by the same strings (assignfeedback_offline's importer looks for
get_string('recordid', 'assign'), get_string('grade') and each feedback plugin's name), so a
German worksheet says "ID", "Bewertung" and "Feedback als Kommentar". The strings below are
those of Moodle's language packs (lang/<code>/assign.php, moodle.php and
assignfeedback_comments.php, as published in the AMOS language packs): the headers of
mod/assign's grading table when it is downloaded.

    identifier     assign/recordid                    "Participant 123" values
    grade          core grade (Moodle 4.x: gradenoun)
    feedback       assignfeedback_comments/pluginname
    maxgrade       assign/maxgrade
    changeable     assign/gradecanbechanged
    email          core email (the email column is also found by its values)

Headers are compared case-folded, with spaces collapsed and a trailing full stop or colon
dropped (pt's "A nota pode ser alterada." ends in one).
"""
from __future__ import annotations

import re

# meaning -> language code -> header
HEADERS: dict[str, dict[str, str]] = {
    "identifier": {"en": "Identifier", "de": "ID", "fr": "Identifiant", "es": "Identificador",
                   "it": "Identificativo", "nl": "Identificatie", "pt": "Número de identificação",
                   "pt_br": "Identificador"},
    "grade": {"en": "Grade", "de": "Bewertung", "fr": "Note", "es": "Calificación",
              "it": "Valutazione", "nl": "Cijfer", "pt": "Nota", "pt_br": "Nota"},
    "feedback": {"en": "Feedback comments", "de": "Feedback als Kommentar",
                 "fr": "Feedback par commentaires", "es": "Comentarios de retroalimentación",
                 "it": "Commenti", "nl": "Feedback", "pt": "Comentários de feedback",
                 "pt_br": "Comentários de feedback"},
    "maxgrade": {"en": "Maximum grade", "de": "Bestwertung", "fr": "Note maximale",
                 "es": "Calificación máxima", "it": "Valutazione massima", "nl": "Maximaal cijfer",
                 "pt": "Nota Máxima", "pt_br": "Nota máxima"},
    "changeable": {"en": "Grade can be changed", "de": "Bewertung kann geändert werden",
                   "fr": "La note peut être modifiée", "es": "La calificación puede cambiarse",
                   "it": "La valutazione può essere cambiata", "nl": "Het cijfer kan gewijzigd worden",
                   "pt": "A nota pode ser alterada.", "pt_br": "Nota pode ser alterada"},
    "email": {"en": "Email address"},
}
REQUIRED = ("identifier", "grade", "feedback")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def norm(header: str) -> str:
    return " ".join(str(header).replace("\ufeff", "").split()).casefold().rstrip(".:").strip()


_BY_TEXT = {norm(text): meaning for meaning, langs in HEADERS.items() for text in langs.values()}


def find_columns(headers: list[str], rows: list[list[str]]) -> dict[str, int]:
    """meaning -> column index for the worksheet's header row; the email column is also
    recognised by its values (most non-empty cells are email addresses)."""
    found: dict[str, int] = {}
    for i, h in enumerate(headers):
        meaning = _BY_TEXT.get(norm(h))
        if meaning and meaning not in found:
            found[meaning] = i
    if "email" not in found:
        for i in range(len(headers)):
            if i in found.values():
                continue
            cells = [r[i].strip() for r in rows if i < len(r) and r[i].strip()]
            if cells and sum(bool(EMAIL.match(c)) for c in cells) >= max(1, 0.8 * len(cells)):
                found["email"] = i
                break
    return found


def missing_message(path, headers: list[str], found: dict[str, int]) -> str | None:
    """None when the required columns are there, else one sentence naming what is missing."""
    lacking = [m for m in REQUIRED if m not in found]
    if not lacking:
        return None
    wanted = "; ".join(f"{m}: " + ", ".join(f"'{t}'" for t in dict.fromkeys(HEADERS[m].values()))
                       for m in lacking)
    shown = ", ".join(f"'{h}'" for h in headers) or "none"
    hint = (" Enable 'Feedback comments' for the assignment and download the worksheet again."
            if lacking == ["feedback"] else "")
    return (f"{path} is not a Moodle grading worksheet nngrader can read: no "
            f"{' / '.join(lacking)} column (looked for {wanted}). Its columns: {shown}.{hint}")
