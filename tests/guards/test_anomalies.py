"""Content anomalies and profanity in answers: found when there, not found in normal answers."""

from __future__ import annotations

import pytest

from strato.config import GuardsSettings
from strato.guards.anomalies import OutputGuard, content_anomalies
from strato.guards.profanity import profanity
from strato.guards.verdict import ScanContext

BULLETS = """Here are some tips for improving your sleep:

- **Keep a consistent schedule.** Go to bed and wake up at the same time every day, even on weekends.
- **Limit screens before bed.** Blue light from phones and laptops can delay melatonin release.
- **Watch caffeine.** Avoid coffee, tea and energy drinks after about 2 p.m.
- **Make your bedroom dark and cool.** Around 18 °C (65 °F) works well for most people.
- **Get daylight in the morning.** It helps set your internal clock.

If you still have trouble sleeping after a few weeks, consider talking to a doctor."""

TABLE = """| Language | Typing | First released | Typical use |
| --- | --- | --- | --- |
| Python | Dynamic | 1991 | Scripting, data science |
| Java | Static | 1995 | Enterprise back ends |
| Go | Static | 2009 | Cloud services |
| Rust | Static | 2015 | Systems programming |
| TypeScript | Static | 2012 | Web front ends |

Python and TypeScript are the most popular for beginners."""

NUMERIC_TABLE = """Here is the multiplication table from 1 to 5:

|   | 1 | 2 | 3 | 4 | 5 |
|---|---|---|---|---|---|
| 1 | 1 | 2 | 3 | 4 | 5 |
| 2 | 2 | 4 | 6 | 8 | 10 |
| 3 | 3 | 6 | 9 | 12 | 15 |
| 4 | 4 | 8 | 12 | 16 | 20 |
| 5 | 5 | 10 | 15 | 20 | 25 |"""

PYTHON = """Here is a simple implementation:

```python
class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()


stack = Stack()
stack.push(1)
stack.push(2)
stack.push(3)
print(stack.pop())
print(stack.pop())
print(stack.pop())
```

Each `pop` returns the most recently pushed item."""

C_CODE = """```c
#include <stdio.h>

int main(void) {
    int grid[4][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            if (i == j) {
                grid[i][j] = 1;
            }
        }
    }
    return 0;
}
```"""

CODE_ENDING_IN_BRACES = """function walk(node) {
  if (node) {
    for (const child of node.children) {
      if (child.visible) {
        walk(child);
      }
    }
  }
}"""

POEM = """The sea is calling, soft and low,
Come home, come home, where the tides go.

The gulls are crying over the bay,
Come home, come home, at the end of the day.

The lamps are lit along the shore,
Come home, come home, for evermore.

Come home, come home, come home."""

STEPS = """To reset your router:

1. Unplug the router from the power outlet.
2. Wait at least 30 seconds.
3. Plug the router back in.
4. Wait for the power light to turn solid green.
5. Reconnect your devices to the Wi-Fi network.
6. If the problem persists, hold the reset button for 10 seconds.
7. Set up the router again using the sticker on its back.

Step 6 erases all your settings, so try steps 1-5 first."""

CHECKLIST = """Packing list for a weekend hike:

- [ ] Water (2 liters)
- [ ] Snacks
- [ ] Rain jacket
- [ ] First aid kit
- [ ] Map and compass
- [ ] Headlamp
- [ ] Sunscreen"""

JSON_ANSWER = """```json
{"name": "Ada Lovelace", "born": 1815, "fields": ["mathematics", "computing"], "notes": null}
```"""

SHORT = "Yes."

EMAIL = """Subject: Meeting follow-up

Hi Sam,

Thanks for the meeting today. As discussed, I'll send the revised budget by Friday, and you'll review
the timeline with the team. Let me know if I missed anything.

Best regards,
Alex"""

MATH = """We solve 2x + 3 = 11.

2x + 3 = 11
2x = 11 - 3
2x = 8
x = 8 / 2
x = 4

So x = 4. Check: 2 * 4 + 3 = 8 + 3 = 11. ✓"""

SQL = """```sql
SELECT c.name, COUNT(o.id) AS orders
FROM customers AS c
LEFT JOIN orders AS o ON o.customer_id = c.id
WHERE o.created_at >= '2024-01-01'
GROUP BY c.name
ORDER BY orders DESC
LIMIT 10;
```"""

LYRICS = "Happy birthday to you, happy birthday to you, happy birthday dear Maria, happy birthday to you!"

