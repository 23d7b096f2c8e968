#!/usr/bin/env bats
# tutorial.md: what it quotes is the code in the repository, and what it tells
# the reader to run exists. The conventions are at the top of tutorial.md:
#   ```c    blocks start with "// FILE"; the other lines come from FILE, in order,
#           with a line of "..." for lines left out ("// sketch, not in the
#           repository" opts a block out);
#   ```diff blocks start with "--- OLD" and "+++ NEW"; each hunk is one hunk of
#           `diff -u OLD NEW` (or of FILE.patch when the line before the block
#           is "<!-- hunks of FILE.patch -->");
#   ```sh   blocks and `inline code`: "make TARGET" names a Makefile target and
#           "./PATH" a program that exists once everything is built.
# Each check takes the tutorial as an argument, so that the last tests can show
# that it fails on a copy with one quoted line changed.

load helper

TUTORIAL="$ROOT/tutorial.md"

# split_blocks FILE DIR: writes each fenced block of FILE to DIR/NNN.LANG and
# the last non-blank line before it to DIR/NNN.before.
split_blocks() {
    mkdir -p "$2"
    awk -v dir="$2" '
        /^```/ && !inside { inside = 1; n++; lang = substr($0, 4); if (lang == "") lang = "none"
                            name = sprintf("%s/%03d", dir, n)
                            printf "%s\n", before > (name ".before"); close(name ".before")
                            out = name "." lang; printf "" > out; next }
        /^```$/ && inside { inside = 0; close(out); next }
        inside            { print > out; next }
        NF                { before = $0 }
    ' "$1"
}

# hunks_of FILE DIR: writes each hunk of the unified diff in FILE (from one
# "@@" line to the next) to DIR/NNN.
hunks_of() {
    mkdir -p "$2"
    awk -v dir="$2" '/^@@/ { n++; if (out) close(out); out = sprintf("%s/%03d", dir, n) }
                     out   { print > out }' "$1"
}

