#!/usr/bin/env python3
"""The layer rule of Sources/LajuBackup (CONTRIBUTING.md): names are used in one direction only.

    Core -> Config -> Store -> Catalog -> Format -> {Backup, Restore, Retention, Inspect} -> Monitoring

A file may name what its own folder declares and what any lower layer declares; the four verb
folders are peers and never name each other's declarations. "Declares" covers top-level types,
functions and typealiases, and the members of extensions a folder adds to a type declared
elsewhere (`extension Settings { func openCatalog() }` in Catalog/ belongs to Catalog).

Also checked: no cast to a concrete store (`as? S3Store`, `as! LocalStore`...) outside Store/.
Comments are ignored; string literals are not (an interpolation is code). Exit 1 on a violation.
"""
import os, re, sys

LAYERS = ["Core", "Config", "Store", "Catalog", "Format",
          ("Backup", "Restore", "Retention", "Inspect"), "Monitoring"]
RANK = {}
for i, layer in enumerate(LAYERS):
    for name in (layer if isinstance(layer, tuple) else (layer,)):
        RANK[name] = i

DECL = re.compile(r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|package|final|indirect)\s+)*"
                  r"(class|struct|enum|protocol|typealias|actor|func|extension|let|var)\s+([A-Za-z_]\w*)")
MEMBER = re.compile(r"^\s+(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|package|static|mutating|nonisolated|@discardableResult)\s+)*"
                    r"(?:func|var|let)\s+([A-Za-z_]\w*)")
STDLIB = {"prefix", "suffix", "count", "first", "last", "map", "filter", "contains", "description",
          "isEmpty", "min", "max", "sorted", "reversed", "joined", "split", "append", "remove"}
CONCRETE_CAST = re.compile(r"\bas[?!]\s*(S3Store|LocalStore)\b")


def strip_comments(text):
    out = []
    for line in text.split("\n"):
        i, quote = 0, False
        while i < len(line):
            c = line[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quote = not quote
            elif not quote and line.startswith("//", i):
                line = line[:i]
                break
            i += 1
        out.append(line)
    return "\n".join(out)


def folder(path, root):
    return os.path.relpath(path, root).split(os.sep)[0]


def scan(root):
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".swift"):
                p = os.path.join(d, n)
                files[p] = strip_comments(open(p, encoding="utf-8").read())
    types, members, declared = {}, {}, {}
    for p, text in files.items():
        f = folder(p, root)
        depth, ext = 0, None
        for line in text.split("\n"):
            if depth == 0:
                m = DECL.match(line)
                ext = None
                if m and m.group(1) == "extension":
                    ext = m.group(2)
                elif m and m.group(1) not in ("let", "var"):
                    types.setdefault(m.group(2), f)
                elif m:
                    types.setdefault(m.group(2), f)
            elif depth == 1:
                m = MEMBER.match(line)
                if m:
                    declared.setdefault(m.group(1), set()).add(f)
                    if ext:
                        members.setdefault(m.group(1), set()).add((ext, f))
            depth += line.count("{") - line.count("}")
    # An extension member belongs to the folder that adds it only when the extended type is
    # declared in another folder (or is the standard library's).
    owned_members = {}
    for name, places in members.items():
        for ext, f in places:
            if types.get(ext) != f:
                owned_members.setdefault(name, set()).add(f)
    return files, types, owned_members, declared


def allowed(user, owner):
    if user == owner:
        return True
    if user not in RANK or owner not in RANK:
        return False
    return RANK[owner] < RANK[user]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "Sources/LajuBackup"
    files, types, members, declared = scan(root)
    problems = []
    for p, text in sorted(files.items()):
        user = folder(p, root)
        if user not in RANK:
            problems.append(f"{p}: folder {user}/ is not in the layer list")
            continue
        words = set(re.findall(r"\b[A-Za-z_]\w*\b", text))
        for w in sorted(words):
            owner = types.get(w)
            if owner and not allowed(user, owner):
                problems.append(f"{p}: names {w} ({owner}/)")
        for w in sorted(set(re.findall(r"\.([A-Za-z_]\w*)\b", text))):
            owners = members.get(w, set())
            # A member of the same name declared where this file may look (another type's
            # property, say) or one of the standard library's makes the use ambiguous: not flagged.
            if w in STDLIB or any(allowed(user, o) for o in declared.get(w, set())):
                continue
            if owners:
                problems.append(f"{p}: uses .{w} ({'/, '.join(sorted(owners))}/)")
        if user != "Store":
            for m in CONCRETE_CAST.finditer(text):
                problems.append(f"{p}: casts to the concrete store {m.group(1)} (ask the store for a capability instead)")
    # The CLI is above every layer; it too learns what a store can do from its capabilities.
    cli = os.path.join(os.path.dirname(root.rstrip("/")), "laju-backup")
    for d, _, names in os.walk(cli):
        for n in names:
            if n.endswith(".swift"):
                p = os.path.join(d, n)
                for m in CONCRETE_CAST.finditer(strip_comments(open(p, encoding="utf-8").read())):
                    problems.append(f"{p}: casts to the concrete store {m.group(1)} (ask the store for a capability instead)")
    for line in problems:
        print(line)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-layers: {len(files)} files, layers {' -> '.join(l if isinstance(l, str) else '{' + ', '.join(l) + '}' for l in LAYERS)}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
