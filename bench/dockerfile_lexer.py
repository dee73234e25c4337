"""Dockerfile lexer and parser cost on hostile input: long continued lines, comment floods.

For each input (a few MB written to a temporary file) it reports, as figures and as ratios
against a baseline measured in the same run on the same bytes (read the file, decode it,
split it at line breaks: the least any reader must do):

- lex: ``tasks.dockerfile.lexer.lex`` on the decoded text;
- parse: ``parse_dockerfile`` (lexing, ARG expansion, every FROM resolved);
- linearity: the same input at a quarter of the size, time(full) / time(quarter): about 4
  for a linear reader, 16 for a quadratic one (the old lexer: 1 MB 6 s, 4 MB 92 s).

It also checks that ``read_dockerfile`` refuses the full-size file at its default limit.

    python bench/dockerfile_lexer.py [--mb 4] [--repeat 3]

Target: a 4 MB continued line lexed in under 1 s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.dockerfile.lexer import lex
from tasks.dockerfile.parser import MAX_DOCKERFILE_BYTES, parse_dockerfile, read_dockerfile
from tasks.errors import DockerfileError

MB = 1024 * 1024


def inputs(size: int) -> dict[str, str]:
    """Inputs of about `size` bytes, each ending with a FROM that must still be found."""
    tail = "FROM nvidia/cuda:12.6.3-base-ubuntu22.04\n"
    return {
        "RUN continued over short lines": "RUN echo \\\n" + "  part \\\n" * (size // 9) + "  end\n" + tail,
        "FROM continued, 3-byte lines": "FROM nvidia/cuda:12.6.3-base-\\\n" + "x\\\n" * (size // 3) + "y\n" + tail,
        "ARG default continued": "ARG A=\\\n" + "x\\\n" * (size // 3) + "y\nFROM nvidia/cuda:$A\n" + tail,
        "one physical line, continued": "RUN " + "x" * size + " \\\n end\n" + tail,
        "comments with U+2028 and NEL": "# c\u2028FROM evil:1\x85\n" * (size // 20) + tail,
    }


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def measure(name: str, text: str, quarter: str, repeat: int, workdir: Path) -> dict[str, float | str]:
    path = workdir / "Dockerfile"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    baseline = best(repeat, lambda: path.read_bytes().decode("utf-8", "surrogateescape").split("\n"))
    lexed = best(repeat, lambda: lex(text))
    parsed = best(repeat, lambda: parse_dockerfile(text))
    small = best(repeat, lambda: lex(quarter))
    bases = parse_dockerfile(text).bases
    assert bases and bases[-1].image == "nvidia/cuda:12.6.3-base-ubuntu22.04", f"{name}: the last FROM was lost"
    assert all("evil" not in (b.image or "") for b in bases), f"{name}: a phantom FROM"
    return {
        "input": name,
        "mb": len(text.encode("utf-8", "surrogateescape")) / MB,
        "baseline_s": baseline,
        "lex_s": lexed,
        "parse_s": parsed,
        "lex_ratio": lexed / baseline,
        "growth": lexed / small,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=4.0, help="input size in MiB (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    args = parser.parse_args()
    size = int(args.mb * MB)
    full, quarter = inputs(size), inputs(size // 4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in full.items():
            rows.append(measure(name, text, quarter[name], args.repeat, Path(tmp)))
        path = Path(tmp) / "Dockerfile"
        path.write_text(next(iter(full.values())))
        try:
            read_dockerfile(path)
            refused = "NOT refused"
        except DockerfileError as exc:
            refused = f"refused: {exc}"
    print(f"{'input':32} {'MiB':>5} {'read+split':>10} {'lex':>8} {'parse':>8} {'lex/base':>9} {'x4 size':>8}")
    for row in rows:
        print(
            f"{row['input']:32} {row['mb']:5.1f} {row['baseline_s']:9.3f}s {row['lex_s']:7.3f}s "
            f"{row['parse_s']:7.3f}s {row['lex_ratio']:9.1f} {row['growth']:8.2f}"
        )
    print(f"read_dockerfile at the default limit ({MAX_DOCKERFILE_BYTES} bytes): {refused}")
    slowest = max(float(r["lex_s"]) for r in rows)
    print(
        f"slowest lex: {slowest:.3f} s (target < 1 s); largest growth for 4x the size: "
        f"{max(float(r['growth']) for r in rows):.2f} (linear ~4, quadratic ~16)"
    )
    return 0 if slowest < 1.0 and refused.startswith("refused") else 1


if __name__ == "__main__":
    raise SystemExit(main())
