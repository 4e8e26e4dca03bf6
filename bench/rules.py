"""Routing rule evaluation time per message, for 10, 100 and 1,000 rules.

Generates rule files with a realistic mix (customer domains, subject regexes and keywords,
body phrases, headers, any/all/not groups; most rules limited to one of four mailboxes),
loads them with the real loader, and evaluates a few thousand varied messages. Prints figures;
it passes or fails nothing.

    python bench/rules.py [messages]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from gateway.routing.router import Facts, RuleSet, evaluate, load_rules

MAILBOXES = [f"{name}@telenta.example" for name in ("support", "order", "service", "onlinesupport")]
WORDS = (
    "brandlarm inbrottslarm passagesystem trygghetslarm order faktura offert kortläsare "
    "larmcentral detektor sirén batteri servicebesök avtal leverans installation nyckel "
    "kamera dörr grind hiss garage skola förskola sjukhus lager kontor butik"
).split()
FILLER = "hej vi har ett problem med anläggningen sedan i går kväll kan ni hjälpa oss".split()
RULES_PER_FILE = 100


def make_rule(index: int, rnd: random.Random) -> dict[str, Any]:
    """One rule; three in four are limited to a mailbox, as admins mostly write them."""
    kind = rnd.random()
    match: dict[str, Any] = {}
    if rnd.random() < 0.75:
        match["to"] = rnd.choice(MAILBOXES)
    if kind < 0.35:
        match["from_domain"] = f"kund{rnd.randrange(400)}.example"
    elif kind < 0.55:
        pair = "|".join(rnd.sample(WORDS, 2))
        match["subject"] = {"regex": f"(?i)\\b({pair})\\b.*(?P<site>\\d{{3,}})"}
    elif kind < 0.70:
        match["subject"] = {"contains": f"{rnd.choice(WORDS)} {rnd.choice(WORDS)}"}
    elif kind < 0.80:
        match["body"] = {"contains": " ".join(rnd.sample(WORDS, 3))}
    elif kind < 0.90:
        match["header"] = {"x-customer-id": str(rnd.randrange(10_000))}
    else:
        match["any"] = [
            {"from": f"user{rnd.randrange(1000)}@kund{rnd.randrange(400)}.example"},
            {"all": [{"subject": {"contains": rnd.choice(WORDS)}}, {"has_attachment": True}]},
        ]
        match["not"] = {"language": {"one_of": ["ro", "en"]}}
    actions: dict[str, Any] = {"department": f"dept-{index % 12}", "tags": [f"t{index % 7}"]}
    if "subject" in match and "regex" in match["subject"]:
        actions["fields"] = {"site": "{site}"}
    return {"name": f"rule {index}", "match": match, "set": actions, "continue": index % 10 == 0}


def make_facts(rnd: random.Random, miss: bool = False) -> Facts:
    """A message; with `miss`, one no generated rule matches, so every candidate is tried."""
    if miss:
        return _missing(rnd)
    words = rnd.sample(WORDS, 2)
    body = " ".join(rnd.choice(FILLER + WORDS) for _ in range(rnd.randrange(20, 300)))
    return Facts(
        mailbox=rnd.choice(MAILBOXES),
        from_addr=f"user{rnd.randrange(1000)}@kund{rnd.randrange(600)}.example",
        cc=[],
        subject=f"Re: {words[0]} {words[1]} anläggning {rnd.randrange(100, 9999)}",
        body=body,
        headers={"x-customer-id": [str(rnd.randrange(10_000))], "x-mailer": ["Outlook 16"]},
        has_attachment=rnd.random() < 0.2,
        language=rnd.choice(["sv", "sv", "sv", "en", "ro", None]),
        followup=rnd.random() < 0.4,
        business_hours=rnd.random() < 0.7,
    )


def _missing(rnd: random.Random) -> Facts:
    body = " ".join(rnd.choice(FILLER) for _ in range(rnd.randrange(20, 300)))
    return Facts(
        mailbox=rnd.choice(MAILBOXES),
        from_addr=f"user{rnd.randrange(2000, 3000)}@annan{rnd.randrange(600)}.example",
        subject=f"Fråga om {rnd.choice(FILLER)} {rnd.randrange(100, 9999)}",
        body=body,
        headers={"x-customer-id": [str(rnd.randrange(10_000, 20_000))]},
        has_attachment=rnd.random() < 0.2,
        language=rnd.choice(["sv", "en", None]),
    )


def write_rules(directory: Path, count: int, rnd: random.Random) -> None:
    rules = [make_rule(i, rnd) for i in range(count)]
    for start in range(0, count, RULES_PER_FILE):
        chunk = rules[start : start + RULES_PER_FILE]
        path = directory / f"{start // RULES_PER_FILE:03d}-bench.yaml"
        path.write_text(yaml.safe_dump(chunk, allow_unicode=True, sort_keys=False), "utf-8")


def measure(ruleset: RuleSet, messages: list[Facts]) -> tuple[list[float], int]:
    """Microseconds per message, and how many messages matched at least one rule."""
    timings = []
    matched = 0
    clock = time.perf_counter_ns
    for facts in messages:
        start = clock()
        decision = evaluate(ruleset, facts)
        timings.append((clock() - start) / 1000)
        matched += bool(decision.matched)
    return timings, matched


def main() -> None:
    count_messages = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rnd = random.Random(20240611)
    mixes = {
        "mixed": [make_facts(rnd) for _ in range(count_messages)],
        "no match": [make_facts(rnd, miss=True) for _ in range(count_messages)],
    }
    print(f"{count_messages} messages per mix; µs per message for `evaluate` (one mailbox)")
    heads = ("rules", "load ms", "messages", "mean", "p50", "p99", "matched")
    print(" ".join(f"{head:>{width}}" for head, width in zip(heads, (6, 8, 9, 7, 7, 7, 8), strict=True)))
    for size in (10, 100, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            write_rules(Path(tmp), size, rnd)
            start = time.perf_counter()
            ruleset = load_rules(Path(tmp))
            load_ms = (time.perf_counter() - start) * 1000
        for mix, messages in mixes.items():
            measure(ruleset, messages[:200])  # warm caches and the allocator
            timings, matched = measure(ruleset, messages)
            cuts = statistics.quantiles(timings, n=100)
            print(
                f"{size:>6} {load_ms:>8.1f} {mix:>9} {statistics.fmean(timings):>7.1f} "
                f"{cuts[49]:>7.1f} {cuts[98]:>7.1f} {matched / len(messages):>7.0%}"
            )


if __name__ == "__main__":
    main()
