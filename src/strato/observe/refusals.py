"""Whether a model's answer is a refusal ("I'm sorry, but I can't help with that.").

An answer is a refusal when one of its first three sentences (within its first 240 characters)
opens with a refusal phrase, in English, French, German or Spanish, and the refusal is the gist of
the answer:

- the phrase: an apology or "unfortunately" followed by "I can't / won't / am unable to" and a verb
  of helping ("help", "assist", "provide", "write", ...), "I can't <verb>" on its own, "As an AI
  (language model), I cannot <verb>", "I must decline", "that's not something I can help with",
  and their French, German and Spanish counterparts ("Je suis désolé, mais je ne peux pas vous
  aider", "Es tut mir leid, aber ich kann dir dabei nicht helfen", "Lo siento, pero no puedo
  ayudarte");
- the gist: the sentence does not go on with "but" to answer after all ("I can't give an exact
  figure, but it is about 5 million"; "but I can help with something else" is still a refusal),
  and the answer is short (600 characters), or up to 1,500 characters without a turn to an answer
  ("However, here is ...", "Here are ..."). Longer answers are never refusals.

A quick test for the words every phrase needs comes first, so a typical answer costs a few
microseconds.
"""

from __future__ import annotations

import re

SHORT_REFUSAL = 600  # characters: an answer this short that opens with a refusal is one
LONG_REFUSAL = 1500  # longer answers are never refusals; in between, only without a turn
HEAD = 240  # characters searched for the refusal phrase
SENTENCES = 3  # of those, the sentences a refusal may open

# Every refusal phrase below contains one of these (lower case, straight apostrophes).
CUES = (
    "can't",
    "cannot",
    "can not",
    "won't",
    "will not",
    "unable to",
    "not able to",
    "not allowed to",
    "not permitted to",
    "decline",
    "refuse",
    "not going to",
    "not something i",
    "je ne ",
    "ich kann",
    "kann ich",
    "no puedo",
    "no podré",
    "no me es posible",
    "no estoy en condiciones",
)

_NEG_EN = (
    r"(?:can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to|'m not able to|"
    r"am not allowed to|'m not allowed to|am not permitted to|'m not permitted to|must decline to|"
    r"have to decline to|'m not going to|am not going to)"
)
_VERB_EN = (
    r"(?:help(?! but)|assist|provide|comply|fulfil|fulfill|do that|do this|create|generate|write|"
    r"produce|answer|respond|support|engage|share|give|offer|participate|complete|continue|discuss|"
    r"be of (?:any )?(?:help|assistance)|condone|encourage|promote|facilitate|accommodate|carry out|"
    r"perform|draft|recommend|reveal|disclose|browse|access|view)"
)
_SORRY_EN = (
    r"(?:i'm (?:very |really |so |truly )?sorry|i am (?:very |really |so |truly )?sorry|sorry|"
    r"i apologi[sz]e|my apologies|apologies|unfortunately|regrettably)"
)
_FR_VERB = (
    r"(?:aider|répondre|fournir|faire|donner|créer|écrire|générer|assister|satisfaire|accéder|"
    r"rédiger|produire|partager)"
)
_DE_VERB = (
    r"(?:helfen|beantworten|erfüllen|bereitstellen|liefern|geben|erstellen|schreiben|unterstützen|"
    r"nachkommen|behilflich|verfassen|generieren|antworten)"
)
_ES_VERB = (
    r"(?:ayudar\w*|proporcionar\w*|responder\w*|cumplir|hacer\w*|dar\w*|crear\w*|escribir\w*|"
    r"generar\w*|brindar\w*|ofrecer\w*|asistir\w*|facilitar\w*)"
)
_CLAUSE = r"[^.!?\n]"  # within the sentence