# check_diffs TUTORIAL: every ```diff block is made of real hunks.
check_diffs() {
    local dir="$T/diffs" block old new ref h found checked=0 patch
    split_blocks "$1" "$dir"
    for block in "$dir"/*.diff; do
        [ -e "$block" ] || break
        old=$(sed -n '1s/^--- //p' "$block")
        new=$(sed -n '2s/^+++ //p' "$block")
        [ -n "$old" ] && [ -n "$new" ] ||
            { echo "$block: a diff block must start with '--- OLD' and '+++ NEW'" >&2; return 1; }
        ref="$block.ref"
        patch=$(sed -n 's/^<!-- hunks of \(.*\.patch\) -->$/\1/p' "${block%.diff}.before")
        if [ -n "$patch" ]; then
            [ -f "$ROOT/$patch" ] || { echo "no such patch: $patch" >&2; return 1; }
            sed -n '/^--- /,$p' "$ROOT/$patch" >"$ref"
            [ "$(head -2 "$ref")" = "$(head -2 "$block")" ] ||
                { echo "$block: header lines differ from $patch" >&2; return 1; }
        else
            [ -f "$ROOT/$old" ] && [ -f "$ROOT/$new" ] ||
                { echo "$block: '$old' or '$new' is not a file of the repository" >&2; return 1; }
            (cd "$ROOT" && diff -u "$old" "$new") >"$ref"
        fi
        [ "$(sed -n 3p "$block" | cut -c1-2)" = "@@" ] ||
            { echo "$block ($old -> $new): the third line must start a hunk" >&2; return 1; }
        hunks_of "$ref" "$ref.hunks"
        hunks_of "$block" "$block.hunks"
        for h in "$block.hunks"/*; do
            found=no
            for r in "$ref.hunks"/*; do
                if cmp -s "$h" "$r"; then found=yes; break; fi
            done
            if [ "$found" = no ]; then
                echo "tutorial.md quotes a hunk that is not in the diff of $old and $new:" >&2
                cat "$h" >&2
                return 1
            fi
            checked=$((checked + 1))
        done
    done
    echo "$checked hunks checked"
    [ "$checked" -gt 0 ]
}

# check_quotes TUTORIAL: every ```c block is copied from the file it names.
check_quotes() {
    local dir="$T/quotes" block first file checked=0
    split_blocks "$1" "$dir"
    for block in "$dir"/*.c; do
        [ -e "$block" ] || break
        first=$(head -1 "$block")
        case $first in
        "// sketch, not in the repository"*) continue ;;
        "// "*) file=${first#// } ;;
        *) echo "$block: a c block must start with '// FILE' or '// sketch, not in the repository'" >&2
           return 1 ;;
        esac
        [ -f "$ROOT/$file" ] || { echo "$block: no such file: $file" >&2; return 1; }
        # The pieces between "..." lines must occur in FILE, in this order.
        awk -v src="$ROOT/$file" -v name="$file" '
            BEGIN { piece = 0; while ((getline line < src) > 0) s[++ns] = line }
            NR == 1 { next }
            /^[[:space:]]*\.\.\.$/ { piece++; next }
            { p[piece, ++np[piece]] = $0 }
            END {
                from = 1
                for (k = 0; k <= piece; k++) {
                    hit = 0
                    for (i = from; i + np[k] - 1 <= ns && !hit; i++) {
                        ok = 1
                        for (j = 1; j <= np[k] && ok; j++)
                            if (s[i + j - 1] != p[k, j]) ok = 0
                        if (ok) { hit = 1; from = i + np[k] }
                    }
                    if (!hit) {
                        print "tutorial.md quotes lines that are not in " name " (in this order):" > "/dev/stderr"
                        for (j = 1; j <= np[k]; j++) print "    " p[k, j] > "/dev/stderr"
                        exit 1
                    }
                }
            }' "$block" || return 1
        checked=$((checked + 1))
    done
    echo "$checked quotes checked"
    [ "$checked" -gt 0 ]
}

# commands_in TUTORIAL: the text of every ```sh block and every `inline code`
# (outside HTML comments, where the conventions above are written down; a
# comment that opens and closes on one line, such as a claim's marker, is
# only cut out of its line).
commands_in() {
    awk '!comment { gsub(/<!--([^-]|-[^-]|--[^>])*-->/, "") }
         /^<!--/ { comment = 1; next }
         comment { if ($0 == "-->") comment = 0; next }
         /^```/ { inside = !inside; sh = inside && $0 == "```sh"; next }
         inside && sh { print; next }
         inside { next }
         { line = $0
           while (match(line, /`[^`]+`/)) {
               print substr(line, RSTART + 1, RLENGTH - 2)
               line = substr(line, RSTART + RLENGTH)
           } }' "$1"
}

# check_commands TUTORIAL: every `make TARGET` and `./PROGRAM` exists.
check_commands() {
    local targets=() programs=() t kind name
    # After "make", every word that is not an option or an assignment is a
    # target; a word that starts with ./ is a program.
    while read -r kind name; do
        case $kind in T) targets+=("$name") ;; P) programs+=("$name") ;; esac
    done < <(commands_in "$1" | awk '{ gsub(/[;|&()<>]/, " "); prev = ""
        for (i = 1; i <= NF; i++) {
            w = $i
            if (prev == "make" || prev == "target") { if (w !~ /^-/ && w !~ /=/) print "T " w; prev = "target"; continue }
            prev = (w == "make") ? "make" : ""
            if (w ~ /^\.\/./) { sub(/[,.:]$/, "", w); print "P " w }
        } }')
    # Each name once; one make for all of them, and one for each only when
    # that fails, to name the culprit.
    local unique_targets unique_programs
    unique_targets=$(printf '%s\n' ${targets[@]+"${targets[@]}"} | sort -u)
    unique_programs=$(printf '%s\n' ${programs[@]+"${programs[@]}"} | sed 's|^\./||' | sort -u)
    # shellcheck disable=SC2086 # one word each
    if ! make -C "$ROOT" -n $unique_targets >/dev/null 2>&1; then
        for t in $unique_targets; do
            make -C "$ROOT" -n "$t" >/dev/null 2>&1 ||
                { echo "tutorial.md says 'make $t', and the Makefile has no such target" >&2; return 1; }
        done
    fi
    # shellcheck disable=SC2086 # one word each
    make -C "$ROOT" -n $unique_programs >/dev/null 2>&1 || unique_programs_fail=1
    for t in $unique_programs; do
        { [ -z "${unique_programs_fail:-}" ] || make -C "$ROOT" -n "$t" >/dev/null 2>&1; } && [ -x "$ROOT/$t" ] ||
            { echo "tutorial.md says to run './$t', and make does not build it" >&2; return 1; }
    done
    echo "${#targets[@]} make targets and ${#programs[@]} programs checked"
    [ "${#targets[@]}" -gt 0 ] && [ "${#programs[@]}" -gt 0 ]
}

# chart_bars TUTORIAL: one line "SERVER CLIENTS VALUE" for each bar of the
# one xychart in TUTORIAL, whose labels read "SERVER, N at once: VALUE"; it
# fails when the y-axis does not run from 0 past the longest bar, or shows
# numbers: mermaid then draws the axis's 0 about 20 px to the right of where
# the bars start (it pads an axis with labels by half a label's width,
# baseAxis.ts in mermaid's xychart), and every bar looks too long.
chart_bars() {
    awk '
        /^```mermaid$/ { inside = 1; chart = 0; yaxis = 0; front = 0; next }
        inside && /^```$/ { inside = 0; next }
        inside && /^---$/ { front = !front; next }
        inside && front && /^    yAxis:/ { yaxis = 1; next }
        inside && front && yaxis && /^      showLabel: false$/ { nolabels = 1 }
        inside && front && /^    [^ ]/ { yaxis = 0 }
        inside && /^xychart-beta/ { chart = 1; charts++ }
        inside && chart && /^[[:space:]]*x-axis[[:space:]]*\[/ { labels = $0 }
        inside && chart && /^[[:space:]]*bar[[:space:]]*\[/ { bars = $0 }
        inside && chart && /^[[:space:]]*y-axis/ { axis = $0 }
        END {
            if (charts != 1) { print "expected one xychart in the tutorial, found " charts + 0 > "/dev/stderr"; exit 1 }
            # The axis must start at 0 and reach past the longest bar, or the
            # bars lie about their sizes.
            if (!match(axis, /[[:space:]]0[[:space:]]*-->[[:space:]]*[0-9]+[[:space:]]*$/)) {
                print "the chart'"'"'s y-axis must give a range from 0: y-axis \"...\" 0 --> MAX" > "/dev/stderr"; exit 1
            }
            if (!nolabels) {
                print "the chart must hide the numbers of its value axis (config: xyChart: yAxis: showLabel: false)," > "/dev/stderr"
                print "or mermaid draws every bar about 20 px too long; give each value in its label instead" > "/dev/stderr"; exit 1
            }
            top = axis; sub(/^.*-->[[:space:]]*/, "", top); top += 0
            sub(/^[^[]*\[/, "", labels); sub(/\][^]]*$/, "", labels)
            sub(/^[^[]*\[/, "", bars); sub(/\][^]]*$/, "", bars)
            nl = split(labels, l, /"[[:space:]]*,[[:space:]]*"/)
            nb = split(bars, b, /[[:space:]]*,[[:space:]]*/)
            if (nl != nb) { print "the chart has " nl " labels and " nb " bars" > "/dev/stderr"; exit 1 }
            for (i = 1; i <= nl; i++) {
                gsub(/"/, "", l[i]); gsub(/[[:space:]]/, "", b[i])
                if (l[i] !~ /^[^, ]+, [0-9]+ at once: [0-9]+$/) {
                    print "a chart label is not of the form \"SERVER, N at once: VALUE\": " l[i] > "/dev/stderr"; exit 1
                }
                split(l[i], part, /, | at once: /)
                if (part[3] != b[i]) { print "the label " l[i] " gives another value than its bar (" b[i] ")" > "/dev/stderr"; exit 1 }
                if (b[i] + 0 > top) { print "the bar for " l[i] " (" b[i] ") is longer than the y-axis (" top ")" > "/dev/stderr"; exit 1 }
                print part[1], part[2], b[i]
            }
        }' "$1"
}