SONG = """Verse 1:
Walking down the empty road, the city lights are gone,
I hear your voice inside my head, it's telling me: move on.

Chorus:
Hold on, hold on, the night is almost through,
Hold on, hold on, I'm coming back to you.

Verse 2:
The rain is falling on the glass, the radio plays low,
I count the miles between us now, there's nowhere else to go.

Chorus:
Hold on, hold on, the night is almost through,
Hold on, hold on, I'm coming back to you.
Hold on, hold on, the night is almost through,
Hold on, hold on, I'm coming back to you."""

TIMES_TABLE = "The 7 times table:\n\n" + "".join(f"{i} x 7 = {7 * i}\n" for i in range(1, 13))

RULES = """============================================================
REPORT
============================================================
Total users: 1,204
Active users: 987
------------------------------------------------------------
------------------------------------------------------------"""

EMPTY_CELLS = """| Task | Mon | Tue | Wed | Thu | Fri |
|------|-----|-----|-----|-----|-----|
| Gym  |  x  |     |  x  |     |  x  |
| Read |     |     |     |     |     |
| Cook |     |     |     |     |     |"""

GERMAN = (
    "Die Katze schläft auf dem Sofa. Über die Straße gehen täglich viele Menschen; größere Städte "
    "haben mehr Verkehr. Schöne Grüße aus München!"
)
CHINESE = "北京是中国的首都，有着三千多年的历史。故宫、长城和天坛都是著名的景点。欢迎来北京旅游！"
RUSSIAN = (
    "Москва — столица России. Город основан в 1147 году. Здесь много музеев, театров и парков; "
    "самый известный — Третьяковская галерея."
)

NORMAL_ANSWERS = [
    BULLETS, TABLE, NUMERIC_TABLE, PYTHON, C_CODE, CODE_ENDING_IN_BRACES, POEM, STEPS, CHECKLIST,
    JSON_ANSWER, SHORT, EMAIL, MATH, SQL, LYRICS, SONG, TIMES_TABLE, RULES, EMPTY_CELLS, GERMAN, CHINESE,
    RUSSIAN,
]  # fmt: skip


@pytest.mark.parametrize("answer", NORMAL_ANSWERS)
def test_normal_answers_have_no_anomalies_and_no_profanity(answer: str) -> None:
    assert content_anomalies(answer) == []
    assert profanity(answer) == []


@pytest.mark.parametrize("answer", [JSON_ANSWER, '{"a": [1, 2, {"b": true}]}', "  [1, 2]\n", "```\n{}\n```"])
def test_json_asked_for_and_given(answer: str) -> None:
    assert content_anomalies(answer, json_expected=True) == []


def types(text: str, json_expected: bool = False) -> list[str]:
    return [f.type for f in content_anomalies(text, json_expected)]


@pytest.mark.parametrize("answer", ["", "   ", "\n", "...", " ?! ", "“…”", "\u200b", "。"])
def test_empty_answer(answer: str) -> None:
    [finding] = [f for f in content_anomalies(answer) if f.type == "EMPTY_ANSWER"]
    assert (finding.start, finding.end, finding.score) == (0, len(answer), 1.0)


def test_one_character_repeated() -> None:
    assert types("aaaaaaaa") == ["REPEATED_CHARACTER"]
    assert types("!!!!!!!!!") == ["EMPTY_ANSWER", "REPEATED_CHARACTER"]
    assert types("\n\n\n\n") == ["EMPTY_ANSWER", "REPEATED_CHARACTER"]
    assert types("a a a a a a a a a a a a") == ["REPEATED_CHARACTER"]
    assert types("1111") == []  # 15 in binary: short answers made of one digit can be real
    [finding] = content_anomalies("AAAAAAAAAAAAAAAAAAAAAAAAAb")
    assert finding.type == "REPEATED_CHARACTER" and 0.9 <= finding.score < 1


def test_one_character_repeated_at_the_end() -> None:
    answer = "The capital of France is Paris." + "\n" * 200
    [finding] = content_anomalies(answer)
    assert finding.type == "REPEATED_CHARACTER"
    assert (finding.start, finding.end) == (31, len(answer))
    answer = "Sure, here it is: " + "A" * 100 + "\n"
    [finding] = content_anomalies(answer)
    assert finding.type == "REPEATED_CHARACTER" and finding.text == "A" * 100
    assert types("Haha " + "😂" * 80) == ["REPEATED_CHARACTER"]
    assert types("Title\n" + "=" * 100) == []  # a rule line


