#!/usr/bin/env bash
# Start the local services the integration tests use, when they are installed and down.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done; echo "services: $2 did not come up on :$1" >&2; }

if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start && wait_for 5432 PostgreSQL
fi
if ! up 6379 && command -v redis-server >/dev/null; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log && wait_for 6379 Redis
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached && wait_for 5672 RabbitMQ
fi
exit 0
