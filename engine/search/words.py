"""Words as the text index sees them: folded, split, and their one-letter-deleted spellings.

One place for the rules that the reading pass (writing what was read) and the text retriever (reading a query)
must share, or a word would be stored one way and looked for another:

- `fold`: case- and accent-folded ("CAFÉ" → "cafe", "Straße" → "strasse"), as SQLite's unicode61 tokenizer with
  remove_diacritics folds the words it indexes, and as the trigram index's `folded` column is stored;
- `words`: the folded words of a text (runs of letters and digits, as unicode61 splits them);
- `deletions`: a word's spellings with one letter left out. Two words one edit apart (a letter misread,
  missing or added) share one of these, so a query word finds a word one misread letter away by looking its
  deletions up among those of the words read (a deletion neighbourhood, as SymSpell does).
"""

from __future__ import annotations

import re
import unicodedata

#: Words at least this long are found despite one misread letter; shorter ones must match exactly, or too many
#: unrelated words would ("cat" and "car", "sign" and "sing").
FUZZY_MIN_LENGTH = 5
#: Parts of a code or plate are found inside longer ones from this many characters (the trigram index's size).
CODE_MIN_LENGTH = 3

_WORD = re.compile(r"[^\W_]+")

_STOP_WORDS = """
    a an the and or of in on at to for from with by near around about into over under of off up
    is are was were be been it its this that these those there here my our your his her their me us we you
    i he she they them what which who where when how some any all each every no not very just
    photo photos picture pictures image images video videos clip clips shot shots moment moments screenshot
    says say saying said written writes reads reading read text word words sign that show shows showing
"""
#: Words that say how a person phrases a search, not what is written in the picture.
STOP_WORDS = frozenset(_STOP_WORDS.split())


def fold(text: str) -> str:
    """Case- and accent-folded text: compatibility-decomposed, combining marks dropped, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The folded words of `text`, in order."""
    return _WORD.findall(fold(text))


def deletions(word: str) -> set[str]:
    """`word` with one of its letters left out, each way (empty for words shorter than FUZZY_MIN_LENGTH)."""
    if len(word) < FUZZY_MIN_LENGTH:
        return set()
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """Whether `b` is `a` with at most one letter changed, added or left out."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    shorter, longer = (a, b) if len(a) < len(b) else (b, a)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def is_code(word: str) -> bool:
    """A code, plate or number ("re16", "b52", "4711"): letters and digits mixed, or digits only."""
    return any(c.isdigit() for c in word)
