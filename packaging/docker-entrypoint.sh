#!/bin/sh
# Entrypoint of the Mockarty image: the first argument names the binary (mockarty, mockarty-resolver,
# mockarty-runner, mockarty-operator, or the short admin/resolver/runner/operator); the rest are its
# arguments. Flags alone run the admin; anything else is executed as given (e.g. sh for debugging).
set -eu
bin="${MK_BIN_DIR:-/usr/local/bin}"
if [ "$#" -eq 0 ]; then
    set -- mockarty
fi
case "$1" in
mockarty | admin) shift; exec "$bin/mockarty" "$@" ;;
mockarty-resolver | resolver) shift; exec "$bin/mockarty-resolver" "$@" ;;
mockarty-runner | runner) shift; exec "$bin/mockarty-runner" "$@" ;;
mockarty-operator | operator) shift; exec "$bin/mockarty-operator" "$@" ;;
-*) exec "$bin/mockarty" "$@" ;;
*) exec "$@" ;;
esac
