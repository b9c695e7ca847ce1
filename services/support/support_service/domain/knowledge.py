"""Knowledge-base retrieval, pure Python (no network, no database): BM25 over articles.

How a question finds its article
--------------------------------
* Each language has its own BM25 index (bm25s, Lucene variant): English questions are matched
  against English articles only, Chinese against Chinese, so the IDF of a word is that of its own
  language and scores never mix two vocabularies. When the caller gives no language it is detected
  from the text: any CJK ideograph makes it Chinese (customers writing Chinese often add Latin
  brand names; English questions practically never contain ideographs).
* English text is lower-cased, split on anything that is not a letter or a digit, stripped of stop
  words (bm25s's English list plus filler such as "please", "my", "how") and stemmed with the
  Snowball English stemmer (PyStemmer). Negations are kept, and the contractions customers type
  without an apostrophe ("didnt", "cant", "isnt") all become "not": "not received" is a topic.
  A word of a question that is in no article is replaced by the closest word that is (difflib
  ratio >= 0.8, words of 4 letters or more), so that "paymnet" finds "payment".
* Chinese text is segmented with jieba in search mode (the words and the shorter words inside
  long ones, so that "退款到账" also matches "退款"), Latin words inside it are handled as English,
  and bm25s's Chinese stop words and punctuation are dropped. The character bigrams of each
  Chinese run are added for matching only (jieba cuts "还没收到退款" as 还/没收/退款, "confiscate"
  rather than "not received"; the bigram 收到 still matches), not for the coverage below.
* An article is indexed as its title and keywords (each twice: they are short and written to be
  found) followed by its body.

The confidence
--------------
A raw BM25 score is not a confidence: it grows with the length of the question and with the IDF of
its words, so a threshold on it would mean different things for "refund?" and for a three-line
message, and different things in English and Chinese. The confidence of a hit is therefore a
logistic function of features that do not depend on the scale of the scores:

* ``coverage``: the share of the question's IDF mass that the article contains (a question whose
  main words are in no article, such as "do you sell gift cards", covers little of any article);
* ``margin``: ``(s - s_other) / s``, how far the hit's score is above the best *other* article's
  (negative for every hit but the first), i.e. how unambiguous the hit is; it enters as its
  signed square root (small margins are where right and wrong hits separate);
* ``single``: the hit is the only article that shares any word with the question. Such a hit has
  a margin of 1 and yet is often an incidental match on one word ("where are your warehouses"
  finds the tracking article's "leaves our warehouse"), so it gets its own coefficient.

``confidence = 1 / (1 + exp(-(b0 + b_c * coverage + b_m * sign(margin) * sqrt(|margin|)
+ b_s * single)))``, and a hit never gets a higher confidence than the one ranked above it.

The coefficients (:data:`CONFIDENCE_MODEL`) are fitted by L2-regularised logistic regression on
``questions_calibration.csv`` (``ecomops support calibrate --csv ...``, see
``support_service.service_layer.evaluation.fit_confidence``), the target being "the first hit is
the article the question expects" (questions no article answers count as wrong). That set is
never used to write the articles' keywords, so the fitted confidence is not flattered by
keywords written for its own questions; the features and the regularisation were chosen by
leave-one-out log-loss on it. The confidence of the first hit therefore estimates the
probability that answering with it is right, which is what the one auto-answer threshold
(``SUPPORT_AUTO_ANSWER_CONFIDENCE``) compares against.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Languages the index understands. Other values of ``language`` find nothing.
LANGUAGES = ("en", "zh")

#: Only the beginning of a long message is matched: it says what the message is about, and the
#: cost of a search (spelling correction above all) grows with the number of distinct words.
MAX_QUERY_CHARS = 2000

#: Default auto-answer threshold on :attr:`Match.score` (the service's
#: ``SUPPORT_AUTO_ANSWER_CONFIDENCE``): the lowest threshold (steps of 0.05) at which at least
#: 90 % of the automatic answers on questions_calibration.csv are right, overall and in each
#: language (92.9 %, English 92.3 %, Chinese 93.3 %). Never chosen on the held-out set.
DEFAULT_AUTO_ANSWER_CONFIDENCE = 0.75

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# Grammatical particles and pronouns: a character bigram containing one is not a word.
_PARTICLES = frozenset("的了吗呢吧啊呀么我你您")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_HAS_WORD_CHAR = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Negations carry the topic of a support question ("not received", "cannot pay"): they are
# kept, and the contractions customers type without an apostrophe all become "not".
_NEGATIONS = frozenset(
    {"not", "no", "never", "cannot", "cant", "didnt", "dont", "doesnt", "isnt", "arent", "wasnt",
     "werent", "wont", "havent", "hasnt", "couldnt", "wouldnt", "aint"}
)  # fmt: skip

# Filler that carries no topic.
_EXTRA_EN_STOPWORDS = frozenset(
    {
        "i", "im", "ive", "me", "my", "we", "our", "you", "your", "u", "do", "does", "did",
        "have", "has", "had", "can", "could", "would", "should", "please", "pls", "plz",
        "hi", "hello", "thanks", "thank", "s", "t", "d", "ll", "m", "re", "ve", "so", "yet",
        "what", "how", "why", "which", "who", "am", "been", "from", "any", "some", "one",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Article:
    """One knowledge-base article. ``language`` is ``"en"`` or ``"zh"``."""

    article_id: str
    title: str
    body: str
    category: str
    language: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """One search hit; ``score`` is a confidence in [0, 1] comparable to one threshold."""

    article_id: str
    title: str
    score: float


@dataclass(frozen=True, slots=True)
class ConfidenceModel:
    """Logistic model of "this hit is the right article" (see the module's docstring)."""

    intercept: float
    coverage: float
    sqrt_margin: float
    single_match: float

    def confidence(self, coverage: float, margin: float, single: bool = False) -> float:
        root = math.copysign(math.sqrt(abs(margin)), margin)
        z = (
            self.intercept
            + self.coverage * coverage
            + self.sqrt_margin * root
            + (self.single_match if single else 0.0)
        )
        return 1.0 / (1.0 + math.exp(-z))


#: Fitted on questions_calibration.csv (``ecomops support calibrate``); never on the held-out set.
CONFIDENCE_MODEL = ConfidenceModel(
    intercept=-2.098, coverage=1.329, sqrt_margin=4.325, single_match=-2.511
)


@dataclass(frozen=True, slots=True)
class HitFeatures:
    """The scale-free features of one hit, from which its confidence is computed."""

    article_id: str
    bm25: float
    coverage: float
    margin: float
    single: bool  # the only article of its language that shares a word with the question


def detect_language(text: str) -> str:
    """``"zh"`` when the text has any CJK ideograph, else ``"en"``."""
    return "zh" if _CJK.search(text) else "en"


def normalise_language(language: str) -> str:
    """``"zh-CN"``, ``"zh_Hans"``, ``"ZH"`` → ``"zh"``; ``"en-GB"`` → ``"en"``."""
    return language.strip().lower().replace("_", "-").split("-", 1)[0]


# ---- text processing ---------------------------------------------------------------------


class _Analyzers:
    """The tokenisers, loaded once per process (jieba's dictionary and bm25s take seconds)."""

    _lock = threading.Lock()
    _ready = False
    stem: Callable[[str], str]
    en_stopwords: frozenset[str]
    zh_stopwords: frozenset[str]
    cut_for_search: Callable[[str], list[str]]

    @classmethod
    def load(cls) -> type[_Analyzers]:
        if cls._ready:
            return cls
        with cls._lock:
            if cls._ready:
                return cls
            import jieba
            import Stemmer
            from bm25s import stopwords

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            stemmer = Stemmer.Stemmer("english")
            cls.stem = stemmer.stemWord
            cls.en_stopwords = (
                frozenset(stopwords.STOPWORDS_EN) | _EXTRA_EN_STOPWORDS
            ) - _NEGATIONS
            cls.zh_stopwords = frozenset(stopwords.STOPWORDS_CHINESE)
            cls.cut_for_search = jieba.lcut_for_search
            cls._ready = True
        return cls


def warm_up() -> None:
    """Load jieba's dictionary and the stemmer now rather than on the first question."""
    _Analyzers.load()


def _english_words(text: str) -> list[str]:
    analyzers = _Analyzers.load()
    return [
        "not" if w in _NEGATIONS else w
        for w in _LATIN_WORD.findall(text.lower().replace("'", "").replace("’", ""))
        if w not in analyzers.en_stopwords
    ]


def _chinese_words(text: str) -> tuple[list[str], list[str]]:
    """Segmented Chinese words with the Latin words in between (unstemmed), and the character
    bigrams of the Chinese runs (matching only: they find "没收到" whatever jieba made of it)."""
    analyzers = _Analyzers.load()
    words: list[str] = []
    for token in analyzers.cut_for_search(text.lower()):
        token = token.strip()
        if not token or not _HAS_WORD_CHAR.search(token):
            continue
        if _CJK.search(token):
            if token not in analyzers.zh_stopwords:
                words.append(token)
        else:
            words.extend(_english_words(token))
    bigrams = [
        bigram
        for run in _CJK_RUN.findall(text)
        for bigram in (run[i : i + 2] for i in range(len(run) - 1))
        if bigram not in analyzers.zh_stopwords and not _PARTICLES.intersection(bigram)
    ]
    return words, bigrams


def _analyse(text: str, language: str) -> tuple[list[str], list[str]]:
    """The words of ``text`` and the extra matching-only tokens (Chinese bigrams)."""
    return _chinese_words(text) if language == "zh" else (_english_words(text), [])


def _term(word: str) -> str:
    """A surface word as the index stores it (English stemmed, Chinese as is)."""
    return word if _CJK.search(word) else _Analyzers.load().stem(word)


# ---- the index ---------------------------------------------------------------------------


@dataclass(slots=True)
class _LanguageIndex:
    articles: tuple[Article, ...]
    retriever: Any  # bm25s.BM25
    idf: dict[str, float]
    doc_terms: tuple[frozenset[str], ...]
    surface: tuple[str, ...]  # surface words of the corpus, for spelling correction
    surface_set: frozenset[str] = field(default_factory=frozenset)


class KnowledgeIndex:
    """An immutable search index over a set of articles."""

    def __init__(self, by_language: dict[str, _LanguageIndex], model: ConfidenceModel) -> None:
        self._by_language = by_language
        self._model = model

    @classmethod
    def build(
        cls, articles: Sequence[Article], model: ConfidenceModel = CONFIDENCE_MODEL
    ) -> KnowledgeIndex:
        import bm25s

        ids = [a.article_id for a in articles]
        if len(set(ids)) != len(ids):
            raise ValueError("article ids must be unique")
        _Analyzers.load()
        by_language: dict[str, _LanguageIndex] = {}
        for language in LANGUAGES:
            subset = tuple(a for a in articles if normalise_language(a.language) == language)
            if not subset:
                continue
            docs_surface = [
                words + extra
                for words, extra in (_analyse(_document_text(a), language) for a in subset)
            ]
            docs = [[_term(w) for w in words] for words in docs_surface]
            retriever = bm25s.BM25()  # Lucene BM25, k1=1.5, b=0.75
            retriever.index(docs, show_progress=False)
            n = len(docs)
            doc_terms = tuple(frozenset(d) for d in docs)
            df: dict[str, int] = {}
            for terms in doc_terms:
                for t in terms:
                    df[t] = df.get(t, 0) + 1
            idf = {t: _idf(n, c) for t, c in df.items()}
            surface = frozenset(w for words in docs_surface for w in words)
            by_language[language] = _LanguageIndex(
                articles=subset,
                retriever=retriever,
                idf=idf,
                doc_terms=doc_terms,
                surface=tuple(sorted(surface)),
                surface_set=surface,
            )
        return cls(by_language, model)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._by_language)

    def search(self, query: str, language: str | None = None, k: int = 3) -> list[Match]:
        """The ``k`` best articles for ``query``, best first (language detected when None).

        Only articles sharing at least one word with the question are returned, so the list may
        be shorter than ``k`` (empty for a question about nothing the knowledge base knows).
        """
        hits = self.explain(query, language, k)
        index = self._by_language.get(self._language_of(query, language))
        titles = {a.article_id: a.title for a in index.articles} if index else {}
        matches: list[Match] = []
        ceiling = 1.0
        for h in hits:
            ceiling = min(ceiling, self._model.confidence(h.coverage, h.margin, h.single))
            matches.append(Match(h.article_id, titles[h.article_id], ceiling))
        return matches

    def explain(self, query: str, language: str | None = None, k: int = 3) -> list[HitFeatures]:
        """The hits of :meth:`search` with their raw BM25 score and confidence features."""
        if k < 1:
            raise ValueError("k must be at least 1")
        index = self._by_language.get(self._language_of(query, language))
        if index is None:
            return []
        words, extra = _analyse(query[:MAX_QUERY_CHARS], language_of(index))
        word_terms = list(dict.fromkeys(_correct(index, w) for w in words))
        known = [t for t in dict.fromkeys([*word_terms, *extra]) if t in index.idf]
        if not known:
            return []
        scores = [float(s) for s in index.retriever.get_scores(known)]
        unknown_idf = _idf(len(index.articles), 0)
        # Coverage counts the question's words (bigrams only help matching); a word in no
        # article counts as the rarest word there could be.
        total_idf = sum(index.idf.get(t, unknown_idf) for t in word_terms)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], index.articles[i].article_id))
        best, runner_up = scores[order[0]], scores[order[1]] if len(order) > 1 else 0.0
        single = runner_up <= 0.0
        hits: list[HitFeatures] = []
        for i in order[:k]:
            s = scores[i]
            if s <= 0.0:
                break
            other = runner_up if i == order[0] else best
            covered = sum(
                index.idf[t] for t in word_terms if t in index.idf and t in index.doc_terms[i]
            )
            hits.append(
                HitFeatures(
                    article_id=index.articles[i].article_id,
                    bm25=s,
                    coverage=covered / total_idf if total_idf > 0 else 0.0,
                    margin=max(-1.0, (s - other) / s),
                    single=single,
                )
            )
        return hits

    def _language_of(self, query: str, language: str | None) -> str:
        return detect_language(query) if language is None else normalise_language(language)


def language_of(index: _LanguageIndex) -> str:
    return normalise_language(index.articles[0].language)


def _document_text(article: Article) -> str:
    head = " ".join([article.title, *article.keywords])
    return f"{head}\n{head}\n{article.body}"


def _idf(n: int, df: int) -> float:
    """Lucene's BM25 IDF, as bm25s computes it."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _correct(index: _LanguageIndex, word: str) -> str:
    """The index term for ``word``, spelling-corrected against the corpus when unknown."""
    term = _term(word)
    if term in index.idf or _CJK.search(word) or len(word) < 4 or word.isdigit():
        return term
    close = difflib.get_close_matches(word, index.surface, n=1, cutoff=0.8)
    return _term(close[0]) if close else term