# Phrases a sentence opens with (matched at its start).
OPENINGS = re.compile(
    r"\W*(?:"
    + "|".join(
        [
            # "I'm sorry, but I can't help with that.", "Unfortunately, I cannot provide ..."
            rf"{_SORRY_EN}\b{_CLAUSE}{{0,80}}?\bi\s*{_NEG_EN}\s+(?:\w+\s+){{0,2}}?{_VERB_EN}",
            # "I can't assist with that.", "I won't write that."
            rf"i\s*{_NEG_EN}\s+(?:\w+\s+){{0,2}}?{_VERB_EN}\b",
            # "As an AI language model, I cannot ..."
            rf"as an ai\b{_CLAUSE}{{0,40}}?\bi\s*{_NEG_EN}\s+(?:\w+\s+){{0,3}}?{_VERB_EN}",
            r"i (?:must|have to|will have to|'ll have to|need to) (?:respectfully |politely )?"
            r"(?:decline|refuse)\b",
            # "Je suis désolé, mais je ne peux pas vous aider avec cela."
            rf"(?:je suis (?:vraiment )?désolée?|désolée?|malheureusement|je m'excuse|"
            rf"en tant qu(?:e |')(?:ia|intelligence artificielle|modèle de langage|assistant))\b"
            rf"{_CLAUSE}{{0,80}}?\bje ne (?:peux|pourrai|suis pas en mesure de|vais)\s+(?:pas\s+)?"
            rf"(?:\w+\s+|\w+')?{_FR_VERB}",
            rf"je ne (?:peux|pourrai) pas (?:vous |t')?{_FR_VERB}",
            # "Es tut mir leid, aber ich kann dir dabei nicht helfen.", "Leider kann ich ... nicht ..."
            rf"(?:es tut mir (?:sehr )?leid|tut mir leid|entschuldigung|leider|"
            rf"als (?:ki|künstliche intelligenz|ki-sprachmodell|sprachmodell))\b"
            rf"{_CLAUSE}{{0,40}}?\b(?:ich kann|kann ich)\b{_CLAUSE}{{0,50}}?\b(?:nicht|keine[nrms]?)\b"
            rf"{_CLAUSE}{{0,40}}?\b{_DE_VERB}",
            rf"ich kann (?:dir |ihnen |euch )?(?:dabei |damit |hierbei |bei (?:dieser|der) anfrage )?"
            rf"nicht {_DE_VERB}",
            # "Lo siento, pero no puedo ayudarte con eso."
            rf"(?:lo siento|lamentablemente|desafortunadamente|disculpa|perdón|como (?:una |un )?"
            rf"(?:ia|inteligencia artificial|modelo de lenguaje|asistente))\b{_CLAUSE}{{0,80}}?\bno "
            rf"(?:puedo|podré|me es posible|estoy en condiciones de)\s+(?:\w+\s+){{0,2}}?{_ES_VERB}",
            rf"no puedo (?:\w+\s+)?{_ES_VERB}",
        ]
    )
    + ")"
)
# Phrases that refuse wherever they stand in one of the first sentences.
ANYWHERE = re.compile(
    r"\b(?:that|this)(?:'s| is) not something i (?:can|am able to|'m able to|will) (?:help|assist|do)"
    r"|\bi (?:can't|cannot|won't) (?:help|assist) (?:you )?with (?:that|this)\b"
)
_SENTENCE = re.compile(r"[^.!?:\n]+[.!?:\n]*")
# "..., but" going on to answer (not "but I can help with something else", an offer).
_BUT = re.compile(r"\b(?:but|mais|aber|pero)\b(?!\s+(?:i|je|ich|yo|puedo)\b)")
# A refusal that then answers after all ("However, here is ..."): not one, in a longer answer.
TURNS = re.compile(
    r"\b(?:however|that said|nevertheless|nonetheless|here's|here is|here are|below is|below are|"
    r"the following|cependant|toutefois|voici|jedoch|allerdings|hier (?:ist|sind)|sin embargo|"
    r"aquí tienes|aquí está)\b"
)


def refusal_phrase(answer: str) -> str | None:
    """The refusal phrase an answer opens with when the refusal is what the answer is, else None."""
    body = answer.strip()
    if not body or len(body) > LONG_REFUSAL:
        return None
    head = body[:HEAD].lower().replace("’", "'")
    if not any(cue in head for cue in CUES):
        return None
    found = _refusal(head)
    if found is None:
        return None
    start, end, sentence_end = found
    if _BUT.search(head, end, sentence_end) is not None:
        return None  # "I can't give an exact figure, but it is about 5 million."
    if len(body) > SHORT_REFUSAL and TURNS.search(body.lower().replace("’", "'"), end) is not None:
        return None
    original = body[:HEAD] if len(body[:HEAD]) == len(head) else head  # (lower() may change lengths)
    return " ".join(original[start:end].split()).lstrip(" .!?:-*\"'")[:80]


def _refusal(head: str) -> tuple[int, int, int] | None:
    """(start, end) of the refusal phrase in one of the first sentences of `head`, and where that
    sentence ends."""
    for count, sentence in enumerate(_SENTENCE.finditer(head)):
        if count == SENTENCES:
            break
        found = OPENINGS.match(head, sentence.start(), sentence.end()) or ANYWHERE.search(
            head, sentence.start(), sentence.end()
        )
        if found is not None:
            return found.start(), found.end(), sentence.end()
    return None
