#!/usr/bin/env bash
# Make sure PostgreSQL :5432, Redis :6379 and RabbitMQ :5672 answer on 127.0.0.1.
# A service that cannot be started only gets a warning: the test suite decides (with CI=true
# it fails, rather than skips, tests whose service is missing).
set -euo pipefail

port_open() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() {  # port seconds
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# The machine's documented start commands.
start_postgresql() { pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; }
start_redis() {
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}
start_rabbitmq() { rabbitmq-server -detached; }

ensure() {  # name port wait_s command apt_package
  local name=$1 port=$2 wait_s=$3 command=$4 package=$5
  if port_open "$port"; then
    echo "services: $name up on :$port"
    return
  fi
  if ! command -v "$command" >/dev/null; then
    echo "services: $name not installed, trying apt-get install $package"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package"; } \
      >/dev/null 2>&1 || true
  fi
  if ! command -v "$command" >/dev/null; then
    echo "services: WARNING $name unavailable ($command not found); tests needing it will fail in CI"
    return
  fi
  "start_$name" >/dev/null 2>&1 || true  # "already running" is fine: the port decides
  if wait_port "$port" "$wait_s"; then
    echo "services: $name started on :$port"
  else
    echo "services: WARNING $name did not open :$port within ${wait_s}s"
  fi
}

ensure postgresql 5432 30 pg_ctlcluster postgresql
ensure redis 6379 15 redis-server redis-server
ensure rabbitmq 5672 60 rabbitmq-server rabbitmq-server

# The ops console's browser test drives Debian's chromium with chromedriver (selenium).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "services: chromium missing, trying apt-get install chromium chromium-driver"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
    >/dev/null 2>&1 || echo "services: WARNING chromium unavailable; the console browser test will fail in CI"
fi
