#!/usr/bin/env bash
# make-image-corpus.sh — collect the real-image corpus that crates/imaging/tests/real_corpus.rs
# runs through intake_imaging::render: images no one on this project made.
#
# Usage:  make-image-corpus.sh [TARGET_DIR]     (default: <workspace>/target/image-corpus)
#
# Sources, each pinned by version and SHA-256 (a mismatch stops the script):
#   pillow/   Tests/images/ of Pillow's source distribution on PyPI (pip download): about
#             1,070 odd, broken and hostile files: CMYK, 16-bit, interlaced, truncated,
#             oversized tags, fuzzer finds, and many formats Intake does not take.
#   debian/   image files of Debian bookworm packages (apt-get download + dpkg-deb -x, no
#             install, no root): desktop-base (PNG/JPEG artwork and screens),
#             gnome-backgrounds (two 4096×4096 lossy WebP wallpapers, SVG), python3-skimage
#             (scikit-image's sample and test data: grey, 16-bit TIFF, GIF, photos) and
#             lomiri-wallpapers-20.04 (large progressive JPEG photos).
# Not used, on purpose: plasma-workspace-wallpapers and mate-backgrounds (kept for
# acceptance checks; Dune.jpg of the latter is a committed fixture in tests/fixtures/real).
#
# Needs python3 with pip, apt-get (package lists: run apt-get update once on a fresh
# machine), dpkg-deb, tar, sha256sum. Downloads are cached in TARGET_DIR/.downloads; a
# re-run with everything in place downloads nothing. Prints the file count per source.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
workspace="$(cd "$here/../../../.." && pwd)"
TARGET="${1:-$workspace/target/image-corpus}"

PILLOW_VERSION=11.3.0
PILLOW_SHA256=3828ee7586cd0b2091b6209e5ad53e20d0649bbe87164a459d0676e035e8f523

# package=version  sha256-of-the-.deb  files-to-take (find -path patterns, inside the package)
DEBS='
desktop-base=12.0.6+nmu1~deb12u1 0d0e36a9853f778cf44c31311c5f97adeadf762ae00589ef221b8328d3409c6e *.png|*.jpg
gnome-backgrounds=43.1-1 a670dea21572652127d6e55f9cdb3a226d0037854fdbfd037003c7d00ee0dc4e */wood-d.webp|*/symbolic-l.webp|*.svg
python3-skimage=0.19.3-8 728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9 *.png|*.jpg|*.gif|*.tif|*.tiff|*.bmp|*.webp
lomiri-wallpapers-20.04=20.04.0-2 d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709 *.jpg
'

fail() { echo "make-image-corpus: $*" >&2; exit 1; }
sha_ok() { echo "$1  $2" | sha256sum --quiet -c - >/dev/null 2>&1; }
for tool in python3 apt-get dpkg-deb tar sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

# As root, apt-get would hand the download to its _apt user, who cannot write here.
apt_options=()
[ "$(id -u)" -ne 0 ] || apt_options=(-o APT::Sandbox::User=root)

downloads="$TARGET/.downloads"
mkdir -p "$downloads"

# --- Pillow's test images -------------------------------------------------------------
sdist="$downloads/pillow-$PILLOW_VERSION.tar.gz"
if ! sha_ok "$PILLOW_SHA256" "$sdist"; then
  rm -f "$sdist"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: "pillow==$PILLOW_VERSION" -d "$downloads" \
    || fail "pip download pillow==$PILLOW_VERSION failed (network to PyPI?)"
  sha_ok "$PILLOW_SHA256" "$sdist" || fail "$sdist: SHA-256 is not $PILLOW_SHA256"
fi
rm -rf "$TARGET/pillow" "$downloads/pillow-src"
mkdir -p "$downloads/pillow-src"
tar -xzf "$sdist" -C "$downloads/pillow-src" "pillow-$PILLOW_VERSION/Tests/images"
mv "$downloads/pillow-src/pillow-$PILLOW_VERSION/Tests/images" "$TARGET/pillow"
rm -rf "$downloads/pillow-src"
# Regular files only (the test reads every file under TARGET).
find "$TARGET/pillow" ! -type f ! -type d -delete
echo "pillow $PILLOW_VERSION: $(find "$TARGET/pillow" -type f | wc -l) files"

# --- Debian packages ------------------------------------------------------------------
rm -rf "$TARGET/debian"
while read -r spec sum patterns; do
  [ -n "$spec" ] || continue
  package="${spec%%=*}"
  version="${spec#*=}"
  deb="$downloads/${package}_${version//:/%3a}_all.deb"
  if ! sha_ok "$sum" "$deb"; then
    rm -f "$deb"
    # apt-get download writes into the current directory, as the invoking user.
    (cd "$downloads" && apt-get download -q "${apt_options[@]}" "$package=$version" >/dev/null) \
      || fail "apt-get download $package=$version failed (run apt-get update; is this Debian bookworm?)"
    sha_ok "$sum" "$deb" || fail "$deb: SHA-256 is not $sum"
  fi
  root="$downloads/extract-$package"
  rm -rf "$root"
  dpkg-deb -x "$deb" "$root"
  dest="$TARGET/debian/$package"
  mkdir -p "$dest"
  count=0
  IFS='|' read -r -a globs <<< "$patterns"
  while IFS= read -r -d '' file; do
    rel="${file#"$root"/}"
    rel="${rel#usr/share/}"
    rel="${rel#usr/lib/python3/dist-packages/}"
    mkdir -p "$dest/$(dirname "$rel")"
    cp "$file" "$dest/$rel"
    count=$((count + 1))
  done < <(for g in "${globs[@]}"; do find "$root" -type f -path "$g" -print0; done | sort -zu)
  rm -rf "$root"
  [ "$count" -gt 0 ] || fail "$package $version: no file matched $patterns"
  echo "debian $package $version: $count files"
done <<< "$DEBS"

echo "image corpus: $(find "$TARGET" -path "$downloads" -prune -o -type f -print | wc -l) files in $TARGET"
