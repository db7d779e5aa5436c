#!/usr/bin/env bash
# dist/glimpse/ (the PyInstaller bundle) → dist/glimpse_<version>_amd64.deb:
#   /usr/lib/glimpse/            the bundle
#   /usr/bin/glimpse             the command, a link into it
#   /usr/share/applications/     the desktop entry (the application menu)
#   /usr/share/icons/hicolor/    the icon, SVG and 256 px PNG
#   /usr/share/metainfo/         AppStream metadata (software centres, search in the menu)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:?set VERSION to the package version}
BUNDLE=dist/glimpse
test -x "$BUNDLE/glimpse" || { echo "no bundle at $BUNDLE: run make package" >&2; exit 1; }

stage=build/deb/glimpse_${VERSION}_amd64
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/lib" "$stage/usr/bin" "$stage/usr/share/applications" \
  "$stage/usr/share/icons/hicolor/scalable/apps" "$stage/usr/share/icons/hicolor/256x256/apps" \
  "$stage/usr/share/metainfo"
cp -al "$BUNDLE" "$stage/usr/lib/glimpse"  # hard links: the bundle is gigabytes
ln -s ../lib/glimpse/glimpse "$stage/usr/bin/glimpse"
install -m 644 resources/glimpse.desktop "$stage/usr/share/applications/glimpse.desktop"
install -m 644 resources/icons/glimpse.svg "$stage/usr/share/icons/hicolor/scalable/apps/glimpse.svg"
install -m 644 resources/icons/glimpse.png "$stage/usr/share/icons/hicolor/256x256/apps/glimpse.png"
install -m 644 packaging/io.github.glimpse.Glimpse.metainfo.xml "$stage/usr/share/metainfo/"

cat > "$stage/DEBIAN/control" <<CONTROL
Package: glimpse
Version: $VERSION
Architecture: amd64
Maintainer: Glimpse developers <glimpse@localhost>
Installed-Size: $(du -sk "$stage" | cut -f1)
Depends: libc6 (>= 2.31), libgl1, libegl1, libfontconfig1, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libdbus-1-3
Section: graphics
Priority: optional
Description: find photos and moments in videos by describing them
 Glimpse indexes the photos and videos in your folders and finds them by what
 you type ("the dog jumping into the lake"). Everything runs on your computer;
 no picture leaves it. A fast dual encoder shortlists, a cross-attention model
 re-ranks, and videos are found at the matching moment.
CONTROL
# Refresh the menu and icon caches where the tools exist; a missing tool is not an error.
cat > "$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q /usr/share/icons/hicolor || true
SCRIPT
cp "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

# zstd at a low level: seconds on gigabytes of libraries, where xz would take most of an hour.
dpkg-deb --root-owner-group -Zzstd -z3 --build "$stage" "dist/glimpse_${VERSION}_amd64.deb" >/dev/null
rm -rf "$stage"
ls -l "dist/glimpse_${VERSION}_amd64.deb"
