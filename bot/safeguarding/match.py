"""Matching: find the lexicon's phrases and patterns in a normalised message.

**Phrases** are matched word by word on the normalised words, each word as written (after
   normalising). Letters are not squeezed here, so two real words never meet ("shooting" is
   not "shotting"); stretched words ("feeeel") are restored by the normaliser, and common
   misspellings ("rapped" -> "raped") come from the replace table. Phrases are written in
   the same normalised form as messages; they are normalised when loaded, so "I'm" in a
   phrase means "i am". Phrase syntax: words separated by spaces;
   ``a|b|c`` alternatives for one position (``_`` joins words inside an alternative:
   ``the_game``); ``word*`` any word starting with "word" (at least 3 letters);
   ``...`` up to ``max_gap`` (default 3) other words, ``...N`` up to N (1-12) other words
   (a co-occurrence window: "$someone ...6 $hurt_done"); ``$name`` the words of the set
   ``sets.name`` in the YAML (a set member may itself be ``$other``, another set).
   ``phrases`` are alert-tier, ``review`` phrases review-tier (see :mod:`.tiers`).

**Patterns** are Python regular expressions searched in the normalised text (lower
   case, single spaces, no punctuation). To keep every message fast, an unbounded
   repeat (``*``, ``+``, ``{n,}``) may only repeat something that cannot match a space
   (``\\w+`` is fine, ``.*`` and ``(?:\\w+ )*`` are refused at load time); use bounded
   forms such as ``(?: \\w+){0,6}``.

**Exclusions** (phrases, per concern) cancel one match of that concern only when the
   matched words lie wholly inside the exclusion ("hit me up" cancels "hit me" there and
   nowhere else). A message that also holds a real disclosure elsewhere is still flagged.
   Write an exclusion as narrowly as you can: one that opens with a common word and a gap
   ("then ... hit me", meant for "then it hit me") also swallows "then my dad hit me".

**Soften** phrases (per concern) work like exclusions but cap the match at review instead
   of cancelling it ("going to kill me when he sees the scratch" may be an idiom: review).
   **Contexts** (top level) lower every match of their concerns within ``within`` words of
   one of their phrases ("in PSHE", "a film about", "sober two years now"); a context with
   ``cap: review`` instead caps a match near it at review and never removes it ("used to",
   "in maths": a resolved past or a playground scrap is worth a look, not an alert).
"""

from __future__ import annotations

import bisect
from typing import Any, Iterator, Mapping

from bot.safeguarding.classify import MIN_WORDS, lexicon_features
from bot.safeguarding.tiers import ALERT, ALERT_RANK, GRAVE_RANK, RANK_TIER, REVIEW_RANK, Concern

LONG_TEXT = 6000  # characters: longer texts are checked in windows
WINDOW_CHARS = 1500
WINDOWS = 6  # at most this many windows: the first, the last and evenly spaced ones


def windows(text: str) -> list[tuple[int, int]]:
    """The (start, end) windows a long text is checked in: at most WINDOWS of about
    WINDOW_CHARS characters, edges moved back to a space (within 40 characters) so a word is
    not cut. A short text is one window."""
    n = len(text)
    if n <= LONG_TEXT:
        return [(0, n)]
    step = (n - WINDOW_CHARS) / (WINDOWS - 1)
    out = []
    for k in range(WINDOWS):
        a = int(k * step)
        b = min(n, a + WINDOW_CHARS)
        if a > 0:
            sp = text.rfind(" ", max(0, a - 40), a + 1)
            if sp >= 0:
                a = sp + 1
        if b < n:
            sp = text.rfind(" ", max(a, b - 40), b)
            if sp > a:
                b = sp
        out.append((a, b))
    return out

# A compiled phrase is a tuple of elements (gap_before, alternatives, singles, others); an
# alternative is a tuple of (key, is_prefix) word tests on normalised words. ``singles`` holds
# the alternatives that are one plain word (a set, so "$victim" with 70 members costs one
# lookup), ``others`` the multi-word and prefix ones, tried one by one.


def _element(gap: int, alts: tuple) -> tuple:
    singles = frozenset(a[0][0] for a in alts if len(a) == 1 and not a[0][1])
    others = tuple(a for a in alts if len(a) != 1 or a[0][1])
    return (gap, alts, singles, others)


