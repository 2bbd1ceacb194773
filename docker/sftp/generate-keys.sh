#!/bin/bash
# Generates the SSH keys that docker-compose.yaml mounts, into docker/sftp/keys/ (git-ignored: never
# commit them). One ed25519 key pair per SFTP account; existing keys are kept. See README.md.
set -euo pipefail

keys_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/keys"
mkdir -p "$keys_dir"
chmod 700 "$keys_dir"

for account in pipeline acme bolt crux; do
    key="$keys_dir/${account}_ed25519"
    if [[ -f "$key" ]]; then
        echo "kept      $key"
    else
        ssh-keygen -q -t ed25519 -N '' -C "${account}@vehicle-recalls-local" -f "$key"
        echo "generated $key"
    fi
    chmod 600 "$key"
    chmod 644 "$key.pub"
done
