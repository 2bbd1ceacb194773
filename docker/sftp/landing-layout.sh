#!/bin/bash
# Prepares the SFTP landing layout. atmoz/sftp runs every executable in /etc/sftp.d/ as root at each
# start of the `sftp` container, after it has created the accounts of users.conf and before sshd
# starts. Docker creates the mount points and fresh volumes root-owned; this script makes:
#   - the host key (once, into the sftp-host-keys volume);
#   - every jail (/home/<user>) and every directory above an inbox root:root 0755, as sshd's
#     ChrootDirectory requires, so no account can create anything outside its inbox(es);
#   - each manufacturer's inbox <user>:landing 2770 (the manufacturer uploads; the pipeline, in the
#     same group, reads and removes), and the pipeline's other directories (mot/delta) its own;
#   - authorized_keys root-owned, so an account cannot change its own keys from inside its jail.
set -euo pipefail

users_conf=/etc/sftp/users.conf
host_key=/etc/ssh/host-keys/ssh_host_ed25519_key

if [[ ! -f "$host_key" ]]; then
    mkdir -p "$(dirname "$host_key")"
    ssh-keygen -q -t ed25519 -N '' -C "sftp landing server (local compose)" -f "$host_key"
fi
chmod 600 "$host_key"
echo "[landing-layout] host key: $(ssh-keygen -l -f "$host_key")"

while IFS=: read -r user _password uid gid dirs; do
    home="/home/$user"
    chown root:root "$home"
    chmod 0755 "$home"
    if [[ -f "$home/.ssh/authorized_keys" ]]; then
        chown root:root "$home/.ssh" "$home/.ssh/authorized_keys"
        chmod 0755 "$home/.ssh"
        chmod 0644 "$home/.ssh/authorized_keys"
    fi
    IFS=, read -ra paths <<< "$dirs"
    for path in "${paths[@]}"; do
        mkdir -p "$home/$path"
        parent=$(dirname "$path")
        while [[ "$parent" != "." ]]; do
            chown root:root "$home/$parent"
            chmod 0755 "$home/$parent"
            parent=$(dirname "$parent")
        done
        # An inbox belongs to its manufacturer; the pipeline reaches it through the group.
        if [[ "$user" == "pipeline" && "$path" == recalls/* ]]; then
            continue
        fi
        chown "$uid:$gid" "$home/$path"
        chmod 2770 "$home/$path"
        echo "[landing-layout] $user: /$path"
    done
done < <(grep -Ev '^[[:space:]]*(#|$)' "$users_conf")