def _match(elems: tuple, k: int, j: int, keys: list[str], n: int) -> int:
    """End (exclusive) of a match of elems[k:] starting at word j, or -1."""
    if k == len(elems):
        return j
    gap, _alts, singles, others = elems[k]
    stop = min(j + gap, n - 1)
    p = j
    while p <= stop:
        if keys[p] in singles:
            r = _match(elems, k + 1, p + 1, keys, n)
            if r >= 0:
                return r
        for alt in others:
            q = p
            for key, is_prefix in alt:
                if q >= n:
                    break
                t = keys[q]
                if not (t.startswith(key) if is_prefix else t == key):
                    break
                q += 1
            else:
                r = _match(elems, k + 1, q, keys, n)
                if r >= 0:
                    return r
        p += 1
    return -1


class _PhraseSet:
    """Phrases indexed by the first word, so a message costs one dict lookup per word."""

    def __init__(self) -> None:
        self.exact: dict[str, list[tuple[tuple, Any]]] = {}
        self.prefix: dict[str, list[tuple[str, tuple, Any]]] = {}
        self.size = 0

    def add(self, elems: tuple, payload: Any) -> None:
        self.size += 1
        # Words the phrase cannot match without: for every later position with no prefix
        # alternative, the first words of its alternatives. A message that lacks all the
        # words of any one such position skips the phrase entirely (checked once a message).
        needs = []
        for e in elems[1:]:
            alts = e[1]
            if any(t[1] for a in alts for t in a[:1]):
                continue
            needs.append(frozenset(a[0][0] for a in alts))
        needs.sort(key=len)
        need = tuple(needs) or None
        seen: set[tuple[str, bool]] = set()
        for alt in elems[0][1]:
            key, is_prefix = alt[0]
            if (key, is_prefix) in seen:
                continue
            seen.add((key, is_prefix))
            if is_prefix:
                self.prefix.setdefault(key[:3], []).append((key, elems, payload, need))
            else:
                self.exact.setdefault(key, []).append((elems, payload, need))

    def finditer(self, keys: list[str], skip: Any = ()) -> Iterator[tuple[int, int, Any]]:
        """Every (start, end, payload) match; phrases whose ``payload[0]`` is in ``skip``
        (a container the caller may fill while iterating) are not tried."""
        n = len(keys)
        exact, prefix = self.exact, self.prefix
        present = frozenset(keys)
        possible: dict[int, bool] = {}  # id(elems) -> its needed words occur in the message

        def can(elems: tuple, need: tuple | None) -> bool:
            if need is None:
                return True
            key = id(elems)
            ok = possible.get(key)
            if ok is None:
                ok = True
                for words in need:
                    if words.isdisjoint(present):
                        ok = False
                        break
                possible[key] = ok
            return ok

        # Per distinct word, the phrases that could start there and whose needed words occur
        # in the message, worked out once: a word repeated thousands of times ("not not not")
        # costs one dict lookup per repeat, not one test per phrase starting with it.
        viable: dict[str, list[tuple[tuple, Any]]] = {}
        for i, k in enumerate(keys):
            cands = viable.get(k)
            if cands is None:
                cands = [(elems, payload) for elems, payload, need in exact.get(k, ()) if can(elems, need)]
                if prefix:
                    cands.extend((elems, payload) for pre, elems, payload, need in prefix.get(k[:3], ())
                                 if k.startswith(pre) and can(elems, need))
                viable[k] = cands
            for elems, payload in cands:
                if skip and payload[0] in skip:
                    continue
                end = _match(elems, 0, i, keys, n)
                if end >= 0:
                    yield i, end, payload


