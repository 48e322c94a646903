# Sourced by scripts/test: install the system tools some tests need when they are missing
# and this shell can (root and apt-get): chromium (the report's index.html in a browser) and
# valgrind (instruction counts), wrk (the gc.freeze finding's load). Elsewhere, or with SESSIONBENCH_NO_INSTALL=1, those tests
# skip and say why.
_missing=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || _missing+=(chromium)
{ command -v valgrind && command -v vgdb; } >/dev/null || _missing+=(valgrind)
command -v wrk >/dev/null || _missing+=(wrk)
if [ "${#_missing[@]}" -gt 0 ] && [ -z "${SESSIONBENCH_NO_INSTALL:-}" ] \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "sessionbench: installing ${_missing[*]} for the tests (apt-get, once)" >&2
    _start=$SECONDS
    _apt() { DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0 "$@" >/dev/null; }
    # The package lists are fetched only when the install cannot go without them.
    if _apt install -y --no-install-recommends "${_missing[@]}" \
        || { _apt update && _apt install -y --no-install-recommends "${_missing[@]}"; }; then
        echo "sessionbench: installed ${_missing[*]} in $((SECONDS - _start)) s" >&2
    else
        echo "sessionbench: could not install ${_missing[*]}: their tests skip" >&2
    fi
fi
unset _missing _start; unset -f _apt 2>/dev/null || true