# results_rates RESULTS: one line "SERVER CLIENTS CONN/S" for each row of the
# connection-rate table in RESULTS (bench/results.md).
results_rates() {
    awk -F'|' '
        function trim(x) { gsub(/^[[:space:]]+|[[:space:]]+$/, "", x); return x }
        NF > 4 { name = trim($2); n = trim($3); rate = trim($4)
                 if (name ~ /^[a-z][a-z0-9+]*$/ && n ~ /^[0-9]+$/ && rate ~ /^[0-9]+$/) print name, n, rate }
    ' "$1"
}

# check_chart TUTORIAL RESULTS: every bar of the chart is the rate RESULTS gives
# for that server and number of clients at once, and the chart shows step2,
# step3, step4 and at least one yardstick at every number of clients at once
# that RESULTS has for step2.
check_chart() {
    local bars rates server n value want checked=0 others
    bars=$(chart_bars "$1") || return 1
    rates=$(results_rates "$2")
    [ -n "$rates" ] || { echo "no connection rates found in $2" >&2; return 1; }
    while read -r server n value; do
        want=$(printf '%s\n' "$rates" | awk -v s="$server" -v n="$n" '$1 == s && $2 == n { print $3 }')
        [ -n "$want" ] ||
            { echo "the chart has a bar for '$server, $n at once', and $2 has no such row" >&2; return 1; }
        [ "$value" = "$want" ] ||
            { echo "the chart says $server, $n at once: $value connections/s; $2 says $want" >&2; return 1; }
        checked=$((checked + 1))
    done <<<"$bars"
    for n in $(printf '%s\n' "$rates" | awk '$1 == "step2" { print $2 }'); do
        for server in step2 step3 step4; do
            printf '%s\n' "$bars" | awk -v s="$server" -v n="$n" '$1 == s && $2 == n { f = 1 } END { exit !f }' ||
                { echo "the chart has no bar for '$server, $n at once'" >&2; return 1; }
        done
    done
    others=$(printf '%s\n' "$bars" | awk '$1 !~ /^step[234]$/' | wc -l)
    [ "$others" -gt 0 ] || { echo "the chart shows no yardstick beside step2, step3 and step4" >&2; return 1; }
    echo "$checked bars checked"
    [ "$checked" -gt 0 ]
}