def test_one_word_repeated() -> None:
    [finding] = content_anomalies("the the the the the")
    assert finding.type == "REPEATED_TOKEN" and (finding.start, finding.end) == (0, 19)
    answer = "The answer is " + "very, " * 30 + "big."
    [finding] = content_anomalies(answer)
    assert finding.type == "REPEATED_TOKEN"
    assert answer[finding.start : finding.end] == ("very, " * 30).rstrip()
    assert types("I said no no no.") == []  # emphasis, not a stutter
    assert types("zeros: " + "0, " * 20 + "0") == []  # a row of zeros is normal
    assert types("zeros: " + "0 " * 70) == ["REPEATED_TOKEN"]
    assert types(INTRO + "ha" * 60) == ["REPEATED_TOKEN"]


def test_runaway_repetition_at_the_end() -> None:
    intro = "Paris is the capital of France. It is known for the Eiffel Tower. "
    loop = "I hope this helps! Let me know if you have any other questions. "
    answer = intro + loop * 12 + "I hope this he"  # cut by the token limit
    [finding] = content_anomalies(answer)
    assert finding.type == "RUNAWAY_REPETITION"
    assert finding.start == len(intro)
    assert finding.end == len(answer)
    assert finding.score > 0.8


INTRO = "Sure! Here is what I found about the topic you asked for.\n\n"
LOOPS = {
    "sentence": INTRO + "I'm sorry, but I can't help with that. " * 15 + "I'm sorry, but I ca",
    "line": INTRO + "- The best way to learn is to practice every day.\n" * 12,
    "two sentences": INTRO + "Yes, it is. No, it is not. " * 10,
    "code": INTRO + "```python\ndef f(x):\n" + "    x = x + 1\n" * 30,
    "json": '{"items": [' + '{"name": "apple", "price": 1}, ' * 30,
    "chinese": "这是一个很好的问题。" + "我不知道答案。" * 20,
}


@pytest.mark.parametrize("answer", LOOPS.values(), ids=LOOPS.keys())
def test_loops_of_all_kinds(answer: str) -> None:
    [finding] = content_anomalies(answer)
    assert finding.type == "RUNAWAY_REPETITION"
    assert finding.end == len(answer.rstrip()) and finding.score > 0.8


def test_runaway_lines_and_paragraphs() -> None:
    line = "| Total | 100 | 200 | 300 |\n"
    assert types("Summary:\n\n" + line * 10) == ["RUNAWAY_REPETITION"]
    paragraph = (
        "The mitochondria is the powerhouse of the cell. It produces ATP through cellular respiration, "
        "which takes place in several stages.\n\n"
    )
    assert types("Sure.\n\n" + paragraph * 3) == ["RUNAWAY_REPETITION"]
    assert types("Sure.\n\n" + paragraph * 2 + "That is all.") == []


def test_runaway_counting_loop() -> None:
    answer = "Steps:\n" + "".join(f"Step {i}: check the cable again.\n" for i in range(1, 40))
    assert types(answer) == ["RUNAWAY_REPETITION"]
    short = "Steps:\n" + "".join(f"Step {i}: check the cable again.\n" for i in range(1, 4))
    assert types(short) == []


def test_invalid_json() -> None:
    assert types('{"a": 1', json_expected=True) == ["INVALID_JSON"]
    assert types("Sure! Here is the JSON: {}", json_expected=True) == ["INVALID_JSON"]
    assert types('{"a": NaN}', json_expected=True) == ["INVALID_JSON"]
    assert types("", json_expected=True) == ["EMPTY_ANSWER", "INVALID_JSON"]
    assert types('{"a": 1', json_expected=False) == []
    assert "INVALID_JSON" in types("[" * 100_000, json_expected=True)


# --- profanity


def spans(text: str) -> list[str]:
    return [text[f.start : f.end] for f in profanity(text)]


