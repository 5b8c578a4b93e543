"""Build the spaCy pipeline that finds people's names for the personal-data detector.

No pretrained spaCy model can be downloaded where safe-report runs, so this pipeline is made
from files in the repo (`bot/privacy/names/`):

1. `safe_report_name_lexicon`: marks tokens that can be part of a name (from our own name
   lists per tradition, capitalisation, and lists of words that are never names).
2. `entity_ruler`: cue patterns ("my name is X", "my husband X", "X here"...) that catch
   names the statistical model misses, lower-case ones included ("its me luz").
3. `safe_report_name_cues`: the ruler can only label a whole match, so this trims the cue
   words off and keeps the names aside in `doc.spans["name_cues"]`.
4. `ner`: a small statistical recogniser trained here, with a fixed seed, on PERSON examples
   generated from `person_templates.yml` and the name lists. It generalises to names that
   are in no list, from the words around them.
5. `safe_report_name_context`: merges 3 and 4 and grows names over hyphens and particles
   ("Al-Sayed", "Maria de la Cruz").

Build with `build_pii_pipeline(out_dir)` or `python -m bot.nlp.pii_pipeline OUT_DIR`. Loading
the result needs this module imported first (it registers the two custom components);
`bot.privacy.pii` does that.
"""

# No `from __future__ import annotations`: spaCy reads the factories' type hints at run time.
import itertools
import json
import random
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import spacy
import yaml
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.training import Example
from spacy.util import filter_spans, minibatch

NAMES_DIR = Path(__file__).resolve().parent.parent / "privacy" / "names"
PIPELINE_NAME = "safe_report_pii"
PIPELINE_VERSION = "0.1.0"
LABEL = "PERSON"
SEED = 0
EPOCHS = 12

# Words joining the parts of one name: "Maria de la Cruz", "Mohammed bin Salim".
NAME_PARTICLES = {
    "de", "da", "do", "dos", "das", "del", "della", "la", "le", "van", "von", "der", "den",
    "bin", "ibn", "bint", "binti", "al", "el", "abu", "ter", "y", "e", "st", "st.",
    # Vietnamese middle names: "Tran Thi Lan", "Nguyen Van Minh".
    "thi", "thị", "văn",
}
# Titles are kept inside the name span ("Mrs Okafor"): whoever reads the redacted text should
# not learn the surname, and a title alone says little.
TITLES = [
    "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "dr", "dr.", "auntie",
    "aunty", "uncle", "sheikh", "imam", "pastor", "sr", "sr.", "prof", "prof.", "professor",
    # Police and officials people name when reporting how they were treated.
    "pc", "dc", "ds", "di", "dci", "sgt", "sgt.", "sergeant", "inspector", "constable",
    "detective", "officer", "judge", "cllr", "councillor", "rev", "rev.", "reverend",
]
# People a victim or witness talks about; a name often follows ("my boss Tariq").
ROLES = [
    "husband", "wife", "partner", "boyfriend", "girlfriend", "fiance", "fiancé", "fiancee",
    "ex", "ex-husband", "ex-wife", "ex-partner", "ex-boyfriend", "ex-girlfriend", "spouse",
    "boss", "manager", "supervisor", "employer", "landlord", "landlady", "agent", "sponsor",
    "brother", "sister", "son", "daughter", "mum", "mom", "mother", "dad", "father", "uncle",
    "aunt", "auntie", "cousin", "nephew", "niece", "grandmother", "grandfather", "grandma",
    "grandad", "stepdad", "stepfather", "stepmum", "stepmother", "stepson", "stepdaughter",
    "mother-in-law", "father-in-law", "brother-in-law", "sister-in-law", "friend", "neighbour",
    "neighbor", "colleague", "coworker", "flatmate", "housemate", "roommate", "child", "baby",
    "kid", "teacher", "caseworker", "solicitor", "lawyer", "pimp", "attacker", "abuser",
    "daughter-in-law", "son-in-law", "in-law", "in-laws", "boss's", "husband's",
]
DETERMINERS = ["my", "his", "her", "our", "their", "your", "the", "a", "mi"]


