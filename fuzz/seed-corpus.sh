#!/usr/bin/env bash
# Builds the working corpus of a fuzz target (fuzz/corpus/TARGET, not committed) from the
# committed seeds in fuzz/seeds/ plus every *.sip wire vector under tests/vectors/ (RFC 4475,
# RFC 5118, fuzz regressions). Files are named by content hash, so re-running only adds.
#   usage: fuzz/seed-corpus.sh TARGET...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for target in "$@"; do
    dir="$here/corpus/$target"
    mkdir -p "$dir"
    if [ "$target" = core_seq ]; then
        # The simulation's grammar, not SIP text: its own seeds and every regression input.
        for f in "$here"/seeds/core_seq/*.bin "$here"/regressions/core_seq/*.bin; do
            [ -f "$f" ] && cp "$f" "$dir/seed-$(sha1sum "$f" | cut -c1-16)"
        done
        echo "$target: $(ls "$dir" | wc -l) corpus files in $dir"
        continue
    fi
    find "$here/seeds" "$here/../tests/vectors" -type f -name '*.sip' -print0 2>/dev/null |
        while IFS= read -r -d '' f; do
            cp "$f" "$dir/seed-$(sha1sum "$f" | cut -c1-16)"
        done
    echo "$target: $(ls "$dir" | wc -l) corpus files in $dir"
done