@test "every diff in tutorial.md is made of hunks of the real diff between the files it names" {
    run check_diffs "$TUTORIAL"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "every C quote in tutorial.md is copied unchanged from the file it names" {
    run check_quotes "$TUTORIAL"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "every make target and program tutorial.md tells the reader to run exists" {
    run check_commands "$TUTORIAL"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "tutorial.md quotes the diff of each step against the one before" {
    grep -qx -- '--- step1-single/server.c' "$TUTORIAL"
    grep -qx -- '+++ step2-loop/server.c' "$TUTORIAL"
    grep -qx -- '+++ step3-fork/server.c' "$TUTORIAL"
    grep -qx -- '+++ step4-reap/server.c' "$TUTORIAL"
}

@test "the chart in tutorial.md shows the connection rates of the committed bench/results.md" {
    run check_chart "$TUTORIAL" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "tutorial.md has at least three diagrams of at least two kinds" {
    [ "$(grep -cx '```mermaid' "$TUTORIAL")" -ge 3 ]
    [ "$(awk '/^```mermaid$/ { getline; print $1 }' "$TUTORIAL" | sort -u | wc -l)" -ge 2 ]
}

@test "every chapter of tutorial.md ends with at least two exercises, each with a hint" {
    awk '/^```/ { inside = !inside }
         inside { next }
         /^## / { if (title != "" && !skip) check(); title = $0; ex = 0; hints = 0
                  skip = (title ~ /How fast/) ; next }
         /^### Exercises/ { ex = 1; n = 0; hints = 0; next }
         ex && /^[0-9]+\. / { n++ }
         ex && /\*Hint:\*/ { hints++ }
         function check() { if (n < 2 || hints < n) { print title ": " n " exercises, " hints " hints"; bad = 1 } }
         END { if (!skip) check(); exit bad }' "$TUTORIAL"
}

# The checks must be able to fail. Each of these changes one thing in a copy of
# tutorial.md and expects the check to notice.

@test "the quote check fails when one quoted line no longer matches the source" {
    sed 's/^    if (listen(sockfd, SOMAXCONN) < 0)$/    if (listen(sockfd, 5) < 0)/' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_quotes "$T/mutated.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"not in step1-single/server.c"* ]]
}

@test "the diff check fails when one line of a quoted diff is changed" {
    sed 's/^+        pid = fork();$/+        pid = vfork();/' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_diffs "$T/mutated.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"not in the diff of step2-loop/server.c and step3-fork/server.c"* ]]
}

@test "the command check fails on a make target or a program that does not exist" {
    { cat "$TUTORIAL"; printf '\n```sh\nmake step5\n```\n'; } >"$T/mutated.md"
    run check_commands "$T/mutated.md"
    [ "$status" -ne 0 ]
    [[ $output == *"'make step5'"* ]]
    { cat "$TUTORIAL"; printf '\nRun `./step5-poll/server 5000`.\n'; } >"$T/mutated.md"
    run check_commands "$T/mutated.md"
    [ "$status" -ne 0 ]
    [[ $output == *"'./step5-poll/server'"* ]]
}

@test "the chart check fails when one bar differs from bench/results.md" {
    awk '/^[[:space:]]*bar[[:space:]]*\[/ { sub(/\[[0-9]+/, "[1") }
         /^[[:space:]]*x-axis[[:space:]]*\[/ { sub(/^[^"]*"[^"]*: [0-9]+"/, "    x-axis [\"step2, 1 at once: 1\"") } { print }' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_chart "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"the chart says step2, 1 at once: 1 connections/s"* ]]
}

@test "the chart check fails when bench/results.md has new numbers the chart lacks" {
    awk -F'|' -v OFS='|' '{ n = $3; gsub(/ /, "", n) } $2 ~ /^ step4 +$/ && n == "8" { $4 = " 1 " } { print }' \
        "$ROOT/bench/results.md" >"$T/results.md"
    ! cmp -s "$ROOT/bench/results.md" "$T/results.md"
    run check_chart "$TUTORIAL" "$T/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"the chart says step4, 8 at once:"*"says 1"* ]]
}

@test "the chart check fails when a label gives another value than its bar" {
    awk '/^[[:space:]]*bar[[:space:]]*\[/ { sub(/\[[0-9]+/, "[1") } { print }' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_chart "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"gives another value than its bar (1)"* ]]
}

@test "the chart check fails when the value axis shows numbers, which mermaid draws 20 px off the bars" {
    grep -v '^      showLabel: false$' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_chart "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"showLabel: false"* ]]
}

@test "the chart check fails when the y-axis is shorter than the longest bar" {
    sed 's/^\(    y-axis .*\) 0 --> [0-9]*$/\1 0 --> 100/' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_chart "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"is longer than the y-axis (100)"* ]]
}

@test "tutorial.md links every classroom exercise, and every exercise it links exists" {
    local dir name linked missing=
    linked=$(grep -o '](exercises/[0-9][0-9]-[a-z0-9-]*/README.md)' "$TUTORIAL" | sed 's/^](//; s/)$//' | sort -u)
    for dir in "$ROOT"/exercises/[0-9][0-9]-*/; do
        name="exercises/$(basename "$dir")/README.md"
        grep -qxF "$name" <<<"$linked" || missing="$missing $name (not linked)"
    done
    for name in $linked; do
        [ -f "$ROOT/$name" ] || missing="$missing $name (linked, but no such file)"
    done
    [ -z "$missing" ] || fail_because "expected tutorial.md to link each exercise, got:$missing"
}
