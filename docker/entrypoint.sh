#!/bin/sh
# Container entrypoint: build the search index on the first start (an empty index volume), then
# hand over to `brobygger` with the container's command (default: run).
set -eu

if [ ! -e "${INDEX_DIR:-index}/current" ] && [ "${1:-run}" = "run" ]; then
    echo "brobygger: no index in ${INDEX_DIR:-index} yet: building it (first start)" >&2
    brobygger reindex
fi

exec brobygger "$@"
