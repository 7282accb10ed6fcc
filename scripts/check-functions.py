#!/usr/bin/env python3
"""No function longer than the limit (default 80 lines, signature to closing brace) in the given
folders' Swift and C files (CONTRIBUTING.md: a function that long is cut at the steps it already
has). Braces inside string literals and comments are not counted. Exit 1 when one is longer.

    scripts/check-functions.py [--limit N] DIR...
"""
import os
import re
import sys

SWIFT_START = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*"
    r"(?:(?:public|internal|private|fileprivate|package|static|class|override|mutating|nonisolated|final|"
    r"convenience|required)\s+)*"
    r"(?:func\s+[\w`]+|init[?!]?\s*[<(]|deinit\b|subscript\s*[<(])")
C_START = re.compile(r"^(?!static_assert)[A-Za-z_][\w \t\*]*\b(\w+)\s*\([^;]*$")


def code(line):
    """The line without string literals and comments (enough to count braces)."""
    line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    line = re.sub(r"'(?:[^'\\]|\\.)'", "''", line)
    return line.split("//")[0]


def functions(path, lines):
    is_c = path.endswith((".c", ".h"))
    in_block_comment = False
    i = 0
    while i < len(lines):
        line = lines[i]
        start = C_START.match(line) if is_c else SWIFT_START.match(line)
        if is_c and start and (line.startswith((" ", "\t", "#", "/", "}")) or line.rstrip().endswith(";")):
            start = None
        if not start:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            text = code(lines[j])
            if is_c:
                text, in_block_comment = strip_block_comments(text, in_block_comment)
            depth += text.count("{") - text.count("}")
            opened = opened or "{" in text
            if opened and depth <= 0:
                break
            if not opened and text.rstrip().endswith(";"):
                break
            j += 1
        if opened:
            yield i + 1, j - i + 1, line.strip()
        i += 1


def strip_block_comments(text, inside):
    out = ""
    while text:
        if inside:
            end = text.find("*/")
            if end < 0:
                return out, True
            text, inside = text[end + 2:], False
        else:
            start = text.find("/*")
            if start < 0:
                return out + text, False
            out, text, inside = out + text[:start], text[start + 2:], True
    return out, inside


def main(argv):
    limit = 80
    if argv[:1] == ["--limit"]:
        limit, argv = int(argv[1]), argv[2:]
    long = []
    for root in argv or ["Sources", "CSupport"]:
        for d, _, names in os.walk(root):
            for n in sorted(names):
                if n.endswith((".swift", ".c")):
                    p = os.path.join(d, n)
                    with open(p, encoding="utf-8") as f:
                        lines = f.read().split("\n")
                    for line, length, text in functions(p, lines):
                        if length > limit:
                            long.append((length, f"{p}:{line}", text[:80]))
    for length, where, text in sorted(long, reverse=True):
        print(f"{where}: {length} lines: {text}")
    if long:
        print(f"check-functions: {len(long)} function(s) over {limit} lines", file=sys.stderr)
        return 1
    print(f"check-functions: no function over {limit} lines in {', '.join(argv or ['Sources', 'CSupport'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
