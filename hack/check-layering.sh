#!/usr/bin/env bash
# Fails when a source file includes a header of a folder its own folder
# may not depend on. The layers, lowest first:
#   lib/           nothing of ours
#   storage/       lib
#   apimachinery/  lib
#   authz/         lib, storage, apimachinery
#   registry/      lib, storage, apimachinery, authz (for admission)
#   apiservice/    lib
#   controllers/   lib, storage, apimachinery, authz, registry, apiservice
#   aggregator/    all of the above
# Tests, benchmarks and fuzz targets may include anything.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [lib]="lib"
  [storage]="lib storage"
  [apimachinery]="lib apimachinery"
  [authz]="lib storage apimachinery authz"
  [registry]="lib storage apimachinery authz registry"
  [apiservice]="lib apiservice"
  [controllers]="lib storage apimachinery authz registry apiservice controllers"
  [aggregator]="lib storage apimachinery authz registry apiservice controllers aggregator"
)
bad=0
while IFS= read -r f; do
  top=${f%%/*}
  [ -n "${allowed[$top]:-}" ] || continue
  dir=$(dirname "$f")
  while IFS= read -r inc; do
    target=$(realpath -m --relative-to=. "$dir/$inc")
    dep=${target%%/*}
    case " ${allowed[$top]} " in
      *" $dep "*) ;;
      *) echo "layering: $f includes $inc ($dep/ is above $top/)" >&2; bad=1 ;;
    esac
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done < <(git ls-files -co --exclude-standard '*.c' '*.h')
exit $bad
