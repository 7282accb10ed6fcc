#!/bin/sh
# Makes the upstream tarballs of the 3.0 (quilt) source package, for dpkg-source -b:
#
#   ../laju-backup_<upstream>.orig.tar.gz
#       this repository at a commit (default HEAD; LAJU_ORIG_REF=...), without debian/;
#   ../laju-backup_<upstream>.orig-swift-argument-parser.tar.gz
#       swift-argument-parser at the exact tag Package.swift pins, the one dependency of the build.
#       dpkg-source -x unpacks it into swift-argument-parser/, and debian/rules builds against that
#       copy (LAJU_ARGUMENT_PARSER_PATH), so the build needs neither git nor the network.
#
# Options: -o DIR writes the tarballs into DIR (default: the parent of the tree, where
# dpkg-buildpackage looks); --unpack also unpacks the component into ./swift-argument-parser, as
# dpkg-source -x would, so that `dpkg-buildpackage` works in this git checkout.
#
# Only this script uses git and the network (or git's URL rewriting to a local mirror):
# it plays the part uscan plays for other packages (debian/watch).
# Env: LAJU_ARGUMENT_PARSER_GIT overrides where swift-argument-parser is cloned from.
set -eu

AP_URL=${LAJU_ARGUMENT_PARSER_GIT:-https://github.com/apple/swift-argument-parser}
AP_TAG=1.8.2
# The tree of tag 1.8.2 (git rev-parse 1.8.2^{tree}): content-addressed, so it also checks that a
# mirror serves exactly upstream's files.
AP_TREE=e0a95470aa8a42a5c29b6caf869339bd2774e8a1
COMPONENT=swift-argument-parser

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(dirname "$top")
unpack=no
while [ $# -gt 0 ]; do
    case "$1" in
        -o) out=$(cd "$2" && pwd); shift 2 ;;
        --unpack) unpack=yes; shift ;;
        *) echo "usage: $0 [-o DIR] [--unpack]" >&2; exit 2 ;;
    esac
done

cd "$top"
grep -q "exact: \"$AP_TAG\"" Package.swift || {
    echo "$0: Package.swift no longer pins swift-argument-parser $AP_TAG: update AP_TAG and AP_TREE here" >&2
    exit 1
}
version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
upstream=${upstream#*:}
ref=${LAJU_ORIG_REF:-HEAD}

main_tar=$out/laju-backup_$upstream.orig.tar.gz
comp_tar=$out/laju-backup_$upstream.orig-$COMPONENT.tar.gz

# gzip -n: no name or time stamp in the header, so the same commit always gives the same bytes.
git archive --format=tar --prefix="laju-backup-$upstream/" "$ref" -- . ':(exclude)debian' \
    | gzip -n -9 >"$main_tar.tmp"
mv "$main_tar.tmp" "$main_tar"
echo "wrote $main_tar ($(git rev-parse --short "$ref"))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --quiet --bare --depth 1 --branch "$AP_TAG" "$AP_URL" "$tmp/ap.git" 2>"$tmp/clone.err" || {
    cat "$tmp/clone.err" >&2; exit 1; }
tree=$(git -C "$tmp/ap.git" rev-parse "$AP_TAG^{tree}")
if [ "$tree" != "$AP_TREE" ]; then
    echo "$0: swift-argument-parser $AP_TAG from $AP_URL has tree $tree, expected $AP_TREE" >&2
    exit 1
fi
git -C "$tmp/ap.git" archive --format=tar --prefix="$COMPONENT-$AP_TAG/" "$AP_TAG" | gzip -n -9 >"$comp_tar.tmp"
mv "$comp_tar.tmp" "$comp_tar"
echo "wrote $comp_tar ($AP_TAG, tree $tree)"

if [ "$unpack" = yes ]; then
    rm -rf "$top/$COMPONENT"
    mkdir "$top/$COMPONENT"
    tar -xzf "$comp_tar" -C "$top/$COMPONENT" --strip-components=1
    echo "unpacked $COMPONENT/"
fi
