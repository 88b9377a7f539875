"""One list of the columns that hold a person's words (issue 17): erasure works from
bot.store.PERSON_TEXT alone, so every text column must be either in it or declared in
NOT_PERSON_TEXT, and every `# person-text` marker in the schema must be in the list."""

import re
from pathlib import Path

from bot import store as store_module
from bot.store import NOT_PERSON_TEXT, PERSON_TEXT, Store


def test_every_text_column_is_person_text_or_declared_not(tmp_path):
    s = Store(tmp_path / "cols.db")
    columns = set(s.text_columns())
    declared = set(PERSON_TEXT) | {(t, c) for t, cols in NOT_PERSON_TEXT.items() for c in cols}
    unlisted = sorted(columns - declared)
    assert unlisted == [], (
        f"text column(s) {unlisted} are in neither bot.store.PERSON_TEXT (a person's words or name: mark the column "
        "'# person-text' and say how to find one person's rows and what erasure writes) nor NOT_PERSON_TEXT (say why)")
    assert sorted(declared - columns) == []  # nothing listed that no longer exists
    assert not set(PERSON_TEXT) & {(t, c) for t, cols in NOT_PERSON_TEXT.items() for c in cols}


def _marked_columns(source: str) -> set[tuple[str, str]]:
    """(table, column) for each `# person-text` marker in the schema's SQL."""
    out, table = set(), None
    for line in source.splitlines():
        m = re.search(r"CREATE TABLE (\w+)", line)
        if m:
            table = m.group(1)
        if "person-text" not in line or line.lstrip().startswith("#"):
            continue
        m = re.match(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", line)
        if m:
            out.add((m.group(1), m.group(2)))
            continue
        m = re.match(r"\s*(\w+) ", line)
        if m and table:
            out.add((table, m.group(1)))
    return out


def test_the_person_text_markers_and_the_list_agree():
    source = Path(store_module.__file__).read_text()
    schema = source[:source.index("MIGRATIONS = [")]
    assert _marked_columns(schema) == set(PERSON_TEXT)


def test_a_new_unmarked_text_column_is_caught(tmp_path):
    s = Store(tmp_path / "new.db")
    s.db.execute("ALTER TABLE comments ADD COLUMN summary TEXT")
    declared = set(PERSON_TEXT) | {(t, c) for t, cols in NOT_PERSON_TEXT.items() for c in cols}
    assert set(s.text_columns()) - declared == {("comments", "summary")}