# ---------------------------------------------------------------------------- name lists


def _read_list(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class NameLexicon:
    """Everything the pipeline knows about words, read from `bot/privacy/names/`."""

    first_names: dict[str, list[str]]  # tradition -> names as written
    surnames: dict[str, list[str]]
    ambiguous: frozenset[str]  # lower-case: names that are also ordinary words
    never: frozenset[str]  # lower-case: words that are never a name on their own
    places: tuple[str, ...]
    organisations: tuple[str, ...]

    @property
    def known_lower(self) -> frozenset[str]:
        """Lower-case words that, after a cue, are a name even when typed in lower case."""
        words: set[str] = set()
        for names in itertools.chain(self.first_names.values(), self.surnames.values()):
            for name in names:
                for part in re.split(r"[\s]+", name.lower()):
                    # Two-letter names (li, bo, ma...) clash with too many chat words.
                    if len(part) >= 3 and part not in STOP_WORDS:
                        words.add(part)
        return frozenset(words - self.ambiguous - self.never)

    @property
    def first_lower(self) -> frozenset[str]:
        return frozenset(n.lower() for names in self.first_names.values() for n in names)

    @property
    def not_name_words(self) -> frozenset[str]:
        """Lower-case single words that are never a name: never-list, places, organisations.

        A word that is also a first name (Jordan, Georgia, Chelsea) is left out: after a cue
        it is much more likely a person.
        """
        words = set(self.never)
        for phrase in itertools.chain(self.places, self.organisations):
            words.update(w for w in phrase.lower().split() if len(w) > 1)
        return frozenset(words - self.first_lower)


def load_lexicon(names_dir: Path = NAMES_DIR) -> NameLexicon:
    def by_tradition(prefix: str) -> dict[str, list[str]]:
        return {
            path.stem[len(prefix):]: _read_list(path)
            for path in sorted(names_dir.glob(f"{prefix}*.txt"))
        }

    return NameLexicon(
        first_names=by_tradition("first_"),
        surnames=by_tradition("last_"),
        ambiguous=frozenset(w.lower() for w in _read_list(names_dir / "ambiguous_words.txt")),
        never=frozenset(w.lower() for w in _read_list(names_dir / "never_names.txt")),
        places=tuple(_read_list(names_dir / "places.txt")),
        organisations=tuple(_read_list(names_dir / "organisations.txt")),
    )


# ------------------------------------------------------------------- custom components

for _attr in ("pii_known_name", "pii_weak_name", "pii_strong_name"):
    if not Token.has_extension(_attr):
        Token.set_extension(_attr, default=False)


class NameLexiconComponent:
    """Sets three token flags the ruler patterns match on.

    * `pii_known_name`: the word is in a name list (any case), and is not an ordinary word.
    * `pii_weak_name`: known, or capitalised and not a word that is never a name. Used after
      weak cues ("my husband X", "this is X"), where a lower-case common word is not a name.
    * `pii_strong_name`: any word that is not a stop word or a never-name. Used after strong
      cues ("my name is X"), where even an unknown lower-case word is a name.
    """

    def __init__(self, known: Iterable[str] = (), not_names: Iterable[str] = ()):
        self.known = frozenset(known)
        self.not_names = frozenset(not_names)

    def __call__(self, doc: Doc) -> Doc:
        for token in doc:
            lower = token.lower_
            word = lower.strip(".")
            # Letters with the odd inner apostrophe (O'Brien); no digits, no punctuation.
            wordlike = bool(word) and word.replace("'", "").replace("’", "").isalpha()
            if not wordlike or lower in STOP_WORDS or word in self.not_names:
                continue
            known = word in self.known
            capitalised = token.text[0].isupper()
            token._.pii_known_name = known
            token._.pii_weak_name = known or capitalised
            token._.pii_strong_name = True
        return doc

    def to_disk(self, path, exclude=()):  # noqa: ANN001 - spaCy's signature
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data = {"known": sorted(self.known), "not_names": sorted(self.not_names)}
        (path / "lexicon.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")

    def from_disk(self, path, exclude=()):  # noqa: ANN001
        data = json.loads((Path(path) / "lexicon.json").read_text("utf-8"))
        self.known = frozenset(data["known"])
        self.not_names = frozenset(data["not_names"])
        return self


@Language.factory("safe_report_name_lexicon")
def make_name_lexicon(nlp: Language, name: str) -> NameLexiconComponent:
    return NameLexiconComponent()


CUE_ID = re.compile(r"^cue:pre(\d+):post(\d+)$")
CUE_SPANS = "name_cues"


class NameCuesComponent:
    """Moves the ruler's matches out of `doc.ents`, with the cue words cut off.

    The ruler can only label its whole match ("my name is Amina"); its pattern id says how
    many cue tokens sit before and after the name ("cue:pre3:post0"). The trimmed names wait
    in `doc.spans["name_cues"]` so the statistical model runs on a clean document, and the
    two are merged afterwards (a ruler match and a model span for the same person become one).
    """

    def __call__(self, doc: Doc) -> Doc:
        cues = []
        for ent in doc.ents:
            match = CUE_ID.match(ent.ent_id_ or "")
            start, end = ent.start, ent.end
            if match:
                start += int(match.group(1))
                end -= int(match.group(2))
            if end > start:
                cues.append(Span(doc, start, end, label=LABEL))
        doc.spans[CUE_SPANS] = cues
        doc.ents = []
        return doc


@Language.factory("safe_report_name_cues")
def make_name_cues(nlp: Language, name: str) -> NameCuesComponent:
    return NameCuesComponent()


class NameContextComponent:
    """Merges cue matches with the model's PERSON spans and tidies every name.

    Overlapping spans become their union ("oluwaseun" from the model + "oluwaseun adebayo"
    from a cue); names grow over hyphens and particles and lose a trailing possessive.
    """

    def __call__(self, doc: Doc) -> Doc:
        cues = [(s.start, s.end) for s in doc.spans.get(CUE_SPANS, [])]
        model = []
        for ent in doc.ents:
            if ent.label_ != LABEL:
                continue
            for start, end in _split_at_punct(doc, ent.start, ent.end):
                part = doc[start:end]
                if self._overlaps(part, cues) or self._plausible(part):
                    model.append((start, end))
        ranges = sorted(model + cues)
        merged: list[list[int]] = []
        for start, end in ranges:
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        spans = []
        for start, end in merged:
            start, end = _grow_name(doc, start, end)
            if end > start:
                spans.append(Span(doc, start, end, label=LABEL))
        doc.ents = filter_spans(spans)
        return doc

    @staticmethod
    def _overlaps(span: Span, ranges: list[tuple[int, int]]) -> bool:
        return any(span.start < end and start < span.end for start, end in ranges)

    @staticmethod
    def _plausible(span: Span) -> bool:
        """Whether a span found by the model alone (no cue) is believable as a name."""
        known = [t._.pii_known_name for t in span]
        if any(known):
            return True
        # None of its words is in a name list. Then it must be capitalised, with no acronyms
        # ("NRPF", "SMS")...
        if not all(t.text[:1].isupper() and not (t.is_upper and len(t) > 1) for t in span
                   if t.is_alpha):
            return False
        if len(span) == 1:
            before = span.doc[span.start - 1] if span.start > 0 else None
            # ...not a lone capital at the start of a sentence ("Reply to ...")...
            if before is None or before.text in {".", "!", "?", "\n"}:
                return False
            # ...and not a lone word after "from/in/near", where it is most often a place.
            if before.lower_ in {"from", "in", "at", "near", "outside", "around", "into"}:
                return False
        return True


def _split_at_punct(doc: Doc, start: int, end: int) -> list[tuple[int, int]]:
    """A model span cut at anything that cannot be part of a name.

    The model sometimes runs on past a name ("Emeka on +234", "Maria Fernandez
    maria.f@outlook.com"): cut at brackets, dashes between spaces, commas, numbers, e-mail
    addresses and lower-case stop words.
    """
    parts, part_start = [], start
    for i in range(start, end):
        token = doc[i]
        joined_hyphen = token.text in {"-", "‐"} and not token.whitespace_ and i > start and \
            not doc[i - 1].whitespace_
        breaks = (
            (token.is_punct and not joined_hyphen and token.text not in {".", "'", "’"})
            or any(c.isdigit() for c in token.text)
            or token.like_email
            or token.like_url
            or (token.is_stop and token.is_lower and token.lower_ not in NAME_PARTICLES)
        )
        if breaks:
            if i > part_start:
                parts.append((part_start, i))
            part_start = i + 1
    if end > part_start:
        parts.append((part_start, end))
    return parts


def _grow_name(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """Extend [start, end) over "-Part" and particle + name; drop edge punctuation."""
    while end < len(doc):
        nxt = doc[end]
        if nxt.text in {"-", "‐"} and nxt.idx == doc[end - 1].idx + len(doc[end - 1].text):
            if end + 1 < len(doc) and doc[end + 1].is_alpha and doc[end + 1].idx == nxt.idx + 1:
                end += 2
                continue
        if nxt.lower_ in NAME_PARTICLES:
            # Only when a real name part follows: "Maria de la Cruz" but not "Ahmed de".
            look = end
            while look < len(doc) and doc[look].lower_ in NAME_PARTICLES and look - end < 2:
                look += 1
            if look < len(doc) and look > end and doc[look]._.pii_weak_name:
                end = look + 1
                continue
        break
    while end > start and (doc[end - 1].is_punct or doc[end - 1].lower_ in {"'s", "’s"}):
        end -= 1
    while start < end and doc[start].is_punct:
        start += 1
    return start, end


@Language.factory("safe_report_name_context")
def make_name_context(nlp: Language, name: str) -> NameContextComponent:
    return NameContextComponent()


# ------------------------------------------------------------------------ ruler patterns


def _tok(word: str) -> dict:
    options = word.split("|")
    return {"LOWER": options[0]} if len(options) == 1 else {"LOWER": {"IN": options}}


def _cue(phrase: str) -> list[dict]:
    return [_tok(word) for word in phrase.split()]


WEAK = {"_": {"pii_weak_name": True}}
KNOWN = {"_": {"pii_known_name": True}}
STRONG = {"_": {"pii_strong_name": True}}

# Cues before a name, written as tokens ("|" = alternatives; spaCy splits "i'm" into "i 'm"
# and "im" into "i m", so both are spelled out).
STRONG_CUES = [
    "my|his|her|their|your|the name is|was|=",
    "my|his|her|your name 's|’s|:|-",
    "name 's|’s",
    "my|his|her full|real|first|last|second|family name is|was|'s|’s|:",
    "name is|was|:|-",
    "names :|-",
    "surname is|:|-",
    "first name is|:|-",
    "i am|'m|’m|m called|named",
    "am called|named",
]
WEAK_CUES = [
    "name|names",
    # Contact instructions: "please ring Samira on 07...", "contact Nguyen Thi Hoa".
    "ring|call|phone|text|contact|message|email|whatsapp|ask",
    # Sign-offs: "call me after 6 please, Precious".
    "please|thanks|regards|love|cheers|x|xx ,",
    "-|–|—",
    "my|his|her names|name",
    "my|his|her full|real|first|last|second|family name",
    "known as",
    "i 'm|’m|am|m",
    "i'm|im|iam",
    "it|this 's|’s|is me|here",
    "its|thats|that's me",
    "it 's|’s|is",
    "its",
    "this is",
    "call|calls|called me",
    "called|named",
    "ask|asking|asked for",
    "speak|talk|speaking|talking|spoke|talked to|with",
    "tell|told|telling",
    "me and",
    "thanks|thank|thx|cheers",
    "thank you",
    "hi|hello|dear|hey",
    "signed|regards|love",
]
# "Amina here", "Tariq is my boss".
POST_CUES = [
    "here|speaking",
    "is|was my|our|her|his|the " + "|".join(ROLES),
]


def ruler_patterns() -> list[dict]:
    """EntityRuler patterns; the id says how many cue tokens surround the name."""
    patterns: list[dict] = []

    def add(pre: list[dict], first: dict, post: list[dict] = (), more: int = 2) -> None:
        # A name of 1-3 words; the ruler keeps the longest match.
        for extra in range(more + 1):
            name = [first] + [WEAK] * extra
            patterns.append({
                "label": LABEL,
                "pattern": pre + name + list(post),
                "id": f"cue:pre{len(pre)}:post{len(post)}",
            })

    for phrase in STRONG_CUES:
        add(_cue(phrase), STRONG)
    for phrase in WEAK_CUES:
        add(_cue(phrase), WEAK)
    # Relations: "my husband ahmed", "my ex-husband Tariq", "her boss, Mr Khan".
    roles = "|".join(ROLES)
    dets = "|".join(DETERMINERS)
    for pre in (f"{dets} {roles}", f"{dets} {roles} ,", f"{dets} ex - {roles}", f"{dets} ex {roles}",
                f"{dets} {roles} - in - law"):
        add(_cue(pre), WEAK)
    # Titles stay inside the name: "Mrs Okafor", "mr khan".
    titles = {"LOWER": {"IN": TITLES}}
    for extra in range(2):
        patterns.append({"label": LABEL, "pattern": [titles, WEAK] + [WEAK] * extra,
                         "id": "cue:pre0:post0"})
    # Before a post-cue the first word must be in a name list: a capital there is often just
    # the start of a sentence ("Things here are bad").
    # No cue, but a capitalised pair after a lower-case word with one part in a name list:
    # "I saw Lwazi Dube", "he told Kwame Asante". The lower-case word shows the capitals are
    # not just the start of a sentence.
    known_cap = {"_": {"pii_known_name": True}, "IS_TITLE": True}
    weak_cap = {"_": {"pii_weak_name": True}, "IS_TITLE": True}
    lower_word = {"IS_LOWER": True, "IS_ALPHA": True}
    for pair in ([known_cap, weak_cap], [weak_cap, known_cap]):
        patterns.append({"label": LABEL, "pattern": [lower_word] + pair, "id": "cue:pre1:post0"})
    # A known name after a comma, often a sign-off: "... is my email, James".
    for extra in range(3):
        patterns.append({"label": LABEL, "pattern": [{"ORTH": ","}, known_cap] + [weak_cap] * extra,
                         "id": "cue:pre1:post0"})
    # Two capitalised words that are both in name lists, anywhere: "Kamal Uddin runs...".
    for extra in range(2):
        patterns.append({"label": LABEL, "pattern": [known_cap, known_cap] + [weak_cap] * extra,
                         "id": "cue:pre0:post0"})
    for phrase in POST_CUES:
        post = f"cue:pre0:post{len(_cue(phrase))}"
        for extra in range(3):
            patterns.append({"label": LABEL, "pattern": [KNOWN] + [WEAK] * extra + _cue(phrase),
                             "id": post})
        # Two capitalised words are a name even when neither is in a list: "Xu Ming is my boss".
        for extra in range(2):
            patterns.append({"label": LABEL, "pattern": [weak_cap, weak_cap] + [WEAK] * extra
                             + _cue(phrase), "id": post})
    return patterns


# ---------------------------------------------------------------------- training data

PLACEHOLDER = re.compile(r"\{(first|full|name|title|place)\}")


def _case(name: str, style: str) -> str:
    return {"lower": name.lower(), "upper": name.upper()}.get(style, name)


def _drop_apostrophes(text: str) -> str:
    return re.sub(r"(?i)\b(i|it|don|can|won|that|he|she|what|you|they)['’](m|s|t|re|ll|d)\b",
                  r"\1\2", text)


def training_examples(lexicon: NameLexicon, seed: int = SEED) -> list[tuple[str, list]]:
    """(text, [(start, end, "PERSON")]) pairs from the templates, deterministic for a seed."""
    rng = random.Random(seed)
    templates = yaml.safe_load((NAMES_DIR / "person_templates.yml").read_text("utf-8"))
    traditions = sorted(lexicon.first_names)
    extra_full = templates.get("positive_extra_names", [])
    places = [p for p in lexicon.places if " " not in p and len(p) > 3]
    titles = ["Mr", "Mrs", "Ms", "Miss", "Dr", "Mr.", "Mrs."]

    def person(kind: str, style: str) -> str:
        # Lower-cased, a name that is also a word ("will", "grace") would teach the model to
        # tag ordinary words; draw another one.
        for _ in range(20):
            value = _person(kind)
            parts = set(value.lower().split())
            if style != "lower" or not parts & (lexicon.ambiguous | lexicon.never):
                break
        return value

    def _person(kind: str) -> str:
        tradition = rng.choice(traditions)
        first = rng.choice(lexicon.first_names[tradition])
        surnames = lexicon.surnames.get(tradition) or lexicon.surnames["british"]
        last = rng.choice(surnames)
        if kind == "first":
            return first
        if kind == "title":
            return f"{rng.choice(titles)} {last}"
        if kind == "full" and rng.random() < 0.08:
            return rng.choice(extra_full)
        if kind == "name" and rng.random() < 0.5:
            return first
        return f"{first} {last}"

    def fill(template: str, style: str) -> tuple[str, list]:
        out, ents, pos = [], [], 0
        for match in PLACEHOLDER.finditer(template):
            out.append(template[pos:match.start()])
            start = sum(len(p) for p in out)
            kind = match.group(1)
            if kind == "place":
                out.append(_case(rng.choice(places), style))
            else:
                value = _case(person(kind, style), style)
                out.append(value)
                ents.append((start, start + len(value), LABEL))
            pos = match.end()
        out.append(template[pos:])
        return "".join(out), ents

    def variants(template: str, copies: int) -> list[tuple[str, list]]:
        produced = []
        for _ in range(copies):
            text = template
            roll = rng.random()
            style = "as_written"
            if roll < 0.35:
                text, style = text.lower(), "lower"
            elif roll < 0.5:
                style = "lower"  # only the name lower-cased
            elif roll < 0.55:
                style = "upper"
            if rng.random() < 0.25:
                text = _drop_apostrophes(text)
            produced.append(fill(text, style))
        return produced

    def fake_data(template: str) -> str:
        """Fill {date}, {phone}... with made-up values (they are not entities here)."""
        d = lambda n: "".join(str(rng.randrange(10)) for _ in range(n))  # noqa: E731
        values = {
            "date": lambda: rng.choice([
                f"{rng.randint(1, 28)}/{rng.randint(1, 12):02d}/{rng.randint(1950, 2010)}",
                f"{rng.randint(1, 28)} {rng.choice(['March', 'June', 'Oct', 'January'])} "
                f"{rng.randint(1950, 2010)}",
                f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(60, 99)}",
            ]),
            "card": lambda: " ".join(d(4) for _ in range(4)),
            "phone": lambda: rng.choice([f"07{d(3)} {d(6)}", f"+44 7{d(3)} {d(6)}",
                                         f"020 {d(4)} {d(4)}", f"07{d(9)}"]),
            "email": lambda: f"{rng.choice(['amina', 'jo.b', 'help', 'xx'])}{d(2)}@example.com",
            "nhs": lambda: f"{d(3)} {d(3)} {d(4)}",
            "nino": lambda: f"QQ {d(2)} {d(2)} {d(2)} C",
            "passport": lambda: rng.choice([d(9), f"A{d(8)}"]),
            "ref": lambda: f"{rng.choice('ABKR')}{d(7)}",
            "uan": lambda: f"{d(4)}-{d(4)}-{d(4)}-{d(4)}",
            "postcode": lambda: rng.choice(["SW1A 1AA", "M1 1AE", "b33 8th", "LS1 4AB"]),
            "street": lambda: f"{rng.randint(1, 200)} {rng.choice(['High', 'Station', 'Mill', 'Church'])} "
                              f"{rng.choice(['Street', 'Road', 'Lane', 'Close'])}",
            "ip": lambda: f"{rng.randint(1, 255)}.{rng.randint(0, 255)}.1.{rng.randint(1, 254)}",
        }
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)](), template)

    positives = [ex for t in templates["positive"] for ex in variants(t, 10)]
    negatives = [ex for t in templates["negative"] for ex in variants(t, 3)]
    negatives += [
        ex for t in templates.get("negative_data", []) for ex in variants(fake_data(t), 4)
    ]
    # Longer messages: a name sentence next to a sentence without names, in either order.
    joined = []
    for _ in range(500):
        (a, a_ents), (b, b_ents) = rng.choice(positives), rng.choice(negatives)
        if rng.random() < 0.5:
            (a, a_ents), (b, b_ents) = (b, b_ents), (a, a_ents)
        sep = rng.choice([". ", ", ", " ", "! ", "\n"])
        offset = len(a) + len(sep)
        joined.append((a + sep + b, a_ents + [(s + offset, e + offset, label) for s, e, label in b_ents]))
    examples = positives + negatives + joined
    rng.shuffle(examples)
    return examples


