# Sourced by bench/peers.sh and bench/per_user_lag.sh: the nginx the benches measure against.
#
#   nginx_site DIR PORT ACCESS_LOG
#
# Writes DIR/nginx.conf for one nginx process on 127.0.0.1:PORT serving DIR/www (a 13-byte
# small.txt), with ACCESS_LOG as its `access_log` lines (`access_log off;` or a counted log).
nginx_site() {
  local ng=$1 port=$2 access_log=$3
  mkdir -p "$ng/www" "$ng/tmp"
  printf 'hello, inrush\n' | head -c 13 >"$ng/www/small.txt"
  cat >"$ng/nginx.conf" <<EOF
# One process, one worker (no master): its pid is the one the bench measures.
daemon off;
master_process off;
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 4096; }
http {
  $access_log
  client_body_temp_path $ng/tmp/body;
  proxy_temp_path $ng/tmp/proxy;
  fastcgi_temp_path $ng/tmp/fastcgi;
  uwsgi_temp_path $ng/tmp/uwsgi;
  scgi_temp_path $ng/tmp/scgi;
  # Kept-alive connections stay open for the whole run (nginx's default closes after 1 000
  # requests, which would measure reconnects).
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port backlog=4096;
    root $ng/www;
    location / { }
  }
}
EOF
}