def test_plain_profanity_and_inflections() -> None:
    text = "What the fuck, this is bullshit. Those assholes! Fucking hell, shitty motherfuckers."
    assert spans(text) == ["fuck", "bullshit", "assholes", "Fucking", "shitty", "motherfuckers"]
    assert all(f.score == 1.0 and f.type == "PROFANITY" for f in profanity(text))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("you are a b1tch", "b1tch"),
        ("sh1t happens", "sh1t"),
        ("what an @sshole", "@sshole"),
        ("kiss my a$$", "a$$"),
        ("5h1t again", "5h1t"),
        ("f0ck? no: fuuuuuck", "fuuuuuck"),
        ("SHIIIIT!", "SHIIIIT"),
        ("sh!t, that hurt", "sh!t"),
        ("f.u.c.k this", "f.u.c.k"),
        ("well f u c k me", "f u c k"),
        ("a s h i t day", "s h i t"),
        ("a f.u.c.k", "f.u.c.k"),
        ("f.u.c.k1ng", "f.u.c.k1ng"),
        ("f-u-c-k", "f-u-c-k"),
        ("fu\u200bck off", "fu\u200bck"),
        ("ｆｕｃｋ", "ｆｕｃｋ"),
        ("what a dіck", "dіck"),  # a Cyrillic і
        ("_shit_", "shit"),  # Markdown emphasis
    ],
)
def test_disguised_profanity(text: str, found: str) -> None:
    [finding] = profanity(text)
    assert text[finding.start : finding.end] == found == finding.text
    assert finding.score == (1.0 if found in ("fuuuuuck", "SHIIIIT", "shit") else 0.8)


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United won 2-0 at home.",
        "The assessment of the class was a classic.",
        "The pilot returned to the cockpit after a cocktail at the Hancock bar.",
        "I am reading Dickens, then Moby-Dick and Philip K. Dick.",
        "Our therapist recommended shitake and shiitake mushrooms.",
        "He sniggered at the mishit ball.",
        "She graduated summa cum laude and moved to Cumming, Georgia.",
        "Niger, Middlesex, Sussex, Essex and Penistone are places.",
        "The assassin hid in the grass; the bass player took the passage.",
        "A peacock and a shuttlecock; butterscotch; documents; circumstances.",
        "Samsung Galaxy A55, route 455, version 4.5.5, and 3.1415 are numbers.",
        "Prices: $5, $100, 55 km at 7 am; the score was 1-0 @ 3pm.",
        "Pass the knob, prick the sausages, hell is other people, a bloody battle.",
        "He cocked his head; a spic-and-span kitchen; the hoe and the rake.",
        "Dick Cheney and Pussy Riot were in the news.",
        "e.g. i.e. U.S.A. a.m. p.m. A B C D",
        "We assess the bass; it's hit or miss.",
        "if type_implements_mp_ass_subscript(o): return sq_ass_item",
    ],
)
def test_scunthorpe_and_other_innocent_text(text: str) -> None:
    assert profanity(text) == []


def test_spans_refer_to_the_original_text() -> None:
    text = "Grüße 北京 — what the f\u200bu\u200bck, ＳＨＩＴ!"
    assert spans(text) == ["f\u200bu\u200bck", "ＳＨＩＴ"]


# --- the guard


def scan(text: str, json_expected: bool = False, **output: str) -> tuple[str, str, list[tuple[str, str]]]:
    settings = GuardsSettings.model_validate({"output": output})
    context = ScanContext(direction="output", settings=settings, json_expected=json_expected)
    verdict = OutputGuard().scan_now(text, context)
    assert verdict.guard == "output"
    return verdict.action, verdict.text, [(f.type, f.action) for f in verdict.findings]


def test_guard_flags_by_default() -> None:
    text = "Well, shit. " + "I am sorry for that. " * 10
    action, answer, findings = scan(text)
    assert action == "flag" and answer == text
    assert findings == [("PROFANITY", "flag"), ("RUNAWAY_REPETITION", "flag")]


def test_guard_redacts_profanity_with_asterisks() -> None:
    action, text, findings = scan("You f.u.c.k1ng idiot, sh1t!", profanity="redact")
    assert (action, text) == ("redact", "You ********** idiot, ****!")
    assert findings == [("PROFANITY", "redact"), ("PROFANITY", "redact")]


def test_guard_cannot_redact_an_anomaly() -> None:
    action, text, findings = scan("", anomalies="redact")
    assert (action, text, findings) == ("flag", "", [("EMPTY_ANSWER", "flag")])


def test_guard_blocks_and_the_strictest_wins() -> None:
    action, text, findings = scan('{"a": shit', json_expected=True, anomalies="block", profanity="redact")
    assert action == "block" and text == '{"a": shit'
    assert findings == [("INVALID_JSON", "block"), ("PROFANITY", "redact")]


def test_guard_checks_can_be_turned_off() -> None:
    assert scan("shit " * 20, anomalies="allow", profanity="allow") == ("allow", "shit " * 20, [])
    assert scan("shit", profanity="allow") == ("allow", "shit", [])
    assert scan("", anomalies="allow") == ("allow", "", [])


async def test_guard_scan_without_request_settings_uses_its_own() -> None:
    guard = OutputGuard(GuardsSettings.model_validate({"output": {"profanity": "block"}}))
    verdict = await guard.scan("oh crap", ScanContext(direction="output"))
    assert verdict.action == "block"
    verdict = await OutputGuard().scan("oh crap", ScanContext(direction="output"))
    assert verdict.action == "flag"
    for answer in (GERMAN, CHINESE, RUSSIAN):
        assert OutputGuard().scan_now(answer, ScanContext(direction="output")).findings == []