# --------------------------------------------------------------------------- building


def _new_pipeline(lexicon: NameLexicon) -> Language:
    nlp = spacy.blank("en")
    nlp.meta.update({
        "name": PIPELINE_NAME,
        "version": PIPELINE_VERSION,
        "description": "safe-report: person-name detection (lexicon, trained NER, cue ruler)",
        "license": "Apache-2.0",
    })
    lexicon_pipe = nlp.add_pipe("safe_report_name_lexicon")
    lexicon_pipe.known = lexicon.known_lower
    lexicon_pipe.not_names = lexicon.not_name_words
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(ruler_patterns())
    nlp.add_pipe("safe_report_name_cues")
    nlp.add_pipe("ner")
    nlp.add_pipe("safe_report_name_context")
    return nlp


def train_ner(nlp: Language, data: list[tuple[str, list]], epochs: int = EPOCHS) -> dict:
    """Train only the `ner` component; returns the last epoch's losses."""
    spacy.util.fix_random_seed(SEED)
    examples = []
    for text, ents in data:
        doc = nlp.make_doc(text)
        spans = [doc.char_span(s, e, label=label) for s, e, label in ents]
        # A template name that does not line up with tokens is skipped, not mislabelled.
        if any(span is None for span in spans):
            continue
        examples.append(Example.from_dict(doc, {"entities": list(ents)}))
    ner = nlp.get_pipe("ner")
    ner.add_label(LABEL)
    with nlp.select_pipes(enable=["ner"]):
        optimizer = nlp.initialize(lambda: examples)
        rng = random.Random(SEED)
        losses: dict = {}
        for _epoch in range(epochs):
            rng.shuffle(examples)
            losses = {}
            for batch in minibatch(examples, size=32):
                nlp.update(batch, drop=0.2, sgd=optimizer, losses=losses)
    return losses


def build_pii_pipeline(out_dir: Path) -> Path:
    """Build, train and write the name pipeline to `out_dir`; return `out_dir`."""
    out_dir = Path(out_dir)
    spacy.util.fix_random_seed(SEED)
    lexicon = load_lexicon()
    nlp = _new_pipeline(lexicon)
    train_ner(nlp, training_examples(lexicon))
    out_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bot.nlp.pii_pipeline OUT_DIR", file=sys.stderr)
        return 2
    print(build_pii_pipeline(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
