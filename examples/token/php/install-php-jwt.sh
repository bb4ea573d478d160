#!/usr/bin/env bash
# Installs firebase/php-jwt without Composer, for the PHP snippet's test, into
# /usr/local/share/php/firebase-php-jwt (idempotent, quiet). Debian 12 has no package of its own
# for it but ships it inside its zoneminder package, which is downloaded, not installed, and
# unpacked for that one folder. A site uses Composer instead: composer require firebase/php-jwt
set -euo pipefail

dest=${FIREBASE_PHP_JWT_DIR:-/usr/local/share/php/firebase-php-jwt}
[ -f "$dest/src/JWT.php" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download zoneminder >/dev/null 2>&1 || { apt-get update -qq && apt-get download zoneminder >/dev/null 2>&1; }
dpkg-deb -x zoneminder_*.deb unpacked
mkdir -p "$dest"
cp -r unpacked/usr/share/zoneminder/www/vendor/firebase/php-jwt/. "$dest/"
