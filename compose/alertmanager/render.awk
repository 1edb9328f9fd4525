# Renders alertmanager.yml (see its header). Run by render.sh; POSIX/busybox awk.
function fail(msg) { printf "render.sh: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; failed = 1; exit 1 }
function val(name) {
    if (name !~ /^ALERT(MANAGER)?_[A-Z0-9_]+$/) fail("variable " name " is not ALERT_* / ALERTMANAGER_*")
    if (name ~ /(PASSWORD|TOKEN)$/ || name ~ /^ALERT_(SLACK|DISCORD)_WEBHOOK_URL$/) fail("secret " name " must not be inlined; use its *_file")
    if (!(name in ENVIRON)) fail("variable " name " is not set")
    return ENVIRON[name]
}
BEGIN { state = 0 }   # 0 outside a block, 1 in a kept branch, 2 in a dropped branch
/^[ \t]*#\{if [A-Za-z0-9_]+\}[ \t]*$/ {
    if (state != 0) fail("nested #{if}")
    name = $0; sub(/^[ \t]*#\{if /, "", name); sub(/\}[ \t]*$/, "", name)
    state = (name in ENVIRON && ENVIRON[name] != "") ? 1 : 2
    next
}
/^[ \t]*#\{else\}[ \t]*$/ { if (state == 0) fail("#{else} without #{if}"); state = (state == 1) ? 2 : 1; next }
/^[ \t]*#\{end\}[ \t]*$/ { if (state == 0) fail("#{end} without #{if}"); state = 0; next }
/^[ \t]*#\{/ { fail("unknown directive: " $0) }
state == 2 { next }
# plain comments are copied verbatim (no substitution)
/^[ \t]*#/ { print; next }
{
    line = $0; out = ""
    while ((i = index(line, "${")) > 0) {
        rest = substr(line, i + 2)
        j = index(rest, "}")
        if (j == 0) fail("unterminated ${")
        v = val(substr(rest, 1, j - 1))
        if (v ~ /[\n\r]/) fail("newline in " substr(rest, 1, j - 1))
        # values are placed inside single-quoted YAML scalars: '' escapes '
        gsub(/'/, "''", v)
        out = out substr(line, 1, i - 1) v
        line = substr(rest, j + 1)
    }
    print out line
}
END { if (!failed && state != 0) { printf "render.sh: unterminated #{if}\n" > "/dev/stderr"; exit 1 } }
