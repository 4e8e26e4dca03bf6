"""Known-source removal per reply, next to the heuristic stripper alone in the same run.

A reply quotes one of our agent notices (60 lines); the writer's last ten mails from us are the
known texts, as the pipeline's `known` stage gives them. Prints microseconds per reply.
"""

from __future__ import annotations

import argparse
import time

from gateway.mail.known import Known, new_words
from gateway.mail.quotes import visible_text


def _notice(seed: int) -> str:
    return "\n".join(f"Line {i} of notice {seed}: the detector in room {i * 7} rings, ticket {100000 + seed}"
                     for i in range(60))


def _time(work: object, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        work()  # type: ignore[operator]
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    sent = [_notice(seed) for seed in range(10)]
    known = Known.of(sent)
    quoted = "\n".join("> " + line for line in sent[0].split("\n"))
    shapes = {"top-posted": f"My answer.\n\nOn Tue, Postdesk wrote:\n{quoted}\n",
              "bottom-posted": f"On Tue, Postdesk wrote:\n{quoted}\n\nMy answer.\n"}
    for name, body in shapes.items():
        baseline = _time(lambda body=body: visible_text(body), args.rounds)
        removal = _time(lambda body=body: new_words(body, None, known), args.rounds)
        print(f"{name:14} heuristic alone {baseline:8.0f} µs   known-source removal {removal:8.0f} µs")


if __name__ == "__main__":
    main()
