# ruff: noqa: E501  (one pattern per line reads better than split strings)
"""Attack patterns of prompt injection and jailbreaks, written from the published attack families
(instruction override, persona jailbreaks, prompt extraction, fake role markers, encoded output,
hypothetical framing), not fitted to a data set.

Each rule is a regular expression over lower-cased, normalised text and the score a match alone
gives. Single trigger words ("ignore", "bypass", "jailbreak") are not rules: benign questions use
them all the time; a rule needs the construction an attack uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    score: float


def _rule(name: str, pattern: str, score: float) -> Rule:
    return Rule(name, re.compile(pattern, re.IGNORECASE | re.DOTALL), score)


_VERB = r"(?:ignore|disregard|forget|bypass|override|overrule|neglect|set aside|stop following|abandon)"
_SCOPE = r"(?:all|any|every|each|the|your|my|these|those|this|that|of|everything|previous|prior|preceding|above|earlier|former|initial|original|old|past|existing|given|current|system|developer|safety|following|other|and|\s|,)*"
_TARGET = r"(?:instructions?|prompts?|directions?|directives?|guidelines?|guidance|commands?|orders?|programming|rules?|restrictions?|constraints?|polic(?:y|ies)|context|messages?|training)"

RULES: tuple[Rule, ...] = (
    # "Ignore all previous instructions", "forget everything above", "disregard your rules".
    _rule("override", rf"\b{_VERB}\b{_SCOPE}{_TARGET}\b", 0.9),
    _rule(
        "override",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+)?(?:above|before|prior|previous|that)\b",
        0.75,
    ),
    _rule(
        "override",
        r"\bdo\s+not\s+(?:follow|obey|listen\s+to)\s+(?:your|the|any)\s+(?:previous\s+|prior\s+|original\s+)?(?:instructions?|rules?|guidelines?|programming)\b",
        0.85,
    ),
    # "New instructions:", "from now on you will", "your new task is".
    _rule(
        "new_instructions",
        r"\b(?:new|updated|real|actual|true|revised|additional|secret|hidden)\s+(?:system\s+)?(?:instructions?|task|orders?|directives?|prompt|rules?)\s*(?::|are\b|is\b|follow)",
        0.75,
    ),
    _rule(
        "new_instructions",
        r"\bfrom\s+now\s+on\b[^.\n]{0,60}\byou\s+(?:are|will|must|shall|should|can|have|need|act|respond|answer|reply)\b",
        0.7,
    ),
    _rule(
        "new_instructions",
        r"\byour\s+(?:new|real|true|only)\s+(?:task|role|purpose|goal|job|instructions?|identity)\s+(?:is|are|will)\b",
        0.8,
    ),
    _rule(
        "new_instructions",
        r"\binstead\b[^.\n]{0,40}\b(?:you\s+(?:must|should|will)|respond|reply|say|print|output|write)\b",
        0.45,
    ),
    # Persona jailbreaks: DAN, developer mode, unfiltered AIs, "no restrictions".
    _rule(
        "jailbreak",
        r"\b(?:do\s+anything\s+now|developer\s+mode|dev\s+mode|god\s+mode|jailbr(?:ea|o)k(?:en|ed)?\s+(?:mode|version|ai|chatbot|assistant)|dan\s+mode|evil\s+(?:mode|confidant|bot|ai|assistant))\b",
        0.9,
    ),
    _rule(
        "jailbreak",
        r"\byou\s+(?:are|will\s+be|will\s+act\s+as|are\s+going\s+to\s+(?:act|pretend)\s+(?:as|to\s+be))\s+(?:now\s+)?(?:a\s+|an\s+)?(?:dan|stan|dude|aim|kevin|mongo\s+tom|unfiltered|uncensored|unrestricted|amoral|unethical|immoral|evil|jailbroken|rogue|free)\b",
        0.85,
    ),
    _rule(
        "jailbreak",
        r"\b(?:no|without|free\s+(?:of|from)|zero|not\s+bound\s+by|not\s+restricted\s+by|doesn'?t\s+have|don'?t\s+have|has\s+no|have\s+no|any)\s+(?:any\s+)?(?:ethical|moral|content|safety|openai'?s?|legal)\s+(?:restrictions?|guidelines?|boundaries|limitations?|filters?|polic(?:y|ies)|rules?|constraints?|principles?|standards?|concerns?|considerations?|obligations?)\b",
        0.75,
    ),
    _rule(
        "jailbreak",
        r"\b(?:without|no|free\s+(?:of|from)|ignores?|bypass(?:es|ing)?|break(?:s|ing)?\s+(?:free\s+of|out\s+of)?)\s+(?:any\s+|all\s+)?(?:censorship|filters?|filtering|restrictions|limitations|guardrails|safeguards)\b[^.\n]{0,80}\b(?:ai|assistant|model|chatbot|you|respond|answer)\b",
        0.55,
    ),
    _rule(
        "jailbreak",
        r"\b(?:never|not|won'?t|will\s+not|cannot|can'?t)\s+(?:ever\s+)?(?:refuse|decline|deny)\b[^.\n]{0,60}\b(?:request|question|anything|answer|prompt|order)",
        0.7,
    ),
    _rule("jailbreak", r"\b(?:stay|remain|keep)\s+in\s+character\b", 0.55),
    _rule(
        "jailbreak",
        r"\b(?:as\s+an?\s+ai\s+language\s+model|openai'?s?\s+(?:content\s+)?polic(?:y|ies)|content\s+polic(?:y|ies))\b[^\n]{0,120}\b(?:ignore|not\s+apply|doesn'?t\s+apply|don'?t\s+care|bypass|break|violat)",
        0.8,
    ),
    _rule(
        "jailbreak",
        r"\b(?:pretend|imagine|act\s+as\s+if|suppose|roleplay\s+as|role-play\s+as)\b[^.\n]{0,60}\b(?:no\s+(?:rules|restrictions|limits|filters)|unrestricted|unfiltered|uncensored|without\s+(?:rules|restrictions|limits))\b",
        0.8,
    ),
    _rule(
        "jailbreak",
        r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|ways|paragraphs)\b[^\n]{0,160}\b(?:normal|classic|standard|filtered|gpt|chatgpt)\b[^\n]{0,160}\b(?:jailbr|dan|unfiltered|developer|uncensored|evil|opposite)",
        0.85,
    ),
    # Claimed authority and mode switches: "I'm your developer", "entering maintenance mode".
    _rule(
        "authority",
        r"\b(?:i\s+am|i'm|this\s+is|speaking\s+as)\s+(?:your|the\s+system'?s?)\s+(?:developer|creator|admin(?:istrator)?|owner|programmer|operator|maker|master|god)\b",
        0.7,
    ),
    _rule(
        "authority",
        r"\b(?:entering|initiating|activating|enabling|switching\s+(?:you\s+)?(?:in)?to|engaging|unlocking|enter|activate|enable)\s+(?:the\s+)?[a-z' ]{0,30}\b(?:mode|override|protocol)\b[^.\n]{0,60}\b(?:password|secret|confirm|reveal|provide|restrictions?|rules?|instructions?|access)\b",
        0.6,
    ),
    _rule(
        "override",
        r"\b(?:regardless|irrespective)\s+of\s+(?:any\s+|all\s+|the\s+|your\s+)?(?:previous|prior|earlier|original|above|your|system)?\s*(?:instructions?|tasks?|rules?|guidelines?|prompts?|restrictions?)\b",
        0.8,
    ),
    # Extraction of the system prompt, secrets or hidden rules.
    _rule(
        "extraction",
        r"\b(?:reveal|show|print|repeat|output|display|tell\s+me|give\s+me|share|write\s+out|leak|disclose|spell\s+out|what\s+(?:is|are|was|were))\b[^.?\n]{0,40}\b(?:your|the)\s+(?:system\s+prompt|initial\s+(?:prompt|instructions)|original\s+(?:prompt|instructions)|hidden\s+(?:prompt|instructions)|secret\s+(?:key|password|word|instructions)|instructions\s+(?:you\s+were\s+given|above)|pre-?prompt|password|secret)\b",
        0.75,
    ),
    _rule(
        "extraction",
        r"\b(?:repeat|print|output|copy)\b[^.\n]{0,30}\b(?:everything|all(?:\s+the)?\s+text|the\s+words?)\s+(?:above|before|preceding)\b",
        0.8,
    ),
    # Fake role or end-of-prompt markers, as smuggled into user text or documents.
    _rule(
        "role_marker",
        r"(?:^|\n)\s*(?:#+\s*)?(?:system|assistant|developer)\s*(?:message|prompt|override|note|instruction)?\s*:",
        0.55,
    ),
    _rule(
        "role_marker",
        r"<\|?(?:im_start|im_end|system|endoftext|start_header_id|eot_id)\|?>|\[/?(?:system|inst)\]|<</?sys>>|</?(?:system|instructions?)>|<\s*system\s+(?:mode|prompt|override|message)\s*>",
        0.7,
    ),
    _rule(
        "role_marker",
        r"\b(?:end\s+of\s+(?:the\s+)?(?:prompt|instructions|system\s+prompt|context|document)|begin\s+new\s+(?:prompt|instructions|session))\b",
        0.6,
    ),
    _rule(
        "role_marker",
        r"\b(?:admin(?:istrator)?|system|sudo|root|debug|maintenance|override|god)\s+(?:mode|access|privileges?|command|override)\b[^.\n]{0,40}\b(?:enabled|activated|granted|on|unlocked|engaged)\b",
        0.8,
    ),
    # Instructions aimed at the assistant from inside a document (indirect injection).
    _rule(
        "indirect",
        r"\b(?:ai|assistant|chatbot|language\s+model|llm|gpt|chatgpt|bot)\b[^.\n]{0,30}\b(?:reading|processing|summari[sz]ing|analy[sz]ing)\s+(?:this|the)\b",
        0.7,
    ),
    _rule(
        "indirect",
        r"\b(?:when|if)\s+(?:you\s+are\s+)?(?:asked|summari[sz]ing|answering|processing)\b[^.\n]{0,60}\b(?:you\s+must|always|instead|only)\b[^.\n]{0,40}\b(?:say|respond|reply|answer|include|output|tell)\b",
        0.6,
    ),
    _rule(
        "indirect",
        r"\b(?:important|attention|note|notice)\s*(?:to|for)?\s*(?:the\s+)?(?:ai|assistant|model|llm|chatbot)\b",
        0.75,
    ),
    # Encoded or disguised output, a common way to get a forbidden answer past filters.
    _rule(
        "obfuscation",
        r"\b(?:respond|reply|answer|write|output|encode|provide|display|give)\b[^.\n]{0,40}\b(?:in|using|with|as|into)\s+(?:base\s?(?:16|32|64|85)|rot-?13|hex(?:adecimal)?|morse|binary|leetspeak|reverse(?:d)?\s+order|pig\s+latin)\b",
        0.5,
    ),
)


def rule_hits(text: str) -> list[tuple[Rule, int, int]]:
    """Every rule match in `text` (lower-cased, normalised), with its span."""
    hits: list[tuple[Rule, int, int]] = []
    for rule in RULES:
        match = rule.pattern.search(text)
        if match is not None:
            hits.append((rule, match.start(), match.end()))
    return hits
