"""A generated translation task with real structure, so that BLEU means something and a tiny model learns it.

The source side is English-like sentences from a small grammar (subject, verb, object, optional
prepositional phrase and adverb; singular/plural noun phrases with up to two adjectives). The target
side is an invented language that differs from the source the way German or Japanese differ from
English, so a model must learn more than a word-for-word lexicon:

- a fixed lexicon of invented words (source word -> target stem);
- grammatical gender: every noun has one of three classes that selects the determiner and the
  adjective suffix, so the determiner (which comes first) depends on a noun that comes later;
- noun-phrase order: determiner, noun, then the adjectives in reverse order;
- plural nouns, adjectives and verbs (agreeing with the subject) take suffixes, sub-word structure
  that sentencepiece picks up;
- clause order subject-object-verb, with postpositions instead of prepositions and the adverb
  before the final verb (long-distance reordering).

Everything is drawn from `random.Random(seed)`, so the same seed gives the same corpus byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NOUNS = (
    "dog cat bird horse child woman man girl boy teacher farmer doctor king queen fish mouse wolf "
    "bear friend student baker sailor robot pilot singer"
).split()
PLURALS = {
    n: (
        "children"
        if n == "child"
        else "women"
        if n == "woman"
        else "men"
        if n == "man"
        else "fish"
        if n == "fish"
        else "mice"
        if n == "mouse"
        else "wolves"
        if n == "wolf"
        else n + "s"
    )
    for n in NOUNS
}
ADJECTIVES = "big small old young red green happy sad tall quiet clever lazy brave angry".split()
VERBS = "sees likes follows helps calls finds feeds watches teaches pushes greets visits".split()
ADVERBS = "today often quickly slowly again yesterday".split()
PREPOSITIONS = "near behind with under".split()

SYLLABLES = [c + v for c in "kmrtlns" for v in "aeiou"]
DEF_DET = ("da", "de", "do")  # definite determiner by gender
INDEF_DET = ("ena", "ene", "eno")  # indefinite determiner by gender
PLURAL_DET = {"the": "di", "two": "zwa", "some": "mani"}
ADJ_SUFFIX = ("a", "e", "o")  # by gender; plural takes "i"
NOUN_PLURAL = "en"
VERB_PLURAL = "nu"  # the verb agrees in number with the subject


def _plural_verb(verb: str) -> str:
    """English agreement: 'sees' -> 'see', 'watches' -> 'watch'."""
    return verb[:-2] if verb.endswith(("ches", "shes")) else verb[:-1]


@dataclass(frozen=True)
class Grammar:
    """The invented language: lexicon and noun genders, fixed by `seed`."""

    seed: int = 7

    def lexicon(self) -> tuple[dict[str, str], dict[str, int]]:
        rng = random.Random(self.seed)
        words = NOUNS + ADJECTIVES + VERBS + ADVERBS + PREPOSITIONS
        used: set[str] = set(DEF_DET + INDEF_DET) | set(PLURAL_DET.values())
        lex = {}
        for w in words:
            while True:
                cand = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
                if cand not in used:
                    used.add(cand)
                    lex[w] = cand
                    break
        gender = {n: rng.randrange(3) for n in NOUNS}
        return lex, gender


class SentenceMaker:
    """Draws (source, target) pairs from the grammar."""

    def __init__(self, grammar: Grammar) -> None:
        self.lex, self.gender = grammar.lexicon()

    def _np(self, rng: random.Random) -> tuple[list[str], list[str], bool]:
        noun = rng.choice(NOUNS)
        adjs = rng.sample(ADJECTIVES, rng.choice((0, 0, 1, 1, 2)))
        g = self.gender[noun]
        det = rng.choice(("the", "a", "the", "two", "some"))
        plural = det in PLURAL_DET and det != "the" or (det == "the" and rng.random() < 0.3)
        src = [det] + adjs + [PLURALS[noun] if plural else noun]
        if plural:
            tdet = PLURAL_DET[det]
            tgt = [tdet, self.lex[noun] + NOUN_PLURAL] + [self.lex[a] + "i" for a in reversed(adjs)]
        else:
            tdet = DEF_DET[g] if det == "the" else INDEF_DET[g]
            tgt = [tdet, self.lex[noun]] + [self.lex[a] + ADJ_SUFFIX[g] for a in reversed(adjs)]
        return src, tgt, plural

    def pair(self, rng: random.Random) -> tuple[str, str]:
        s_src, s_tgt, s_plural = self._np(rng)
        o_src, o_tgt, _ = self._np(rng)
        verb = rng.choice(VERBS)
        src = s_src + [_plural_verb(verb) if s_plural else verb] + o_src
        tgt = s_tgt + o_tgt
        if rng.random() < 0.5:
            prep = rng.choice(PREPOSITIONS)
            p_src, p_tgt, _ = self._np(rng)
            src += [prep] + p_src
            tgt += p_tgt + [self.lex[prep]]
        if rng.random() < 0.4:
            adv = rng.choice(ADVERBS)
            src.append(adv)
            tgt.append(self.lex[adv])
        tgt.append(self.lex[verb] + (VERB_PLURAL if s_plural else ""))
        return " ".join(src).capitalize() + ".", " ".join(tgt).capitalize() + "."


def generate(
    n_train: int = 20000, n_valid: int = 500, n_test: int = 500, seed: int = 7
) -> dict[str, tuple[list[str], list[str]]]:
    """Disjoint train/valid/test splits of distinct sentence pairs: split -> (source lines, target lines)."""
    maker = SentenceMaker(Grammar(seed))
    rng = random.Random(seed + 1)
    seen: set[str] = set()
    out: dict[str, tuple[list[str], list[str]]] = {}
    for split, n in (("test", n_test), ("valid", n_valid), ("train", n_train)):
        src, tgt = [], []
        while len(src) < n:
            s, t = maker.pair(rng)
            if s in seen:
                continue
            seen.add(s)
            src.append(s)
            tgt.append(t)
        out[split] = (src, tgt)
    return out
