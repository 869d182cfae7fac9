#!/usr/bin/env bash
# Builds the Debian package: the binary (profile `dist` by default: LTO,
# one codegen unit, stripped), its man pages and shell completions generated
# from that binary, then `cargo deb`. The .deb lands in target/debian/.
#
#   packaging/build-deb.sh              # a release package (profile dist)
#   packaging/build-deb.sh --profile dev --no-build
#                                       # package an already built debug binary (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "build-deb.sh: unknown argument $1 (use --profile P, --no-build)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  dev) profile_dir=debug ;;
  *) profile_dir="$profile" ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb"
  cargo install cargo-deb --locked --version 3.8.0
fi

if [ "$build" = 1 ]; then
  cargo build --locked -p tako --profile "$profile"
fi
binary="target/$profile_dir/tako"
[ -x "$binary" ] || { echo "build-deb.sh: $binary is missing: build it first or drop --no-build" >&2; exit 1; }

# Man pages and completions come from the binary being packaged.
out=target/package
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$binary" man --out-dir "$out/man" >/dev/null
gzip -9n "$out"/man/*.1
"$binary" completions bash > "$out/completions/tako.bash"
"$binary" completions zsh > "$out/completions/_tako"
"$binary" completions fish > "$out/completions/tako.fish"

cargo deb --locked -p tako --no-build --profile "$profile" --no-dbgsym
ls -l target/debian/*.deb
