# LOCAL STAND-IN for the official nginx image, made by scripts/local-images.sh only
# where nginx:*-alpine cannot be pulled: Debian unstable's nginx (the load balancer's
# `server ... resolve` needs nginx >= 1.27.3; bookworm has 1.22) on a sid base made by
# debootstrap. Laid out like the official image where compose/nginx/nginx.conf relies
# on it: the config at /etc/nginx/nginx.conf, the logs linked to the container's
# stdout/stderr, a user `nginx` with uid/gid 101 (the compose file runs the load
# balancer as 101:101), `nginx -g 'daemon off;'` in the foreground, SIGQUIT to stop.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && groupadd --system --gid 101 nginx \
    && useradd --system --uid 101 --gid 101 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nginx \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && nginx -v
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
