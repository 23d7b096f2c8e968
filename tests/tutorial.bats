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

# chart_bars TUTORIAL: one line "CHART SERVER CLIENTS VALUE" for each bar of
# every xychart in TUTORIAL (CHART counts them from 1), whose labels read
# "SERVER, N at once: VALUE"; it fails when a chart's y-axis does not run
# from 0 past its longest bar, or shows numbers: mermaid then draws the
# axis's 0 about 20 px to the right of where the bars start (it pads an axis
# with labels by half a label's width, baseAxis.ts in mermaid's xychart), and
# every bar looks too long.
chart_bars() {
    awk '
        /^```mermaid$/ { inside = 1; chart = 0; yaxis = 0; front = 0; nolabels = 0; labels = bars = axis = ""; next }
        inside && /^```$/ { inside = 0; if (chart) check(); next }
        inside && /^---$/ { front = !front; next }
        inside && front && /^    yAxis:/ { yaxis = 1; next }
        inside && front && yaxis && /^      showLabel: false$/ { nolabels = 1 }
        inside && front && /^    [^ ]/ { yaxis = 0 }
        inside && /^xychart-beta/ { chart = 1; charts++ }
        inside && chart && /^[[:space:]]*x-axis[[:space:]]*\[/ { labels = $0 }
        inside && chart && /^[[:space:]]*bar[[:space:]]*\[/ { bars = $0 }
        inside && chart && /^[[:space:]]*y-axis/ { axis = $0 }
        function fail(msg) { print "chart " charts ": " msg > "/dev/stderr"; bad = 1; exit 1 }
        function check(   top, nl, nb, l, b, i, part) {
            # The axis must start at 0 and reach past the longest bar, or the
            # bars lie about their sizes.
            if (!match(axis, /[[:space:]]0[[:space:]]*-->[[:space:]]*[0-9]+[[:space:]]*$/))
                fail("the y-axis must give a range from 0: y-axis \"...\" 0 --> MAX")
            if (!nolabels)
                fail("the chart must hide the numbers of its value axis (config: xyChart: yAxis: showLabel: false), or mermaid draws every bar about 20 px too long; give each value in its label instead")
            top = axis; sub(/^.*-->[[:space:]]*/, "", top); top += 0
            sub(/^[^[]*\[/, "", labels); sub(/\][^]]*$/, "", labels)
            sub(/^[^[]*\[/, "", bars); sub(/\][^]]*$/, "", bars)
            nl = split(labels, l, /"[[:space:]]*,[[:space:]]*"/)
            nb = split(bars, b, /[[:space:]]*,[[:space:]]*/)
            if (nl != nb) fail("the chart has " nl " labels and " nb " bars")
            for (i = 1; i <= nl; i++) {
                gsub(/"/, "", l[i]); gsub(/[[:space:]]/, "", b[i])
                if (l[i] !~ /^[^, ]+, [0-9]+ at once: [0-9]+$/)
                    fail("a label is not of the form \"SERVER, N at once: VALUE\": " l[i])
                split(l[i], part, /, | at once: /)
                if (part[3] != b[i]) fail("the label " l[i] " gives another value than its bar (" b[i] ")")
                if (b[i] + 0 > top) fail("the bar for " l[i] " (" b[i] ") is longer than the y-axis (" top ")")
                print charts, part[1], part[2], b[i]
            }
        }
        END { if (bad) exit 1
              if (charts < 1) { print "expected an xychart in the tutorial, found none" > "/dev/stderr"; exit 1 } }
    ' "$1"
}

# results_rates RESULTS: one line "SERVER CLIENTS CONN/S" for each row of the
# connection-rate table in RESULTS (bench/results.md).
results_rates() {
    awk -F'|' '
        function trim(x) { gsub(/^[[:space:]]+|[[:space:]]+$/, "", x); return x }
        !/^\|/ { header = 0; next }
        /^\|[-| ]+\|$/ { next }
        !header { header = 1; once = rate = 0
                  for (i = 2; i < NF; i++) { h = trim($i); if (h == "at once") once = i; if (h == "conn/s") rate = i }
                  next }
        once && rate && trim($2) ~ /^[a-z][a-z0-9+]*$/ && trim($once) ~ /^[0-9]+$/ && trim($rate) ~ /^[0-9]+$/ {
            print trim($2), trim($once), trim($rate) }
    ' "$1"
}

# check_chart TUTORIAL RESULTS: every bar of every chart is the rate RESULTS
# gives for that server and number of clients at once; each chart shows each
# of its servers at every number of clients at once that RESULTS has for
# step2; the first shows step2, step3, step4 and at least one yardstick; and
# together they show every server of RESULTS' rate table but nullserver (the
# load generator's ceiling) and the variants named with a "+".
check_chart() {
    local bars rates chart server n value want checked=0 others missing
    bars=$(chart_bars "$1") || return 1
    rates=$(results_rates "$2")
    [ -n "$rates" ] || { echo "no connection rates found in $2" >&2; return 1; }
    while read -r chart server n value; do
        want=$(printf '%s\n' "$rates" | awk -v s="$server" -v n="$n" '$1 == s && $2 == n { print $3 }')
        [ -n "$want" ] ||
            { echo "chart $chart has a bar for '$server, $n at once', and $2 has no such row" >&2; return 1; }
        [ "$value" = "$want" ] ||
            { echo "chart $chart says $server, $n at once: $value connections/s; $2 says $want" >&2; return 1; }
        checked=$((checked + 1))
    done <<<"$bars"
    for chart in $(printf '%s\n' "$bars" | awk '{ print $1 }' | sort -u); do
        for server in $(printf '%s\n' "$bars" | awk -v c="$chart" '$1 == c { print $2 }' | sort -u); do
            for n in $(printf '%s\n' "$rates" | awk '$1 == "step2" { print $2 }'); do
                printf '%s\n' "$bars" | awk -v c="$chart" -v s="$server" -v n="$n" '$1 == c && $2 == s && $3 == n { f = 1 } END { exit !f }' ||
                    { echo "chart $chart has no bar for '$server, $n at once'" >&2; return 1; }
            done
        done
    done
    for server in step2 step3 step4; do
        printf '%s\n' "$bars" | awk -v s="$server" '$1 == 1 && $2 == s { f = 1 } END { exit !f }' ||
            { echo "chart 1 has no bar for '$server'" >&2; return 1; }
    done
    others=$(printf '%s\n' "$bars" | awk '$1 == 1 && $2 !~ /^step[234]$/' | wc -l)
    [ "$others" -gt 0 ] || { echo "chart 1 shows no yardstick beside step2, step3 and step4" >&2; return 1; }
    for server in $(printf '%s\n' "$rates" | awk '$1 != "nullserver" && $1 !~ /\+/ { print $1 }' | sort -u); do
        printf '%s\n' "$bars" | awk -v s="$server" '$2 == s { f = 1 } END { exit !f }' ||
            { echo "$2 has rates for '$server', and no chart shows them" >&2; return 1; }
    done
    echo "$checked bars checked in $(printf '%s\n' "$bars" | awk '{ print $1 }' | sort -u | wc -l | tr -d ' ') charts"
    [ "$checked" -gt 0 ]
}

# check_tables TUTORIAL RESULTS: every table of TUTORIAL that follows the line
# "<!-- numbers from bench/results.md -->" quotes RESULTS: its header names
# columns of one table of RESULTS, and each of its rows gives, in every
# column, what that table's row with the same key gives (the key: the first
# column, and the column "at once" where there is one). Digits are compared
# without the commas that tutorial.md puts in large numbers. Prints one line
# per cell checked; fails on the first cell that differs, saying what to copy.
check_tables() {
    awk -F'|' '
        function trim(x) { gsub(/^[[:space:]]+|[[:space:]]+$/, "", x); return x }
        function norm(x) { x = trim(x); gsub(/,/, "", x); return x }
        # A table row: its cells, trimmed, in cell[1..n]; returns n.
        function cells(line, cell,   n, i, parts) {
            n = split(line, parts, "|")
            for (i = 2; i < n; i++) cell[i - 1] = trim(parts[i])
            return n - 2
        }
        FNR == 1 { file++ }
        # RESULTS: every table, its header and rows.
        file == 1 && /^\|/ {
            if (!intable) { t++; intable = 1; nh[t] = cells($0, h); for (i = 1; i <= nh[t]; i++) head[t, i] = h[i]; nr[t] = 0; next }
            if ($0 ~ /^\|[-| ]+\|$/) next
            r = ++nr[t]; nc = cells($0, c); for (i = 1; i <= nc; i++) val[t, r, i] = c[i]
            next
        }
        file == 1 { intable = 0; next }
        # TUTORIAL: the marked tables.
        file == 2 && /^<!-- numbers from bench\/results\.md -->$/ { marked = 1; next }
        file == 2 && marked && /^\|/ {
            if (!qhead) { qn = cells($0, qh); qhead = 1; tables++; found = find_table(); next }
            if ($0 ~ /^\|[-| ]+\|$/) next
            check_row()
            next
        }
        file == 2 && marked && qhead && !/^\|/ { marked = 0; qhead = 0 }
        # find_table: the table of RESULTS that has every column of the quoted one.
        function find_table(   k, i, j, ok, hit) {
            for (k = 1; k <= t; k++) {
                ok = 1
                for (i = 1; i <= qn && ok; i++) {
                    hit = 0
                    for (j = 1; j <= nh[k]; j++) if (head[k, j] == qh[i] || (i == 1 && j == 1)) { col[i] = j; hit = 1; break }
                    if (!hit) ok = 0
                }
                if (ok) return k
            }
            print "tutorial.md quotes a table with the columns \"" join(qh, qn) "\", and bench/results.md has no table with all of them" > "/dev/stderr"
            bad = 1; exit 1
        }
        function join(a, n,   s, i) { s = a[1]; for (i = 2; i <= n; i++) s = s " | " a[i]; return s }
        function check_row(   nc, q, r, i, ok, key, kcols) {
            nc = cells($0, q)
            key = q[1]; kcols = 1
            for (i = 2; i <= qn; i++) if (qh[i] == "at once") { key = key ", " q[i] " at once" }
            for (r = 1; r <= nr[found]; r++) {
                ok = (norm(val[found, r, 1]) == norm(q[1]))
                for (i = 2; i <= qn && ok; i++) if (qh[i] == "at once" && norm(val[found, r, col[i]]) != norm(q[i])) ok = 0
                if (ok) break
            }
            if (!ok) { print "tutorial.md quotes a row \"" key "\", and bench/results.md has none" > "/dev/stderr"; bad = 1; exit 1 }
            for (i = 2; i <= qn; i++) {
                if (norm(q[i]) != norm(val[found, r, col[i]])) {
                    print "tutorial.md says " qh[i] " of " key ": " q[i] "; bench/results.md says " val[found, r, col[i]] > "/dev/stderr"
                    bad = 1; exit 1
                }
                checked++
            }
        }
        END { if (bad) exit 1
              if (!tables) { print "tutorial.md has no table marked <!-- numbers from bench/results.md -->" > "/dev/stderr"; exit 1 }
              print checked " cells of " tables " tables checked" }
    ' "$2" "$1"
}

# results_cell RESULTS COLUMN SERVER [N]: the cell in COLUMN of the row of
# SERVER (with N clients at once, in a table that has a column "at once") of
# the first table of RESULTS that has both; digits only, without commas.
results_cell() {
    awk -F'|' -v column="$2" -v server="$3" -v n="${4:-}" '
        function trim(x) { gsub(/^[[:space:]]+|[[:space:]]+$/, "", x); return x }
        !/^\|/ { header = 0; col = once = 0; next }
        /^\|[-| ]+\|$/ { next }
        !header { header = 1; col = once = 0
                  for (i = 2; i < NF; i++) { h = trim($i); if (h == column) col = i; if (h == "at once") once = i }
                  next }
        col && trim($2) == server && (n == "" ? !once : once && trim($once) == n) {
            v = trim($col); gsub(/,/, "", v); print v; exit }
    ' "$1"
}

# bench_markers TUTORIAL: what each "<!-- bench: ... -->" marker says (not
# the one in backquotes, in the conventions at the top).
bench_markers() {
    grep -o '.<!-- bench: [^<]* -->' "$1" | grep -v '^`' | sed 's/^.<!-- bench: //; s/ -->$//'
}

# check_orders TUTORIAL RESULTS: every comparison that TUTORIAL makes in a
# marker "<!-- bench: COLUMN: SERVER [N] > SERVER [N] -->" (after the
# sentence that says it in words) holds in RESULTS. A new reference run that
# turns one around makes the sentence false: the test names it.
check_orders() {
    local marker column a b va vb checked=0
    while IFS= read -r marker; do
        column=${marker%%: *}
        a=${marker#*: }; b=${a#* > }; a=${a% > *}
        # shellcheck disable=SC2086 # SERVER [N]: one or two words
        va=$(results_cell "$2" "$column" $a)
        # shellcheck disable=SC2086
        vb=$(results_cell "$2" "$column" $b)
        [ -n "$va" ] && [ -n "$vb" ] ||
            { echo "tutorial.md compares '$column' of '$a' and '$b', and $2 lacks one of them" >&2; return 1; }
        awk -v a="$va" -v b="$vb" 'BEGIN { exit !(a + 0 > b + 0) }' ||
            { echo "tutorial.md says $column of $a ($va) > $b ($vb), and $2 says otherwise: rewrite that sentence" >&2; return 1; }
        checked=$((checked + 1))
    done < <(bench_markers "$1")
    echo "$checked comparisons checked"
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

@test "the charts in tutorial.md show the connection rates of the committed bench/results.md" {
    run check_chart "$TUTORIAL" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "every comparison tutorial.md makes between rows of bench/results.md holds there" {
    run check_orders "$TUTORIAL" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "the comparison check fails when bench/results.md turns one around" {
    local marker column a va
    marker=$(bench_markers "$TUTORIAL" | head -n 1)
    [ -n "$marker" ] || fail_because "expected a marker <!-- bench: ... --> in tutorial.md, got none"
    column=${marker%%: *}; a=${marker#*: }; a=${a% > *}
    # shellcheck disable=SC2086
    va=$(results_cell "$ROOT/bench/results.md" "$column" $a)
    # The first compared cell becomes 0: the comparison no longer holds.
    awk -F'|' -v OFS='|' -v col="$column" -v key="$a" '
        function trim(x) { gsub(/^[[:space:]]+|[[:space:]]+$/, "", x); return x }
        !/^\|/ { header = 0 }
        /^\|/ && !header { header = 1; c = once = 0; for (i = 2; i < NF; i++) { if (trim($i) == col) c = i; if (trim($i) == "at once") once = i } print; next }
        c && !done { k = trim($2); if (once) k = k " " trim($once); if (k == key) { $c = " 0 "; done = 1 } }
        { print }' "$ROOT/bench/results.md" >"$T/results.md"
    ! cmp -s "$ROOT/bench/results.md" "$T/results.md"
    run check_orders "$TUTORIAL" "$T/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"$column of $a ($(results_cell "$T/results.md" "$column" $a)) >"*"rewrite that sentence"* ]]
    [ "$va" != 0 ]
}

@test "the tables tutorial.md quotes from bench/results.md give its numbers" {
    run check_tables "$TUTORIAL" "$ROOT/bench/results.md"
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
                  skip = (title ~ /How fast|Where to go/) ; next }
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
    [[ $output == *"chart 1 says step2, 1 at once: 1 connections/s"* ]]
}

@test "the chart check fails when bench/results.md has new numbers the chart lacks" {
    awk -F'|' -v OFS='|' '{ n = $3; gsub(/ /, "", n) } $2 ~ /^ step4 +$/ && n == "8" { $4 = " 1 " } { print }' \
        "$ROOT/bench/results.md" >"$T/results.md"
    ! cmp -s "$ROOT/bench/results.md" "$T/results.md"
    run check_chart "$TUTORIAL" "$T/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"chart 1 says step4, 8 at once:"*"says 1"* ]]
}

@test "the chart check fails when bench/results.md has a server that no chart shows" {
    awk -F'|' -v OFS='|' '{ print } $2 ~ /^ step2 +$/ { $2 = " step9 "; print }' "$ROOT/bench/results.md" >"$T/results.md"
    run check_chart "$TUTORIAL" "$T/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"has rates for 'step9', and no chart shows them"* ]]
}

@test "the chart check fails when a chart leaves out one number of clients at once for one of its servers" {
    local last
    last=$(grep -c '^xychart-beta' "$TUTORIAL")
    # The last chart loses its first bar, and the label with it.
    awk -v last="$last" '/^xychart-beta/ { n++ } n == last && /^[[:space:]]*x-axis[[:space:]]*\[/ { sub(/\["[^"]*", /, "[") }
         n == last && /^[[:space:]]*bar[[:space:]]*\[/ { sub(/\[[0-9]+, /, "[") } { print }' "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_chart "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"chart $last has no bar for"*", 1 at once'"* ]]
}

@test "the table check fails when one quoted number differs from bench/results.md" {
    awk '/^<!-- numbers from bench\/results\.md -->$/ { m = 1 } m && /^\| step4 \| 8 \|/ { sub(/\| step4 \| 8 \| [0-9,]+ \|/, "| step4 | 8 | 1 |"); m = 0 } { print }' \
        "$TUTORIAL" >"$T/mutated.md"
    ! cmp -s "$TUTORIAL" "$T/mutated.md"
    run check_tables "$T/mutated.md" "$ROOT/bench/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"tutorial.md says conn/s of step4, 8 at once: 1; bench/results.md says"* ]]
}

@test "the table check fails when bench/results.md has new numbers a quoted table lacks" {
    awk -F'|' -v OFS='|' '{ n = $3; gsub(/ /, "", n) } $2 ~ /^ step2 +$/ && n == "8" { $4 = " 7 " } { print }' \
        "$ROOT/bench/results.md" >"$T/results.md"
    ! cmp -s "$ROOT/bench/results.md" "$T/results.md"
    run check_tables "$TUTORIAL" "$T/results.md"
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"of step2, 8 at once: "*"; bench/results.md says 7"* ]]
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

# Exercises written on branches of their own, which tutorial.md links before
# they are merged (exercises/NN-name each). Once they are, empty this list.
PENDING_EXERCISES=""
# pending exercises/NN-name/README.md: that exercise is on the list above.
pending() {
    local dir=${1#exercises/}
    dir=${dir%/README.md}
    case " $PENDING_EXERCISES " in *" $dir "*) return 0 ;; esac
    return 1
}

@test "tutorial.md links every classroom exercise, and every exercise it links exists" {
    local dir name linked missing=
    linked=$(grep -o '](exercises/[0-9][0-9]-[a-z0-9-]*/README.md)' "$TUTORIAL" | sed 's/^](//; s/)$//' | sort -u)
    for dir in "$ROOT"/exercises/[0-9][0-9]-*/; do
        name="exercises/$(basename "$dir")/README.md"
        grep -qxF "$name" <<<"$linked" || missing="$missing $name (not linked)"
    done
    for name in $linked; do
        [ -f "$ROOT/$name" ] || pending "$name" || missing="$missing $name (linked, but no such file)"
    done
    [ -z "$missing" ] || fail_because "expected tutorial.md to link each exercise, got:$missing"
}