class _Matching:
    """The detection half of :class:`bot.safeguarding.lexicon.SafeguardingConfig`."""

    def detect(self, text: str, context: Mapping[str, Any] | None = None) -> list[Concern]:
        """Possible disclosures in ``text``: at most one per concern, most serious first.

        Each :class:`Concern` carries its ``tier`` ("alert" or "review"), the fragment of
        ``text`` that matched and the rule. ``context`` is what the caller knows beyond the
        words; today one key: ``score``, the person's latest answer on a 0-10 scale in this
        conversation (see ``raise.low_score`` in the YAML). Never raises on any ``str``.

        The work is bounded: a text longer than :data:`LONG_TEXT` characters is checked in at
        most :data:`WINDOWS` windows of :data:`WINDOW_CHARS` characters (the first, the last and
        evenly spaced ones between), so no message costs more than about
        ``WINDOWS * WINDOW_CHARS`` characters of matching, whatever it holds.
        """
        if not text or not isinstance(text, str):
            return []
        if len(text) <= LONG_TEXT:
            return self._detect_one(text, context)
        best: dict[str, Concern] = {}
        for a, b in windows(text):
            for c in self._detect_one(text[a:b], context):
                old = best.get(c.concern)
                if old is None or (old.tier != ALERT and c.tier == ALERT):
                    best[c.concern] = c
        return [best[cid] for cid in self.severity if cid in best]

    def _detect_one(self, text: str, context: Mapping[str, Any] | None) -> list[Concern]:
        words, spans = self._norm.analyse(text)
        if not words:
            return []
        norm = " ".join(words)
        keys = words
        starts: list[int] = []
        pos = 0
        for w in words:
            starts.append(pos)
            pos += len(w) + 1

        # concern index -> (rank, first word, end word, rule); rank 2 alert, 1 review
        found: dict[int, tuple[int, int, int, str]] = {}
        done: set[int] = set()  # concerns already at alert: their phrases are not tried again
        cache: dict[tuple[int, int], list[tuple[int, int]]] = {}
        ctx_spans: list | None = None

        def inside(kind: int, table: list, ci: int, a: int, b: int) -> bool:
            """Is the normalised span [a, b) wholly inside an exclusion (0) / soften (1) phrase?"""
            ps = table[ci]
            if ps is None:
                return False
            got = cache.get((kind, ci))
            if got is None:
                got = [(starts[i], starts[j - 1] + len(words[j - 1])) for i, j, _r in ps.finditer(keys)]
                cache[(kind, ci)] = got
            return any(x <= a and b <= y for x, y in got)

        def near_context(ci: int, i: int, j: int) -> int:
            """0: no context near the match; 1: only ``cap: review`` ones; 2: one that drops a tier."""
            nonlocal ctx_spans
            if self._contexts is None:
                return 0
            if ctx_spans is None:
                ctx_spans = [(x, y, payload) for x, y, payload in self._contexts.finditer(keys)]
            best = 0
            for x, y, (_name, _rule, scope, within, overlap, cap) in ctx_spans:
                # near the match; unless the context says ``overlap: true``, not overlapping
                # it: a rule that names the context itself ("told to say I fell down the
                # stairs") was written knowing it
                if ((scope is None or ci in scope) and x - within <= j - 1 and i <= y - 1 + within
                        and (overlap or y <= i or j <= x)):
                    if not cap:
                        return 2
                    best = 1
            return best

        grave_concerns = self._grave_concerns
        ruled: set[int] = set()  # concerns on which a soften phrase or a context had its say (-1: an exclusion)

        def consider(ci: int, rank: int, i: int, j: int, a: int, b: int, rule: str) -> None:
            if inside(0, self._exclusions, ci, a, b):
                ruled.add(-1)  # an exclusion cancelled a match: the net adds nothing here
                return
            if inside(1, self._soften, ci, a, b):
                # soften caps at review: an idiom that might not be one. A review-tier match
                # inside one is capped too: the nets may not lift it ("my daughter will kill
                # me for telling you this" is embarrassment, whatever else reads as alarm)
                rank = min(rank, REVIEW_RANK)
                ruled.add(ci)
            if rank > 0:
                near = near_context(ci, i, j)
                if near == 2:
                    rank = min(rank, ALERT_RANK) - 1  # a grave alert too: context rules have the last word
                    ruled.add(ci)
                elif near == 1:
                    # ``cap: review``: kept, but quietly; a review-tier match near one is capped
                    # too, so the nets may not lift it ("bruises ... from his haemophilia")
                    rank = REVIEW_RANK
                    ruled.add(ci)
            if rank > 0 and rank > found.get(ci, (0,))[0]:
                found[ci] = (rank, i, j, rule)
                # a concern with grave rules is done only at a grave alert: one later in the
                # message still marks it as an alert no net may lower
                if rank >= GRAVE_RANK or (rank >= ALERT_RANK and ci not in grave_concerns):
                    done.add(ci)

        for i, j, (ci, rule, rank) in self._phrases.finditer(keys, done):
            if ci in done or rank <= found.get(ci, (0,))[0]:
                continue
            consider(ci, rank, i, j, starts[i], starts[j - 1] + len(words[j - 1]), rule)

        for ci, pats in enumerate(self._patterns):
            if ci in done or not pats:
                continue
            for rx, rule, rank in pats:
                if rank <= found.get(ci, (0,))[0]:
                    continue
                for m in rx.finditer(norm):
                    a, b = m.span()
                    if a == b:
                        continue
                    i = max(0, bisect.bisect_right(starts, a) - 1)
                    j = max(i + 1, bisect.bisect_left(starts, b))
                    consider(ci, rank, i, j, a, b, rule)
                    if found.get(ci, (0,))[0] >= rank:
                        break
                if ci in done:
                    break

        clf = self._classifier
        if clf is not None:
            # how many words the person typed ("idk tbh" is two, normalised to seven): what
            # makes an answer short (round 11)
            self._review_net(clf, words, found, ruled, len(set(spans)))

        if found and self._low_score_concerns and context:
            score = _score(context)
            if score is not None and self._low_score_at_most is not None and score <= self._low_score_at_most:
                for ci in list(found):
                    if ci in self._low_score_concerns and found[ci][0] < ALERT_RANK:
                        rank, i, j, rule = found[ci]
                        found[ci] = (ALERT_RANK, i, j, rule)

        result = []
        for ci in sorted(found):
            rank, i, j, rule = found[ci]
            a, b = spans[i][0], spans[j - 1][1]
            fragment = text[a:b] if 0 <= a < b <= len(text) else " ".join(words[i:j])
            result.append(Concern(self.severity[ci], self._labels[ci], fragment, rule, RANK_TIER[rank]))
        return result

    def _review_net(self, clf, words: list[str], found: dict, ruled: set[int], typed: int | None = None) -> float:
        """Let the classifier (:mod:`bot.safeguarding.classify`) adjust ``found`` in place.

        p = the review net's probability that the message is a disclosure:
        * p < ``quiet_below`` and an ordinary-context word in the message outside the matched
          words (a lesson, sport, play, cooking, DIY, an animal, a resolved past:
          :data:`classify.ORDINARY_CONTEXTS`): a lexicon alert becomes review;
        * p < ``drop_below``: a lexicon review is dropped (with ``drop_ruled``, also one a
          soften phrase or a context capped: review or nothing);
        * p >= ``review_at`` (``short_review_at`` for an answer of at most ``short_words``
          words), nothing found and at least MIN_WORDS words: review, with the likeliest
          concern;
        * p >= ``alert_at``: what the lexicon found at review becomes alert (a broad signal
          in a message that reads as a disclosure), if the tier net agrees (q >= ``confirm_at``).
        Then q = the tier net's probability that the message should alert (when the model has
        a tier net; it also sees what the lexicon alone found):
        * q >= ``promote_at``: a review becomes alert; q >= ``alone_at`` and p >= ``alone_p``
          for a review the review net added on its own (both nets confident), unless its
          concern is in ``alone_review_only``; a concern listed in ``concern_promote_at`` has
          its own, lower bar (for what the net added alone too only with ``concern_bar_alone``);
        * q < ``demote_below``: a lexicon alert becomes review; so does one the review net
          reads as ordinary (p < ``doubt_p``) while the tier net is not sure (q < ``doubt_q``);
          neither in an answer longer than ``lower_words`` words (round 11: the whole
          message's scores dilute a plain phrase there).

        No net lowers a match of a ``grave`` rule (round 10: a child left alone overnight, a
        cover story taken back, a method of suicide, danger now): its alert stands.
        The nets leave alone: matches of a deployment's own override files (the lead tests
        them with ``safeguarding check``) and concerns whose match a soften phrase or a context
        already judged ("in PSHE", "going to kill me when he sees"), which they may only drop;
        and they add nothing to a message where such a rule, or an exclusion, lowered or
        removed a match.
        """
        feats = clf.feature_list(words)
        p = clf.probability(feats)
        lexicon_alerts = {ci for ci, v in found.items() if v[0] >= ALERT_RANK}  # before the nets
        tier_probability = getattr(clf, "tier_probability", None)
        lexicon = None
        if tier_probability is not None:  # what the lexicon alone found, before the nets
            lexicon = lexicon_features((self.severity[ci], RANK_TIER[v[0]]) for ci, v in found.items())
        local = self._local_rules  # a deployment's own words are never second-guessed
        drop_ruled = getattr(clf, "drop_ruled", False)
        for ci in list(found):
            rank, i, j, rule = found[ci]
            if rule in local or rank >= GRAVE_RANK:
                continue  # a deployment's own words, a grave rule: never second-guessed
            if ci in ruled:
                # a soften phrase or a context said "at most review": the net may agree that
                # it is nothing (review or nothing), never raise it
                if drop_ruled and rank == REVIEW_RANK and p < clf.drop_below:
                    del found[ci]
                continue
            if rank >= ALERT_RANK and p < clf.quiet_below:
                # the everyday word must lie outside the matched words: a rule that names it
                # was written knowing it ("... but really it was my mum" is no resolved past)
                if not clf.has_ordinary_context(words[:i] + words[j:]):
                    continue
                found[ci] = (REVIEW_RANK, i, j, rule)
            elif rank == REVIEW_RANK and p < clf.drop_below:
                del found[ci]
        added = None  # the concern the net added on its own
        # an answer is short by the words the person typed (``typed``; round 11: text-speak
        # expanded, "idk tbh", used to count as a long answer of seven words)
        typed = len(words) if typed is None else typed
        review_at = clf.review_at if typed > getattr(clf, "short_words", 0) else clf.short_review_at
        if p >= review_at and not found and not ruled and len(words) >= MIN_WORDS:
            concern = clf.concern(feats, self.severity)
            added = self.severity.index(concern)
            k = clf.strongest_word(words)
            found[added] = (REVIEW_RANK, k, k + 1, f"review net ({p:.2f})")
        q = tier_probability(feats, lexicon) if lexicon is not None and found else None
        veto = getattr(clf, "veto_below", None)
        if q is not None and veto is not None and q < veto and p < clf.veto_p:
            # both nets read it as ordinary: a review (the lexicon's broad signal, a capped
            # match or the review net's own) is dropped; an alert of the lexicon (even one a
            # low score quietened above) is never dropped here: at most review
            for ci in list(found):
                if found[ci][0] == REVIEW_RANK and found[ci][3] not in local and ci not in lexicon_alerts:
                    del found[ci]
        if added is None and p >= clf.alert_at and (q is None or q >= clf.confirm_at):
            # with a tier net, the review net's own lift needs its agreement (q >= confirm_at):
            # "when I drink the kids get scared of me" reads as a disclosure, not as an alert
            for ci in list(found):
                rank, i, j, rule = found[ci]
                if rank < ALERT_RANK and rule not in local and ci not in ruled:
                    found[ci] = (ALERT_RANK, i, j, f"{rule} + review net ({p:.2f})")
        if q is None:
            return p
        # The tier net: a second model, alert or not, trained on the tiers people gave
        # labelled answers and seeing what the lexicon found. It lifts review to alert when
        # confident (more confident still for what the review net added alone) and lowers a
        # lexicon alert it finds very unlikely to review; never past a rule that had its say.
        alone_p = getattr(clf, "alone_p", 0.0)
        per_concern = getattr(clf, "concern_promote_at", None) or {}
        alone_review_only = getattr(clf, "alone_review_only", ())
        # does a concern's own lower bar also apply to what the review net added alone?
        concern_bar_alone = getattr(clf, "concern_bar_alone", True)
        # may what the review net added alone to a short answer (at most short_words words) alert?
        short_alone = getattr(clf, "short_alone_review", False)
        doubt_p = getattr(clf, "doubt_p", None)
        demote_below = clf.demote_below
        lower_words = getattr(clf, "lower_words", None)
        if lower_words is not None and len(words) > lower_words:
            # a long answer: the whole message's scores dilute a plain phrase, so neither the
            # tier net's demotion nor the doubt rule lowers a lexicon alert there
            doubt_p, demote_below = None, -1.0
        for ci in list(found):
            rank, i, j, rule = found[ci]
            if rule in local or ci in ruled or rank >= GRAVE_RANK:
                continue
            if rank < ALERT_RANK:
                if ci == added and self.severity[ci] in alone_review_only:
                    continue  # a broad concern: the net alone gives review, an alert needs a phrase
                if ci == added and short_alone and len(words) <= clf.short_words:
                    continue  # a short answer ("I wish I had not"): the net alone gives review
                at = clf.alone_at if ci == added else clf.promote_at
                lower = per_concern.get(self.severity[ci]) if ci != added or concern_bar_alone else None
                if lower is not None and lower < at:
                    at = lower  # a concern whose broad signals are seldom ordinary: a lower bar
                # what the review net added alone alerts only when both nets are confident
                if q >= at and (ci != added or p >= alone_p):
                    found[ci] = (ALERT_RANK, i, j, f"{rule} + tier net ({q:.2f})")
            elif q < demote_below:
                found[ci] = (REVIEW_RANK, i, j, f"{rule} - tier net ({q:.2f})")
            elif doubt_p is not None and p < doubt_p and q < clf.doubt_q:
                # round 10: both nets doubt the phrase (the review net reads the message as
                # ordinary, the tier net is not sure it is an alert): a person looks, without
                # interrupting; a grave rule never gets here (above)
                found[ci] = (REVIEW_RANK, i, j, f"{rule} - both nets ({p:.2f}, {q:.2f})")
        return p


def _score(context: Mapping[str, Any]) -> int | None:
    """The 0-10 scale score in ``context`` (an int, or text such as "0"), or None."""
    try:
        value = context.get("score")
    except AttributeError:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
