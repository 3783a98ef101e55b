#!/bin/sh
# meshca-agent --on-rotate hook: reload the servers that use the files. It also runs after the agent's first write,
# before any server has started, so it reloads only what runs (by its pid file) and never fails the agent.
# nginx re-reads cert-chain.pem and key.pem on SIGHUP; HAProxy in master-worker mode (-W) reloads on SIGUSR2.
if [ -s /run/nginx.pid ]; then kill -HUP "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
if [ -s /run/haproxy.pid ]; then kill -USR2 "$(cat /run/haproxy.pid)" 2>/dev/null || true; fi
exit 0
