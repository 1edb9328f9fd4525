#!/usr/bin/env bash
# Debian packages the tests need:
#   prometheus               -> prometheus, promtool   (integration tests)
#   prometheus-alertmanager  -> prometheus-alertmanager, amtool
#   prometheus-node-exporter -> a real scrape target the alert test takes down (TargetDown)
#   chromium                 -> headless browser for the e2e/browser tests
#   docker-compose           -> `docker-compose config`: validates compose/ without an engine
#   busybox                  -> runs the compose backup scripts under the same shell as the image
# Idempotent: when everything is installed this does no network access at all.
# The packages' own services must never run here (they would hold :9090/:9093
# and the tests start their own instances on free loopback ports).
set -euo pipefail

pkgs=(prometheus prometheus-alertmanager prometheus-node-exporter chromium docker-compose busybox)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

if ((${#missing[@]})); then
    echo "20-apt: installing ${missing[*]}"
    # Forbid maintainer scripts from starting services during the install
    # (invoke-rc.d honours policy-rc.d). Only if no policy is in place already.
    own_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    trap '[[ -n "$own_policy" ]] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi

# Belt and braces: if a service got started anyway (e.g. a real init system),
# stop it and keep it from starting at boot.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$svc ]] && /etc/init.d/"$svc" status >/dev/null 2>&1; then
        "${sudo[@]}" /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
    fi
done

for b in prometheus promtool prometheus-alertmanager amtool prometheus-node-exporter; do
    command -v "$b" >/dev/null || { echo "20-apt: $b missing after install" >&2; exit 1; }
done
for b in chromium docker-compose busybox; do
    command -v "$b" >/dev/null || { echo "20-apt: $b missing after install" >&2; exit 1; }
done
