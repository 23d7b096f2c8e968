# tests/copies.bash - what tests/copies.bats needs: the copies of the steps
# that tests/copies.txt lists, cut into blocks, and compared with the step.
#
# A C file is cut into top-level blocks at the blank lines outside braces. A
# block is named after the function it defines (with the comment above it),
# or "includes", or after the first macro of a block of #defines; the block
# that opens the file (its header comment) is not compared: every copy has a
# header of its own.

COPIES_LIST="$ROOT/tests/copies.txt"

# split_blocks_of FILE DIR: writes each named block of FILE to DIR/NAME.
split_blocks_of() {
    mkdir -p "$2"
    awk -v dir="$2" '
        function flush() {
            if (text != "" && name != "" && name != "header") { f = dir "/" name; printf "%s", text > f; close(f) }
            text = ""; name = ""; first = 0
        }
        NR == 1 && /^\/\*/ { name = "header" }
        depth == 0 && !incomment && /^[[:space:]]*$/ { flush(); next }
        {
            line = $0
            if (depth == 0 && !incomment && name == "") {
                if (line ~ /^#include/) name = "includes"
                else if (line ~ /^#define/) { n = line; sub(/^#define[[:space:]]+/, "", n); sub(/[^A-Za-z0-9_].*/, "", n); name = n }
                else if (line ~ /^[A-Za-z].*[A-Za-z0-9_]\(/) { n = line; sub(/\(.*/, "", n); sub(/.*[^A-Za-z0-9_]/, "", n); name = n }
            }
            text = text line "\n"
            # Follow comments and braces, so that a blank line inside a
            # function or a comment does not end the block.
            s = line
            while (s != "") {
                if (incomment) {
                    i = index(s, "*/")
                    if (i == 0) s = ""; else { incomment = 0; s = substr(s, i + 2) }
                } else {
                    i = index(s, "/*")
                    code = i ? substr(s, 1, i - 1) : s
                    gsub(/"([^"\\]|\\.)*"/, "", code); gsub(/\047([^\047\\]|\\.)*\047/, "", code)
                    depth += gsub(/\{/, "{", code) - gsub(/\}/, "}", code)
                    if (i) { incomment = 1; s = substr(s, i + 2) } else s = ""
                }
            }
        }
        END { flush() }' "$1"
}

# copies_listed: "COPY STEP BLOCK..." for each copy in tests/copies.txt.
copies_listed() { grep -v '^[[:space:]]*\(#\|$\)' "$COPIES_LIST"; }

# copy_files: every file that copies a step: exercises' starters and
# reference solutions, and the second solutions.
copy_files() {
    (cd "$ROOT" && ls exercises/[0-9][0-9]-*/*.c exercises/solutions/*/*.c tests/second-solutions/*/*.c 2>/dev/null)
}

# changed_comments STEPBLOCK COPYBLOCK: for each comment of STEPBLOCK that
# COPYBLOCK does not keep, a line with its first words, unless
#  - its words are still there, in the same order, in a comment of the copy
#    (the copy added sentences before or after them), or
#  - the copy put a TODO(exercise) comment in its place, or
#  - the copy changed the code it explains (the lines below it, to the next
#    blank line or comment): then the comment may change with the code. This
#    does not hold for the comment that opens a function: it describes the
#    whole function, and must be kept (or the block marked NAME*).
changed_comments() {
    diff -U 100000 "$1" "$2" | sed '1,3d' | awk '
        function words(t) { gsub(/\/\*|\*\/|^[[:space:]]*\*|[^A-Za-z0-9_]+/, " ", t); gsub(/ +/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t); return t }
        {
            tag = substr($0, 1, 1); line = substr($0, 2); n++
            tags[n] = tag; text[n] = line
        }
        END {
            # The comments of each side: start and end line, in the merged view.
            for (side = 0; side <= 1; side++) {
                incom = 0
                for (i = 1; i <= n; i++) {
                    if (side == 0 && tags[i] == "+") continue
                    if (side == 1 && tags[i] == "-") continue
                    t = text[i]
                    if (!incom && t ~ /\/\*/) { incom = 1; c[side, ++nc[side]] = i; body = "" }
                    if (incom) { body = body " " t; last = i }
                    if (incom && t ~ /\*\//) { incom = 0; e[side, nc[side]] = i; w[side, nc[side]] = words(body) }
                }
            }
            for (k = 1; k <= nc[0]; k++) {
                changed = 0
                for (i = c[0, k]; i <= e[0, k]; i++) if (tags[i] == "-") changed = 1
                if (!changed) continue
                # Kept, with more words around it?
                kept = 0
                for (j = 1; j <= nc[1] && !kept; j++) if (index(" " w[1, j] " ", " " w[0, k] " ")) kept = 1
                if (kept) continue
                # Replaced by a TODO(exercise) comment, in the same place?
                todo = 0
                for (i = e[0, k] + 1; i <= n && tags[i] == "+"; i++) if (text[i] ~ /TODO\(exercise\)/) todo = 1
                for (i = c[0, k] - 1; i >= 1 && tags[i] == "+"; i--) if (text[i] ~ /TODO\(exercise\)/) todo = 1
                for (i = c[0, k]; i <= e[0, k]; i++) if (tags[i] == "+" && text[i] ~ /TODO\(exercise\)/) todo = 1
                if (todo) continue
                # The code it explains changed (a line of it gone, or a line
                # of code added among it)? Not for the comment that opens the
                # block: that one explains the whole function, and is kept.
                code = 0
                for (i = e[0, k] + 1; i <= n && c[0, k] > 1; i++) {
                    if (tags[i] == "+") {
                        if (text[i] !~ /^[[:space:]]*(\/\*|\*|$)/) { code = 1; break }
                        continue
                    }
                    if (text[i] ~ /^[[:space:]]*$/ || text[i] ~ /\/\*/) break
                    if (tags[i] == "-") { code = 1; break }
                }
                if (code) continue
                first = w[0, k]; if (length(first) > 60) first = substr(first, 1, 60) "..."
                print first
            }
        }'
}

# check_copy COPY STEP [BLOCK...]: prints one line per way COPY strays from
# STEP outside the blocks it lists as changed (BLOCK, or BLOCK* when the copy
# rewrites that block's comments too).
check_copy() {
    local copy=$1 step=$2 dir name listed star state
    shift 2
    dir=$(mktemp -d "$T/copy.XXXXXX")
    split_blocks_of "$ROOT/$step" "$dir/step"
    case $copy in /*) split_blocks_of "$copy" "$dir/copy" ;; *) split_blocks_of "$ROOT/$copy" "$dir/copy" ;; esac
    # One line per block of the step: "NAME same|differs|missing".
    (cd "$dir/copy" && cksum -- * 2>/dev/null) >"$dir/copy.sums"
    (cd "$dir/step" && cksum -- *) | awk -v sums="$dir/copy.sums" '
        BEGIN { while ((getline l < sums) > 0) { split(l, f, " "); c[f[3]] = f[1] " " f[2] } }
        { name = $3; print name, (!(name in c) ? "missing" : c[name] == $1 " " $2 ? "same" : "differs") }' >"$dir/states"
    for listed in "$@"; do
        name=${listed%\*}
        state=$(awk -v n="$name" '$1 == n { print $2 }' "$dir/states")
        case $state in
            '') echo "$copy: tests/copies.txt lists '$name' as changed, and $step has no such block" ;;
            same) echo "$copy: tests/copies.txt lists '$name' as changed, and it is the same as in $step: take it off the list" ;;
        esac
    done
    while read -r name state; do
        listed=no star=no
        case " $* " in *" $name "*) listed=yes ;; *" $name* "*) listed=yes star=yes ;; esac
        case $listed/$state in
            no/missing) echo "$copy: has no '$name', which $step has: list it as changed in tests/copies.txt" ;;
            no/differs) echo "$copy: '$name' differs from $step's: make it the same, or list it as changed in tests/copies.txt" ;;
            yes/differs)
                [ "$star" = yes ] ||
                    changed_comments "$dir/step/$name" "$dir/copy/$name" | while IFS= read -r first; do
                        echo "$copy: in '$name', $step's comment \"$first\" is missing or changed: copy it as it is, or mark '$name*' in tests/copies.txt if the copy rewrites its comments"
                    done ;;
        esac
    done <"$dir/states"
    rm -rf "$dir"
}
