"""Make a finished run into a model shipped with facegan (maintainers only).

    python tools/ship_model.py RUN src/facegan/pretrained/faces-64 FACTS.json

FACTS.json holds the card's facts that only the person shipping knows: name,
summary, data, data_terms, recipe, command, cpu_minutes, machine, date,
metrics (fid, kid, kid_std, face_rate, num, real, command), warped, notes.
The step, batch size, float16 check and seed checksums are measured here
(`facegan.artifacts.shipping.ship_run`). Prints the card. A model folder that
exists is refused: shipped weights are committed once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("facts")
    args = parser.parse_args()
    from facegan.artifacts.shipping import ship_run
    from facegan.pretrained import render_card

    facts = ship_run(args.run, Path(args.out), json.loads(Path(args.facts).read_text()))
    print(render_card(facts))
    size = sum(p.stat().st_size for p in Path(args.out).iterdir())
    print(f"{args.out}: {size / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
